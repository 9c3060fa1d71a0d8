"""Co-signature without an app: a producer confirms a handover with a one-time PIN that the
carrier's phone records with the collected event.

PINs come on a printed list (a producer without a phone still has its paper): 40 six-digit
codes by default (`WASTETRACK_COSIGN_PINS_PER_LIST`), each good for one handover. Issuing a new
list revokes the previous one and its unused codes. The codes are never stored: each is an HMAC
of the list's serial and position under a per-producer key, derived with HKDF from the key ring
(purpose `producer_pin`, the master version recorded on the list); only spent positions are.

Whether a PIN is required is one rule, `pin_required`: the stream's `producer_pin` rule
(`always`, or `without_users`: only producers with no active user account of their own, an
API key's service user being none; the
medical stream's is `without_users`, set by migration 0027). Elsewhere a PIN is optional, and
checked when given."""

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tortoise import connections
from tortoise.expressions import Subquery

from wastetrack.apikeys.models import ApiKey
from wastetrack.auth.models import Role, User
from wastetrack.batches.labels import PinPage, render_pin_list_pdf
from wastetrack.batches.models import Batch
from wastetrack.catalog import service as catalog
from wastetrack.core import keys, ratelimit
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import Forbidden, TooManyRequests, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.cosign.models import PinList, PinUse
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.rules import EventType
from wastetrack.registry import access
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization

if TYPE_CHECKING:  # the custody engine imports this module
    from wastetrack.custody.work import Work

FIELD = "producer_pin"
RATE_SCOPE = "producer_pin"
# Handovers the PIN confirms: custody leaving the producer for the party recording the event.
# A `handed_over` is recorded by the holder that gives the batch, so from the producer's hands
# it is the producer's own record, which needs no PIN.
CONFIRMED_EVENTS = (EventType.collected,)
# One code confirms one visit: the same carrier user may record it on every batch it takes
# from the producer within this time of the first, by the phone's clock and by the server's
# (`_same_visit`), and nobody else ever again.
VISIT = timedelta(minutes=30)
# How much later than its first bag a visit's other bags may reach the server: a phone that
# synced the first from the clinic's lobby may record the rest offline and sync them hours
# later, within a working day; a code replayed on another day under a clock set back is not.
SYNC_ALLOWANCE = timedelta(hours=12)
ALWAYS, WITHOUT_USERS = "always", "without_users"


def _producer_key(*, secret: str, organization_id: int, version: int) -> bytes:
    """The producer's own PIN key: HKDF over the ring's `producer_pin` key of that version."""
    base = keys.ring(secret).key(keys.PRODUCER_PIN, version)
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"wastetrack/producer_pin/organization/{organization_id}".encode(),
    ).derive(base)


def list_codes(*, secret: str, pin_list: PinList) -> list[str]:
    """The list's codes in printed order, all different from each other."""
    key = _producer_key(
        secret=secret, organization_id=pin_list.organization_id, version=pin_list.key_version
    )
    found: list[str] = []
    for position in range(1, pin_list.size + 1):
        attempt = 0
        while True:
            mac = hmac.new(
                key, f"{pin_list.serial}:{position}:{attempt}".encode(), hashlib.sha256
            ).digest()
            code = f"{int.from_bytes(mac[:8], 'big') % 1_000_000:06d}"
            if code not in found:
                break
            attempt += 1
        found.append(code)
    return found


@dataclass(frozen=True, slots=True)
class IssuedPins:
    pin_list: PinList
    pdf: bytes


async def issue_pin_list(
    *, principal: Principal, organization_id: int, secret: str, timezone: str
) -> IssuedPins:
    """A new printable list of the producer's one-time PINs; the previous list stops working.
    Issued by the producer's own user or a manager of its region, never by a carrier."""
    if principal.role not in (Role.generator, Role.manager, Role.admin):
        raise Forbidden("a producer's PINs are issued by the producer or a manager", field="role")
    # A producer reads only itself, a manager its region: any other organization is 'not
    # found', as one that does not exist.
    org = await access.readable_organization(principal, organization_id)
    pin_list, page = await _new_list(principal=principal, org=org, secret=secret, timezone=timezone)
    pdf = await asyncio.to_thread(render_pin_list_pdf, page)  # CPU: off the event loop
    return IssuedPins(pin_list, pdf)


async def pins_for_label_sheet(
    *, principal: Principal, organization_id: int, stream: str, secret: str
) -> PinPage | None:
    """A new PIN list to print after a producer's label stock when the stream's rule asks this
    producer for PINs (the previous list stops working); None when it does not."""
    rules = (await catalog.snapshot()).streams[stream].rules or {}
    if not await _required(rules=rules, producer_id=organization_id):
        return None
    org = await registry.get_organization(organization_id)
    timezone = get_settings().timezone
    return (await _new_list(principal=principal, org=org, secret=secret, timezone=timezone))[1]


PIN_LIST_LOCK_KEY = 0x70696E73
"""First half of the advisory lock key a producer's PIN lists are issued under ("pins" in
ASCII); the producer's id is the second."""


async def _new_list(
    *, principal: Principal, org: Organization, secret: str, timezone: str
) -> tuple[PinList, PinPage]:
    now = datetime.now(UTC)
    # Two issues at once take turns, the second reading the serial the first wrote: a lock on
    # the last list's row would find no row to lock for a first list, and a second issue
    # waiting on it would read the same last serial again once the first committed.
    await connections.get("default").execute_query(
        "SELECT pg_advisory_xact_lock($1, $2)", [PIN_LIST_LOCK_KEY, org.id]
    )
    current = await PinList.filter(organization_id=org.id).order_by("-serial").first()
    await PinList.filter(organization_id=org.id, revoked_at=None).update(revoked_at=now)
    pin_list = await PinList.create(
        organization_id=org.id,
        serial=(current.serial + 1) if current else 1,
        key_version=keys.ring(secret).current,
        size=get_settings().cosign_pins_per_list,
        issued_at=now,
        issued_by_id=principal.user_id,
    )
    page = PinPage(
        organization=org.name,
        serial=pin_list.serial,
        codes=list_codes(secret=secret, pin_list=pin_list),
        issued_on=local_date(now, timezone),
    )
    return pin_list, page


