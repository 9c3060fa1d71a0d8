"""The pages a plain phone camera opens from a printed QR code, without an account: batch
labels and collection-point and berth plates (``/q/``), delivery receipts (``/r/``) and
transfer manifests (``/t/``). A browser gets a page in Chinese; a client whose ``Accept``
header prefers ``application/json`` gets the same facts as JSON. Unknown, forged and mistyped
codes all get the same 404 (a page, or problem+json), so the pages are no oracle."""

from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.convertors import Convertor, register_url_convertor

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, PublicRateLimit
from mobile_api.errors import problem_of
from mobile_api.presenters import STATE_NAMES_ZH
from schemas.public import PublicBatchRead, PublicManifestRead, PublicPlateRead, PublicReceiptRead
from wastetrack.core import codes
from wastetrack.core.errors import NotFound
from wastetrack.core.timefmt import local_time
from wastetrack.manifests.models import state_label as manifest_state_label
from wastetrack.scan import public

templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
templates.env.filters["local_time"] = local_time
router = Router(tags=["public"], dependencies=[PublicRateLimit])

_HTML = {"text/html": {"schema": {"type": "string"}}}
_VARY = {"Vary": "Accept"}  # one URL, two representations: caches must keep them apart


# Each route's token is any text, unbounded in the contract: one too long, or holding a control
# character, is a mistyped code, answered by the one 404 as an unknown or forged one is (the
# services look a code up only once its signature holds).
class _Printed(Convertor[str]):
    """The rest of a public path, whatever it holds: slashes, a line feed at its end (which
    `path`'s `.*` and the route's `$` would drop), nothing at all; `_scanned` judges it."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("printed", _Printed())


_PRINTED = frozenset(codes.ALPHABET + ".")


def _scanned(marker: str, token: str) -> str:
    """The path a printed QR names: a name and its signature, in the codes' alphabet as printed
    (capitals and digits) and a dot. A token holding anything else was never printed, so it
    names nothing: whitespace or a control character (even at its end, which reading a typed
    or scanned code would strip), a slash (the routes take the rest of the path, so a link
    mistyped with one gets this same refusal), and the small letters and hyphens a code typed
    into the app may hold."""
    if not token or any(c not in _PRINTED for c in token):
        raise NotFound(public.NOT_FOUND, field="code")
    return f"{marker}{token}"


def wants_json(request: Request) -> bool:
    """Whether the Accept header ranks application/json above text/html (a browser's
    ``text/html,…,*/*;q=0.8`` does not; ``application/json`` alone does)."""
    ranks: dict[str, float] = {}
    for item in request.headers.get("accept", "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks[media.lower()] = max(quality, ranks.get(media.lower(), 0.0))

    def rank(media: str) -> float:
        kind = media.split("/")[0]
        return ranks.get(media, ranks.get(f"{kind}/*", ranks.get("*/*", 0.0)))

    return rank("application/json") > rank("text/html")


def _answer(
    request: Request, settings: AppSettings, template: str, read: BaseModel, **context: Any
) -> Response:
    if wants_json(request):
        return Response(read.model_dump_json(), media_type="application/json", headers=_VARY)
    return templates.TemplateResponse(
        request, template, {"item": read, "tz": settings.timezone, **context}, headers=_VARY
    )


def _refusal(request: Request, error: NotFound) -> Response:
    """One answer for every code that names nothing a stranger may see."""
    if wants_json(request):
        return problem_of(error, headers=_VARY)
    return templates.TemplateResponse(
        request, "public_not_found.html", {}, status_code=404, headers=_VARY
    )


@router.get(
    "/q/{token:printed}",
    response_model=PublicBatchRead | PublicPlateRead,
    responses={200: {"content": _HTML}, 404: {"description": "no such code"}},
)
async def public_code(token: str, request: Request, settings: AppSettings) -> Response:
    """What a label or a plate names: a batch's category and state (no parties), or a
    collection point or berth."""
    try:
        found = await public.plate_or_batch(
            scanned=_scanned("/q/", token), secret=settings.secret_key
        )
    except NotFound as refusal:
        return _refusal(request, refusal)
    if isinstance(found, public.PublicPlate):
        return _answer(request, settings, "public_plate.html", PublicPlateRead(**asdict(found)))
    read = PublicBatchRead(**asdict(found), state_zh=STATE_NAMES_ZH.get(found.state, found.state))
    return _answer(request, settings, "public_batch.html", read)


@router.get(
    "/r/{token:printed}",
    response_model=PublicReceiptRead,
    responses={200: {"content": _HTML}, 404: {"description": "no such receipt"}},
)
async def public_receipt(token: str, request: Request, settings: AppSettings) -> Response:
    """The page a receipt's QR opens: which vessel delivered what, where and when."""
    try:
        found = await public.receipt(scanned=_scanned("/r/", token), secret=settings.secret_key)
    except NotFound as refusal:
        return _refusal(request, refusal)
    return _answer(
        request, settings, "public_receipt.html", PublicReceiptRead.model_validate(asdict(found))
    )


@router.get(
    "/t/{token:printed}",
    response_model=PublicManifestRead,
    responses={200: {"content": _HTML}, 404: {"description": "no such manifest"}},
)
async def public_manifest(token: str, request: Request, settings: AppSettings) -> Response:
    """The page a transfer manifest's QR opens: number, waste, parties, state, signatures."""
    try:
        found = await public.manifest(scanned=_scanned("/t/", token), secret=settings.secret_key)
    except NotFound as refusal:
        return _refusal(request, refusal)
    return _answer(
        request,
        settings,
        "public_manifest.html",
        PublicManifestRead(**asdict(found)),
        state_zh=manifest_state_label(found.state),
    )
