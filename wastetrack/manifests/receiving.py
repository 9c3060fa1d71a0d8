"""The receiver's section (危险废物转移管理办法): the arrival, the decision due within 5 working
days, and the decision itself, its discrepancies and the batches received in the custody
chain."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.calendar import service as calendar
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday, codes
from wastetrack.core.errors import (
    Conflict,
    Forbidden,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.core.reported import CLOCK_SKEW, check_reported
from wastetrack.core.timefmt import local_limit
from wastetrack.custody import remainders, repository, transitions
from wastetrack.custody.rules import EventType
from wastetrack.manifests.chain import record
from wastetrack.manifests.commands import RECEIVED_STEP, DecisionCommand, step_id
from wastetrack.manifests.models import Manifest, ManifestDiscrepancy
from wastetrack.manifests.queries import get_manifest, open_for_action
from wastetrack.manifests.signing import LOCKED

DECISION_WORKING_DAYS = 5


def _deadline(due: calendar.WorkingDayCount, timezone: str) -> tuple[datetime, list[int]]:
    return cityday.day_start(due.day + timedelta(days=1), timezone), list(due.assumed_years)


async def decision_due(*, arrived_at: datetime, timezone: str) -> tuple[datetime, list[int]]:
    """The end of the 5th working day after the day of arrival, both days in the city's time
    zone whatever offset the client sent, working days from the official calendar; and the
    years whose days it had to assume Monday to Friday (the calendar lacks them)."""
    arrival_day = cityday.local_date(arrived_at, timezone)
    due = await calendar.add_working_days(start=arrival_day, n=DECISION_WORKING_DAYS)
    return _deadline(due, timezone)


async def settle_deadlines(*, timezone: str) -> int:
    """Compute again the deadline of every decision awaited, from the calendar as it stands
    now: an operator may have entered a year it lacked, or changed a day (a local holiday);
    returns how many moved. The calendar is read once for them all."""
    waiting = await Manifest.filter(state="arrived", arrived_at__not_isnull=True)
    days = {m.id: cityday.local_date(m.arrived_at, timezone) for m in waiting if m.arrived_at}
    counted = await calendar.add_working_days_each(starts=days.values(), n=DECISION_WORKING_DAYS)
    moved = 0
    for manifest in waiting:
        due, assumed = _deadline(counted[days[manifest.id]], timezone)
        if (due, assumed or None) != (manifest.decision_due_at, manifest.decision_due_assumed):
            moved += due != manifest.decision_due_at
            manifest.decision_due_at, manifest.decision_due_assumed = due, assumed or None
            await manifest.save(update_fields=["decision_due_at", "decision_due_assumed"])
    return moved


def _receiver(principal: Principal, manifest: Manifest) -> None:
    if (
        principal.organization_id != manifest.receiver_id
        or principal.role != Role.facility_operator
    ):
        raise Forbidden("only the receiver (接受人) signs the receiver's section", field="role")


async def arrive(
    *, principal: Principal, manifest_id: int, arrived_at: datetime, timezone: str
) -> Manifest:
    """The receiver records arrival; the decision is due by the end of the 5th working day
    after the day of arrival (city time zone, official calendar)."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    _receiver(principal, manifest)
    if any(leg.signed_at is None for leg in manifest.legs):
        raise RuleViolation("every leg must be signed before arrival", field="arrived_at")
    if manifest.arrived_at is not None:
        raise Conflict("the arrival is recorded already", field="arrived_at")
    # The decision receives every batch: each must be one the receiver may receive (in transit
    # to it, or handed over to it), as custody's rule for a receipt says. Locked (the manifest
    # first, then its batches, as signing does): a step recorded on one at the same moment
    # either comes first, and is judged here, or waits and finds the manifest arrived.
    batches = await repository.lock_batches(set(manifest.batch_codes))
    for batch in batches:
        refused = transitions.refusal(principal, batch, EventType.received)
        if refused is not None:
            raise RuleViolation(
                f"batch {batch.code} has not come to you ({refused}): whoever holds it hands it"
                " over to you first",
                field="arrived_at",
            )
    check_reported(arrived_at, now=datetime.now(UTC), field="arrived_at")
    # The decision's receipts are timed at the arrival: it follows every step its batches went
    # through, the legs' signed handovers and a handover to the receiver scanned after them (a
    # phone's time within the clock skew custody allows two phones' clocks).
    # Each step as (the earliest arrival it allows, its own time, what is said of it).
    steps = [(leg.handover_at, leg.handover_at, "") for leg in manifest.legs if leg.handover_at]
    steps += [
        (
            t - CLOCK_SKEW,
            t,
            f"; a scanned step's phone time is allowed {CLOCK_SKEW.seconds // 60} minutes",
        )
        for t in (b.last_device_time for b in batches)
        if t
    ]
    earliest, last, allowance = max(steps)
    if arrived_at < earliest:
        raise ValidationFailed(
            f"arrived_at precedes the last handover"
            f" ({local_limit(last, timezone, earliest=True)}, city time"
            f"{allowance})",
            field="arrived_at",
        )
    manifest.arrived_at = arrived_at
    due, assumed = await decision_due(arrived_at=arrived_at, timezone=timezone)
    manifest.decision_due_at, manifest.decision_due_assumed = due, assumed or None
    manifest.state = "arrived"
    await manifest.save(
        update_fields=["arrived_at", "decision_due_at", "decision_due_assumed", "state"]
    )
    return manifest


