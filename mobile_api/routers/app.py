"""The collector's phone app at /app: an installable offline web app (its shell, web app
manifest, service worker and the Chinese names of the custody log's keys). Its scripts,
styles and icons are static files under /static/app; it talks to the API like any phone."""

import hashlib
import json
from pathlib import Path

from fastapi import Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings
from wastetrack.core.settings import Settings
from wastetrack.custody.labels import EVENT_TYPE_LABELS, STATE_LABELS

STATIC = Path(__file__).resolve().parent.parent / "static" / "app"
VENDOR = STATIC.parent / "vendor"
# The shell and the worker are checked on every start (the worker caches what they name).
REVALIDATE = {"Cache-Control": "no-cache"}
VERSION_MARK = "__APP_VERSION__"

router = Router(prefix="/app", tags=["app"], include_in_schema=False)


def _labels(settings: Settings) -> dict[str, object]:
    return {
        "events": {str(k): v for k, v in EVENT_TYPE_LABELS.items()},
        "states": {str(k): v for k, v in STATE_LABELS.items()},
        "timezone": settings.timezone,
    }


_hashed: dict[tuple[object, ...], str] = {}


def version(settings: Settings) -> str:
    """A hash of every file of the shell (the app's static files, the vendored modules it
    loads, its labels): any change gives the worker a new version, which installs the shell
    whole (sw.js). Files are hashed again only when their size or time changed."""
    files = [
        *(path for path in sorted(STATIC.iterdir()) if path.name != "sw.js"),
        VENDOR / "idb.js",
        VENDOR / "jsQR.js",
    ]
    labels = json.dumps(_labels(settings), sort_keys=True, ensure_ascii=False).encode()
    stamp = (labels, *((p.name, s.st_mtime_ns, s.st_size) for p in files for s in [p.stat()]))
    found = _hashed.get(stamp)
    if found is None:
        digest = hashlib.sha256(labels)
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        found = digest.hexdigest()[:16]
        _hashed.clear()
        _hashed[stamp] = found
    return found


def _versioned(settings: Settings) -> dict[str, str]:
    """The headers of a page the router serves to the worker: checked on every start, and
    naming the version it belongs to (the worker keeps no page of another)."""
    return {**REVALIDATE, "X-App-Version": version(settings)}


@router.get("")
async def app_root() -> RedirectResponse:
    """The app lives at /app/, the scope of its service worker."""
    return RedirectResponse("/app/", status_code=308)


@router.get("/")
async def shell(settings: AppSettings) -> FileResponse:
    """The app's single page."""
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers=_versioned(settings),
    )


@router.get("/sw.js")
async def service_worker(settings: AppSettings) -> Response:
    """The service worker: caches the shell of this version, goes to the network for the API."""
    script = (STATIC / "sw.js").read_text().replace(VERSION_MARK, version(settings))
    return Response(script, media_type="text/javascript", headers=REVALIDATE)


@router.get("/manifest.webmanifest")
async def manifest(settings: AppSettings) -> FileResponse:
    """The web app manifest that makes the app installable."""
    return FileResponse(
        STATIC / "manifest.webmanifest",
        media_type="application/manifest+json",
        headers=_versioned(settings),
    )


@router.get("/labels.json")
async def labels(settings: AppSettings) -> JSONResponse:
    """The Chinese names of event types and batch states, from the one place that holds them,
    and the city's time zone, in which the app shows every time (a visiting crew's phone may be
    set to another)."""
    return JSONResponse(_labels(settings), headers=_versioned(settings))
