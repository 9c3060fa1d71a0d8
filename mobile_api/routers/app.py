"""The collector's phone app at /app: an installable offline web app (its shell, web app
manifest, service worker and the Chinese names of the custody log's keys). Its scripts,
styles and icons are static files under /static/app; it talks to the API like any phone."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from mobile_api.deps import AppSettings
from wastetrack.custody.labels import EVENT_TYPE_LABELS, STATE_LABELS

STATIC = Path(__file__).resolve().parent.parent / "static" / "app"
# The shell and the worker are checked on every start (the worker caches what they name).
REVALIDATE = {"Cache-Control": "no-cache"}

router = APIRouter(prefix="/app", tags=["app"], include_in_schema=False)


@router.get("")
async def app_root() -> RedirectResponse:
    """The app lives at /app/, the scope of its service worker."""
    return RedirectResponse("/app/", status_code=308)


@router.get("/")
async def shell() -> FileResponse:
    """The app's single page."""
    return FileResponse(
        STATIC / "index.html", media_type="text/html; charset=utf-8", headers=REVALIDATE
    )


@router.get("/sw.js")
async def service_worker() -> FileResponse:
    """The service worker: caches the shell, goes to the network first for the API."""
    return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers=REVALIDATE)


@router.get("/manifest.webmanifest")
async def manifest() -> FileResponse:
    """The web app manifest that makes the app installable."""
    return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")


@router.get("/labels.json")
async def labels(settings: AppSettings) -> JSONResponse:
    """The Chinese names of event types and batch states, from the one place that holds them,
    and the city's time zone, in which the app shows every time (a visiting crew's phone may be
    set to another)."""
    return JSONResponse(
        {
            "events": {str(k): v for k, v in EVENT_TYPE_LABELS.items()},
            "states": {str(k): v for k, v in STATE_LABELS.items()},
            "timezone": settings.timezone,
        },
        headers=REVALIDATE,
    )
