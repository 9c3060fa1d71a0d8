"""What the service serves for the phone app at /app, over the ASGI app (no browser)."""

import re

import httpx

from wastetrack.custody.labels import EVENT_TYPE_LABELS, STATE_LABELS


async def test_the_app_lives_under_its_service_workers_scope(client: httpx.AsyncClient) -> None:
    moved = await client.get("/app", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "/app/"
    worker = await client.get("/app/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"


async def test_the_shell_is_an_html_page_with_the_security_headers_and_no_inline_script(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/app/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    # Every script comes from this origin, so the shell can be cached as it is.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []
    assert 'rel="manifest" href="/app/manifest.webmanifest"' in page.text


async def test_the_service_worker_caches_only_files_that_exist(client: httpx.AsyncClient) -> None:
    worker = (await client.get("/app/sw.js")).text
    shell = re.search(r"const SHELL = \[(.*?)\];", worker, re.S)
    assert shell is not None
    paths = re.findall(r"'([^']+)'", shell.group(1))
    assert "/app/" in paths and "/static/vendor/jsQR.js" in paths
    for path in paths:
        assert (await client.get(path)).status_code == 200, path
    # and every module the shell imports is in it, so the app starts offline
    for module in ("main", "api", "checkchar", "scanner", "store", "sync"):
        source = (await client.get(f"/static/app/{module}.js")).text
        for imported in re.findall(r"from '([^']+)'", source):
            path = imported if imported.startswith("/") else f"/static/app/{imported[2:]}"
            assert path in paths, (module, imported)


async def test_the_manifest_makes_it_installable(client: httpx.AsyncClient) -> None:
    answer = await client.get("/app/manifest.webmanifest")
    assert answer.headers["content-type"].startswith("application/manifest+json")
    manifest = answer.json()
    assert manifest["start_url"] == manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        image = await client.get(icon["src"])
        assert image.headers["content-type"] == "image/png"
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes


async def test_the_labels_are_the_custody_logs_own(client: httpx.AsyncClient) -> None:
    labels = (await client.get("/app/labels.json")).json()
    assert labels["events"] == {str(k): v for k, v in EVENT_TYPE_LABELS.items()}
    assert labels["states"] == {str(k): v for k, v in STATE_LABELS.items()}
    assert labels["timezone"] == "Asia/Shanghai"  # the app shows times in the city's zone
