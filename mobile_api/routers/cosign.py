"""Co-signature without an app: a producer's printed list of one-time handover PINs."""

from fastapi import Response

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, CurrentUser, Transaction
from mobile_api.media import PDF, binary
from schemas.base import Id
from wastetrack.cosign import service as cosign

router = Router(prefix="/m/v1/organizations", tags=["co-signature"])


@router.post(
    "/{organization_id}/pins",
    response_class=Response,
    responses=binary(PDF, status=201, description="The producer's one-time PIN list"),
    status_code=201,
)
async def issue_pins(
    organization_id: Id, user: CurrentUser, settings: AppSettings, _: Transaction
) -> Response:
    """Issue a new printable list of the producer's one-time PINs; the old list stops working
    (the producer's own user, or a manager of its region)."""
    issued = await cosign.issue_pin_list(
        principal=user,
        organization_id=organization_id,
        secret=settings.secret_key,
        timezone=settings.timezone,
    )
    return Response(
        issued.pdf,
        media_type="application/pdf",
        status_code=201,
        headers={
            "X-Pin-List": str(issued.pin_list.serial),
            "X-Pin-Count": str(issued.pin_list.size),
            "Cache-Control": "no-store",  # the PINs: kept by no cache, nor as an answer
        },
    )
