"""The API's reference page: Swagger UI served by the service itself. FastAPI's own page loads
its scripts from a CDN and starts them from an inline script, which the pages' Content-Security-
Policy refuses (and a city's intranet may have no internet): this one takes the assets from the
`swagger-ui-bundle-v2` wheel and its start-up script carries the request's nonce."""

import html
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mobile_api.bodies import Router

router = Router(include_in_schema=False)

ASSETS = "/docs/assets"
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
window.ui = SwaggerUIBundle({{
  url: "{openapi}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
}});
</script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> HTMLResponse:
    """Every route, its parameters and answers, to read and try (OpenAPI: /openapi.json)."""
    app = request.app
    return HTMLResponse(
        _PAGE.format(
            title=html.escape(app.title),
            assets=ASSETS,
            nonce=request.state.csp_nonce,
            openapi=app.openapi_url,
        )
    )


def install(app: FastAPI) -> None:
    """The page and its assets (FastAPI's own /docs and /redoc are off: see the module)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=Path(str(swagger_ui_bundle.swagger_ui_path))))