async def _required(*, rules: dict[str, Any], producer_id: int) -> bool:
    """The one rule: the stream's `producer_pin` rule says when its producers must confirm."""
    rule = rules.get("producer_pin")
    if rule == ALWAYS:
        return True
    if rule == WITHOUT_USERS:
        # A person of its own: an API key acts as a service user of the organization, which
        # is no one there who could confirm a handover (a BI tool's read-only key, say).
        keys_users = ApiKey.filter(organization_id=producer_id).values("user_id")
        people = User.filter(organization_id=producer_id, is_active=True).exclude(
            id__in=Subquery(keys_users)
        )
        return not await people.exists()
    return False


async def pin_required(*, work: "Work", batch: Batch) -> bool:
    """Whether this batch's handover from its producer needs the producer's PIN."""
    rules = work.catalog.streams[batch.stream_id].rules or {}
    return await _required(rules=rules, producer_id=batch.producer_id)


async def producer_confirmation(work: "Work", sub: EventCommand, batch: Batch) -> dict[str, Any]:
    """Check the producer's PIN recorded with a handover and spend it; the details the event
    keeps (`producer_confirmed: "pin"`), or none when no PIN applies. Wrong or spent PINs count
    against the producer's limit, on a connection of their own so a refusal still counts."""
    leaves_producer = (
        sub.event_type in CONFIRMED_EVENTS
        and batch.holder_id == batch.producer_id
        and work.principal.organization_id != batch.producer_id
    )
    if not leaves_producer:
        if sub.producer_pin is not None:
            raise ValidationFailed(
                "a producer PIN confirms only a collection from the producer by another party",
                field=FIELD,
            )
        return {}
    if sub.producer_pin is None:
        if await pin_required(work=work, batch=batch):
            raise ValidationFailed(
                f"the producer must confirm this handover: record its one-time PIN"
                f" ({batch.stream_id} waste of a producer without its own account)",
                field=FIELD,
            )
        return {}
    limiter = {
        "scope": RATE_SCOPE,
        "key": str(batch.producer_id),
        "rate": get_settings().cosign_pin_failures,
    }

    async def within_limit() -> None:
        try:
            await ratelimit.test(**limiter)
        except TooManyRequests as error:
            error.detail = "too many wrong PINs for this producer; " + error.detail.split("; ")[-1]
            error.field = FIELD
            raise

    # Tested before the producer's list is locked (a producer locked out holds up no one), and
    # again once it is: checks of one producer's PINs take turns, so each sees the failures
    # counted before it (tested only first, concurrent guesses would all pass while one held
    # the lock).
    await within_limit()
    pin_list = (
        await PinList.filter(organization_id=batch.producer_id, revoked_at=None)
        .select_for_update()
        .order_by("-serial")
        .first()
    )
    await within_limit()
    if pin_list is None:
        raise ValidationFailed("the producer has no PIN list; its manager issues one", field=FIELD)
    # A guess is the code a record gave: the same record judged again guesses nothing more.
    guess = hashlib.sha256(f"{sub.client_event_id}|{sub.producer_pin}".encode()).hexdigest()
    position = _position(list_codes(secret=work.secret, pin_list=pin_list), sub.producer_pin)
    if position is None:
        await ratelimit.count_once(**limiter, attempt=guess)
        raise ValidationFailed("this is not one of the producer's current PINs", field=FIELD)
    spent = await PinUse.get_or_none(pin_list_id=pin_list.id, position=position)
    if spent is None:
        await PinUse.create(
            pin_list_id=pin_list.id,
            position=position,
            used_by_id=work.principal.user_id,
            device_time=sub.device_time,
            used_at=work.now,
        )
    elif not _same_visit(
        spent, principal=work.principal, device_time=sub.device_time, now=work.now
    ):
        if spent.used_by_id != work.principal.user_id:
            # Another user's try of a spent code counts as a guess; the same user's late
            # record of its own visit guesses nothing, and must not lock the producer out.
            await ratelimit.count_once(**limiter, attempt=guess)
        raise ValidationFailed("this PIN was used already", field=FIELD)
    return {"producer_confirmed": "pin", "producer_pin": f"{pin_list.serial}/{position}"}


def _same_visit(
    spent: PinUse, *, principal: Principal, device_time: datetime, now: datetime
) -> bool:
    """Whether a spent code may confirm one more bag: taken by the user who spent it, within
    VISIT of it by the phone's clock, and reaching the server within VISIT + SYNC_ALLOWANCE of
    it. The phone's clock alone is the carrier's word, set back at will: a code heard on Monday
    would confirm a bag tagged on Wednesday and dated Monday. The server's bound still lets a
    visit's bags recorded offline reach it later that day."""
    return (
        spent.used_by_id == principal.user_id
        and abs(spent.device_time - device_time) <= VISIT
        and now - spent.used_at <= VISIT + SYNC_ALLOWANCE
    )


def _position(codes: list[str], given: str) -> int | None:
    """The 1-based position of the given code, comparing every code in constant time."""
    found = None
    for position, code in enumerate(codes, start=1):
        if hmac.compare_digest(code, given):
            found = position
    return found