def _kg(value: Decimal) -> str:
    """A mass as the manifest keeps it (three places), however the client wrote it (1e3, or
    -0, which the manifest keeps as 0.000)."""
    return f"{value.copy_abs() if not value else value:.3f}"


async def decide(
    *,
    principal: Principal,
    manifest_id: int,
    decision: DecisionCommand,
    tolerance: Decimal,
    secret: str,
    timezone: str,
) -> Manifest:
    """The receiver accepts, partially accepts or rejects, with the quantity received and the
    method; mismatches become discrepancies; the batches are received in the custody chain."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    _receiver(principal, manifest)
    if manifest.receiver_signed_at is not None:
        raise Conflict(LOCKED, field="decision")
    if manifest.arrived_at is None:
        raise RuleViolation("record the arrival first", field="decision")
    # The receipts below are the batches' custody events at the arrival, which custody judges
    # on their own city day: the licence is the one valid on that day, as there. A rejection
    # takes nothing in and needs none, as in custody: a receiver whose licence lapsed before
    # the waste arrived refuses it (else nobody could close the manifest).
    # The method, by the rule the receipts and the treatment are judged by: one the licences
    # allow for every category listed and aggregated into the batches.
    arrival_day = cityday.local_date(manifest.arrived_at, timezone)
    held = {b.code: b for b in await Batch.filter(code__in=manifest.batch_codes)}
    if decision.decision != "rejected":
        named = "method" if decision.method is not None else "decision"
        try:
            allowed = await transitions.receivable_methods(
                principal,
                [held[code] for code in manifest.batch_codes],
                facility_id=manifest.receiver_id,
                on=arrival_day,
                secret=secret,
            )
        except Forbidden as error:
            error.field = named
            raise
        if decision.method is not None and decision.method not in allowed:
            raise Forbidden(
                f"your licences did not cover {decision.method} for all the waste listed on the"
                f" day of arrival ({arrival_day.isoformat()}): {', '.join(allowed) or 'none'}"
                " would",
                field="method",
            )
    now = datetime.now(UTC)
    declared = manifest.quantity_kg
    snapshot = await catalog.snapshot()
    known = {code: remainders.known_kg(snapshot, held[code]) for code in manifest.batch_codes}
    # A rejection weighs nothing (its receipts carry no weight); the rest is checked before
    # anything is written, so that a refusal changes nothing.
    weights: dict[str, Decimal | None] = dict.fromkeys(manifest.batch_codes)
    outcomes: dict[str, str] = dict.fromkeys(manifest.batch_codes, decision.decision)
    if decision.decision != "rejected":
        weighed = _weighed(decision, known)
        weights.update(weighed)
        if decision.decision == "partially_accepted":
            outcomes = _partial_outcomes(known, weighed, stated=decision.weights_kg is not None)
    found: list[tuple[str, str, str]] = []
    if declared and abs(decision.received_quantity_kg - declared) / declared > tolerance:
        found.append(("quantity_kg", _kg(declared), _kg(decision.received_quantity_kg)))
    if decision.weights_kg is not None:
        # Weighed batch by batch (as e-Manifest records each line): a batch off the kg it
        # declared by the same tolerance is a discrepancy of its own, also where the total
        # agrees (a part refused of one batch while another weighed more than it declared). A
        # batch counted in items or m³, or a part refused of one, declared no kg: the catalog's
        # estimate is no declaration to be off (`remainders.estimated_basis`).
        for code, weight in weights.items():
            mass = known[code]
            if (
                weight is not None
                and mass
                and abs(weight - mass) / mass > tolerance
                and not await remainders.estimated_basis(None, held[code])
            ):
                found.append((f"weights_kg.{code}", _kg(mass), _kg(weight)))
    for name in ("waste_name", "physical_form", "packaging"):
        value = getattr(decision.found, name)
        if value is not None and value != getattr(manifest, name):
            found.append((name, getattr(manifest, name), value))
    if decision.found.hazard is not None and set(decision.found.hazard) != set(manifest.hazard):
        found.append(("hazard", ",".join(manifest.hazard), ",".join(decision.found.hazard)))
    await record(
        principal,
        [
            {
                "client_event_id": step_id(
                    number=manifest.number, step=RECEIVED_STEP, code=code, secret=secret
                ),
                "event_type": EventType.received,
                "batch": code,
                "device_time": manifest.arrived_at,
                "outcome": outcomes[code],
                "reason": decision.reason,
                **({} if weight is None else {"weight_kg": weight}),
                "note": f"联单 {manifest.number}",
            }
            for code, weight in weights.items()
        ],
        secret,
        # A batch's weight (its share of the quantity received, or as stated) must be one a
        # batch may have; a receipt's outcome is the decision.
        fields={
            "weight_kg": "received_quantity_kg" if decision.weights_kg is None else "weights_kg",
            "device_time": "arrived_at",
            "outcome": "decision",
        },
    )
    await ManifestDiscrepancy.bulk_create(
        [
            ManifestDiscrepancy(manifest=manifest, field=f, declared=d, found=v, recorded_at=now)
            for f, d, v in found
        ]
    )
    manifest.decision = decision.decision
    manifest.received_quantity_kg = decision.received_quantity_kg
    manifest.method_id = decision.method
    manifest.decision_reason = decision.reason
    manifest.receiver_signed_by_id = principal.user_id
    manifest.receiver_signed_at = now
    manifest.state = decision.decision
    await manifest.save()
    return await get_manifest(principal=principal, manifest_id=manifest_id)


def _weighed(decision: DecisionCommand, known: dict[str, Decimal | None]) -> dict[str, Decimal]:
    """Each batch's weighing on its receipt (`known`: the manifest's batches, by code, with
    their declared masses): as the receiver stated it, one for every batch and none for
    another (the command checked that they add up to the quantity received), else the
    quantity received shared by the declared masses (`_allocated`)."""
    if decision.weights_kg is None:
        return dict(zip(known, _allocated(decision.received_quantity_kg, known), strict=True))
    # A code as typed or printed on the label (ABCD-EFGH-J, lower case) is the code.
    stated: dict[str, Decimal] = {}
    for typed, weight in decision.weights_kg.items():
        code = codes.normalize(typed)
        if code not in known:
            raise ValidationFailed(
                f"{typed} is no batch code of this manifest (its batches: {', '.join(known)})",
                field=f"weights_kg.{typed}",
            )
        if code in stated:
            raise ValidationFailed(
                f"{typed} weighs batch {code} a second time", field=f"weights_kg.{typed}"
            )
        stated[code] = weight
    missing = [code for code in known if code not in stated]
    if missing:
        raise ValidationFailed(
            f"weights_kg gives no weight for batch {', '.join(missing)}: state one for every"
            " batch of the manifest",
            field="weights_kg",
        )
    return {code: stated[code] for code in known}


def _partial_outcomes(
    known: dict[str, Decimal | None], weighed: dict[str, Decimal], *, stated: bool
) -> dict[str, str]:
    """Each batch's receipt outcome under a partial acceptance: partially accepted where its
    weight refuses a part of what it declared (`remainders.part_refused`, the rule custody
    splits the part off by), accepted where it refuses none (weighed at or above its
    declaration, or of no known mass: received whole). At least one batch must refuse a part:
    received whole, nothing would be split off to go back, and the manifest would say partly
    refused of waste received in full."""
    outcomes = {
        code: "partially_accepted"
        if mass is not None and remainders.part_refused(mass, weighed[code]) is not None
        else "accepted"
        for code, mass in known.items()
    }
    if "partially_accepted" in outcomes.values():
        return outcomes
    if all(mass is None for mass in known.values()):
        raise RuleViolation(
            "a partial acceptance refuses a part of what a batch declared, and no batch here"
            " declares a known mass (counted in items or m³, with no catalog estimate), so no"
            " part can be told from the rest: accept the waste whole or reject it",
            field="decision",
        )
    if stated:
        raise ValidationFailed(
            "a partial acceptance refuses a part of what a batch declared: weights_kg weighs"
            " every batch at or above its declared mass (kg, or the catalog's estimate), which"
            " leaves none (accept the waste instead)",
            field="weights_kg",
        )
    declared = sum((mass for mass in known.values() if mass is not None), Decimal(0))
    raise ValidationFailed(
        f"a partial acceptance refuses a part of the {declared} kg the batches declared:"
        " received_quantity_kg leaves none (accept the waste instead)",
        field="received_quantity_kg",
    )


def _allocated(received: Decimal, declared: dict[str, Decimal | None]) -> list[Decimal]:
    """The quantity received as each batch's weighing, in the order of `declared` (batch code:
    its declared mass): the whole of it for a single batch, else shared among the batches as
    their declared masses are (kg, or the catalog's estimate for items and m³), to the gram by
    the largest remainders (each share rounded down, the grams left over one each to the
    shares that lost most), so the weights add up to what the decision states; a share that
    comes to nothing takes a gram from the largest.

    A weighing is a measurement (docs/metrics.md §3): beside other batches, one of no known
    mass has no share to be given, and any weight set on it (none, an equal part) would be made
    up yet counted as measured, and its neighbours' weights would be off by as much. So would
    a share of 0 kg given to an estimate that rounds to 0.000 kg (a few small items): a
    receipt weighed at nothing. Such a share is refused (409 naming `decision`) before
    anything is written: the receiver states each batch's weight (`weights_kg`) instead."""
    if len(declared) == 1:
        return [received]
    unknown = [code for code, mass in declared.items() if not mass]
    if unknown:
        raise RuleViolation(
            "the quantity received is shared among the batches by their declared masses, and"
            f" batch {', '.join(unknown)} declares none (counted in items or m³ with no catalog"
            " estimate, or estimated at 0 kg): its share would be a weighing made up. Send each"
            " batch's weight as weighed on arrival in weights_kg (batch code: kg, adding up to"
            " received_quantity_kg), or reject the manifest",
            field="decision",
        )
    masses = [mass for mass in declared.values() if mass]
    total = sum(masses, Decimal(0))
    gram = Decimal("0.001")
    if received < gram * len(masses):
        raise ValidationFailed(
            f"the quantity received is shared among {len(masses)} batches and cannot weigh"
            " each at a gram at least: state the quantity received as weighed, or reject the"
            " manifest",
            field="received_quantity_kg",
        )
    exact = [received * mass / total for mass in masses]
    shares = [value.quantize(gram, ROUND_DOWN) for value in exact]
    left = int((received - sum(shares, Decimal(0))) / gram)
    by_loss = sorted(range(len(shares)), key=lambda i: exact[i] - shares[i], reverse=True)
    for index in by_loss[:left]:
        shares[index] += gram
    # A receipt weighed at nothing is no weighing: a share that came to 0 g takes a gram from
    # the largest (there is one of 2 g at least, the quantity having a gram for each).
    for index in [i for i, share in enumerate(shares) if not share]:
        largest = max(range(len(shares)), key=shares.__getitem__)
        shares[largest] -= gram
        shares[index] += gram
    return shares
