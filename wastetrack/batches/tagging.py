"""Tagging: a new batch bound to a label (or to a code issued on the spot), by a role that may
tag, for a producer it may tag for."""

from decimal import Decimal

from wastetrack.batches import identifiers
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch, Label, Unit
from wastetrack.catalog import service as catalog
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from wastetrack.core.settings import get_settings
from wastetrack.custody import chain, repository
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.rules import (
    SPECS,
    EventType,
    State,
)
from wastetrack.custody.work import (
    Work,
    check_common,
    flag_if_behind,
    holding_organization,
    issue_label,
    new_batch,
    new_event,
    organization,
)
from wastetrack.registry import access

TAGGING_ROLES = SPECS[EventType.tagged].roles


MAX_QUANTITY = {Unit.KG: Decimal(100_000), Unit.COUNT: Decimal(100_000), Unit.M3: Decimal(10_000)}


def flag_before_printing(work: Work, sub: EventCommand, batch: Batch, label: Label) -> None:
    """A pre-printed label cannot be tagged before it was printed: a batch whose tagging is
    dated so, as recorded or as corrected (`sub` the tagging or its correction), is flagged, not
    refused (a phone's wrong clock). A label made with its batch was issued when the server
    recorded the tagging, which a phone offline dates earlier rightly."""
    if label.pre_printed:
        flag_if_behind(work, sub, batch, label.issued_at, at=batch.tagged_at)


def check_quantity(quantity: Decimal, unit: Unit, *, field: str) -> None:
    """What one batch holds, as tagged or corrected: no more than MAX_QUANTITY of its unit
    plausibly fits, and items are whole (3.5 drums is no count: every figure in items adds
    whole ones)."""
    if quantity > MAX_QUANTITY[unit]:
        raise ValidationFailed(
            f"quantity {quantity} {unit.value} is implausible for one batch (at most"
            f" {MAX_QUANTITY[unit]} {unit.value})",
            field=field,
        )
    if unit == Unit.COUNT and quantity != quantity.to_integral_value():
        raise ValidationFailed(
            f"a quantity in items is a whole number of them, not {quantity}", field=field
        )


async def tag(work: Work, sub: EventCommand, code: str | None, digest: str) -> repository.NewEvent:
    principal = work.principal
    if principal.role not in TAGGING_ROLES:
        raise Forbidden(f"a {principal.role.value} cannot tag batches", field="event_type")
    label: Label | None = None
    if code is not None:
        bound = work.batches.get(code)
        if bound is not None:
            if not batches.parties(principal, bound):
                # Another organization's batch answers as an unknown code: scanning or typing
                # codes reveals nothing about which exist.
                raise NotFound(batches.NOT_FOUND, field="batch")
            raise Conflict("this label is bound to a batch already", field="batch")
        label = work.labels.get(code)
        # A label of the user's own stock, or of stock issued to the producer it tags for.
        if label is None or label.organization_id not in (
            principal.organization_id,
            sub.producer_organization_id,
        ):
            raise NotFound(batches.NOT_FOUND, field="batch")
    stream = sub.stream or (label.stream_id if label else None)
    if stream is None:
        raise ValidationFailed("stream is required for a new batch", field="stream")
    if label is not None and stream != label.stream_id:
        raise ValidationFailed(
            f"this label was issued for the {label.stream_id} stream",
            field="stream",
        )
    category = await catalog.category_for_stream(stream=stream, category=sub.category or "")
    await catalog.validate_waste_code(category=category.key, waste_code=sub.waste_code)
    catalog.check_hazards(category, sub.hazard)  # none named: the category's, below
    rules = work.catalog.streams[stream].rules or {}
    for required in rules.get("tag_requires", []):
        if not getattr(sub, required):
            raise ValidationFailed(f"{required} is required to tag {stream} waste", field=required)
    assert sub.quantity is not None and sub.unit is not None
    check_quantity(sub.quantity, sub.unit, field="quantity")
    producer = organization(
        work, sub.producer_organization_id or principal.organization_id, "producer_organization_id"
    )
    # Where the batch counts: at its origin site's region (a site may lie below its
    # organization's region, registry.create_site), else at its producer's; a collection
    # point's waste is a community's to tag where the site lies in its area.
    site = work.sites.get(sub.origin_site_id) if sub.origin_site_id is not None else None
    await access.check_may_tag_for(
        principal=principal,
        producer_id=producer.id,
        stream=stream,
        label_organization_id=label.organization_id if label else None,
        on=local_date(sub.device_time, work.timezone),
        site_region_path=site.region.path if site and site.organization_id == producer.id else None,
    )
    region = producer.region
    if sub.origin_site_id is not None:
        if site is None or site.organization_id != producer.id:
            raise ValidationFailed(
                "the origin site must belong to the producer", field="origin_site_id"
            )
        region = site.region
    carrier = (
        organization(work, sub.carrier_organization_id, "carrier_organization_id").id
        if sub.carrier_organization_id
        else (principal.organization_id if principal.organization_id != producer.id else None)
    )
    destination = (
        holding_organization(
            work, sub.destination_organization_id, "destination_organization_id"
        ).id
        if sub.destination_organization_id
        else None
    )
    check_common(work, sub, None)
    identifier = identifiers.pending_prefix(
        stream_rules=rules,
        credit_code=producer.credit_code,
        waste_code=sub.waste_code,
        tagged_at=sub.device_time,
        timezone=work.timezone,
        require_credit_code=get_settings().hj1276_require_credit_code,
    )
    if identifier is not None:  # the last check: a tagging refused after it would keep a number
        await identifiers.check_room(identifier, work.identifier_numbers)
    if label is None:
        code = issue_label(work, stream)
    else:
        code = label.code
        work.bound_labels.append(code)
    batch = new_batch(
        work,
        id=work.batch_ids.pop(),
        code=code,
        identifier=identifier,  # numbered when the call writes (identifiers.number)
        stream_id=stream,
        category_id=category.key,
        waste_code=sub.waste_code,
        hazard=sub.hazard or list(category.hazard),
        producer_id=producer.id,
        origin_site_id=sub.origin_site_id,
        region_path=region.path,
        quantity=sub.quantity,
        unit=sub.unit,
        holder_id=producer.id,
        carrier_id=carrier,
        destination_id=destination,
        tagged_at=sub.device_time,
    )
    if label is not None:
        flag_before_printing(work, sub, batch, label)
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.tagged,
        state=State.tagged.value,
        digest=digest,
        details={
            "stream": stream,
            "category": category.key,
            "quantity": str(sub.quantity),
            "unit": sub.unit.value,
            "waste_code": sub.waste_code,
            # The carrier the tagging leaves the batch with (stated, else the tagger unless it
            # is the producer): the registers name each movement's carrier from the log.
            "carrier": carrier,
            **chain.fixed_at_tagging(batch),
        },
    )
