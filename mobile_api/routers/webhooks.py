"""Webhooks: integrators subscribe a URL to events and get a signed POST for each."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Response

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, ManagerOnly, Paging, Transaction
from mobile_api.presenters import NEXT_PAGE
from schemas.base import Id
from schemas.webhooks import WebhookCreate, WebhookCreated, WebhookDeliveryRead, WebhookRead
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription

router = Router(prefix="/m/v1/webhooks", tags=["webhooks"])


def _read(subscription: WebhookSubscription) -> WebhookRead:
    return WebhookRead.model_validate(subscription)


def _delivery(delivery: WebhookDelivery) -> WebhookDeliveryRead:
    pending = delivery.status == DeliveryStatus.pending
    return WebhookDeliveryRead(
        id=delivery.id,
        event_id=str(delivery.event_id),
        type=delivery.event_type,
        status=delivery.status.value,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


@dataclass(frozen=True, slots=True)
class _Checked:
    body: WebhookCreate
    target: webhooks.CheckedUrl


async def _checked(body: WebhookCreate, user: ManagerOnly, settings: AppSettings) -> _Checked:
    """The request, its URL checked (resolved: up to RESOLVE_SECONDS for a slow name server)
    before the transaction opens, so that no database connection waits on DNS; only once the
    caller is known to be a manager (`user`), so that nobody else makes the server resolve."""
    target = await webhooks.checked_url(body.url, allow_private=settings.webhooks_allow_private)
    return _Checked(body, target)


@router.post("", response_model=WebhookCreated, status_code=201)
async def create_webhook(
    checked: Annotated[_Checked, Depends(_checked)],
    user: ManagerOnly,
    settings: AppSettings,
    _: Transaction,  # after `checked`: dependencies are solved in the order they are declared
    response: Response,
) -> WebhookCreated:
    """Subscribe a URL to events you may see; the signing secret is shown this once."""
    response.headers["Cache-Control"] = "no-store"  # kept by no cache, nor as an answer
    subscription, secret = await webhooks.create_subscription(
        principal=user,
        target=checked.target,
        events=list(checked.body.events),
        master=settings.secret_key,
    )
    return WebhookCreated(**_read(subscription).model_dump(), secret=secret)


@router.get("", response_model=list[WebhookRead])
async def list_webhooks(user: ManagerOnly) -> list[WebhookRead]:
    """Your webhook subscriptions."""
    return [_read(s) for s in await webhooks.list_subscriptions(principal=user)]


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: Id, user: ManagerOnly) -> WebhookRead:
    """One of your webhook subscriptions."""
    return _read(await webhooks.get_subscription(principal=user, subscription_id=webhook_id))


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: Id, user: ManagerOnly, _: Transaction) -> Response:
    """Stop a subscription and forget its deliveries."""
    await webhooks.delete_subscription(principal=user, subscription_id=webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/enable", response_model=WebhookRead)
async def enable_webhook(webhook_id: Id, user: ManagerOnly, _: Transaction) -> WebhookRead:
    """Re-enable a subscription disabled after repeated failures; waiting deliveries go out."""
    return _read(await webhooks.enable_subscription(principal=user, subscription_id=webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[WebhookDeliveryRead],
    responses={200: NEXT_PAGE},
)
async def list_webhook_deliveries(
    webhook_id: Id, user: ManagerOnly, paged: Paging
) -> list[WebhookDeliveryRead]:
    """The subscription's deliveries, newest first, a page at a time: status, attempts, last
    error, next try."""
    found, next_cursor = await webhooks.list_deliveries(
        principal=user, subscription_id=webhook_id, limit=paged.limit, cursor=paged.cursor
    )
    return paged.answer([_delivery(d) for d in found], next_cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    response_model=WebhookDeliveryRead,
    status_code=202,
)
async def replay_webhook_delivery(
    webhook_id: Id,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    user: ManagerOnly,
    _: Transaction,
) -> WebhookDeliveryRead:
    """Send a delivery again, with the same event id and body."""
    delivery = await webhooks.replay_delivery(
        principal=user, subscription_id=webhook_id, delivery_id=delivery_id
    )
    return _delivery(delivery)
