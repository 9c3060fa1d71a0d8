"""The custody spec, walked without a database: every state × event × role × party through the
guards, against an expectation table written here by hand (not read from the spec), and the
request fields each event type requires."""

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.base import error_field
from schemas.events import EventCreate
from tests.factories import event
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.batches.tagging import TAGGING_ROLES
from wastetrack.core.errors import DomainError, Forbidden, RuleViolation
from wastetrack.core.principal import Principal
from wastetrack.custody import labels, transitions
from wastetrack.custody.corrections import CORRECTABLE
from wastetrack.custody.rules import SPECS, EventType, Party, State
from wastetrack.registry.models import Organization, OrganizationKind

FIELD = "collector carrier port_operator"
HANDLERS = f"{FIELD} generator facility_operator"
LIVE = "tagged collected handed_over in_transit stored received rejected"
EVERY_STATE = f"{LIVE} treated aggregated cancelled"

# event: (the states it may follow, the roles that may record it, the parties one of which the
# actor's organization must be), as docs/custody.md states the rules; `party@state,state` is a
# party that may act only from those states.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "tagged": ("", "generator collector carrier port_operator", ""),
    "collected": ("tagged handed_over rejected stored", FIELD, "producer holder carrier"),
    "handed_over": (LIVE, HANDLERS, "holder"),
    "in_transit": (
        "collected handed_over in_transit stored rejected",
        FIELD,
        "holder carrier@collected,rejected",
    ),
    "stored": (
        "collected handed_over in_transit received",
        HANDLERS,
        "holder destination@in_transit",
    ),
    "received": (
        "handed_over in_transit stored",
        "facility_operator",
        "holder destination@in_transit",
    ),
    "treated": ("received stored", "facility_operator", "holder"),
    "aggregated": ("tagged collected handed_over in_transit stored", HANDLERS, "holder"),
    "corrected": (
        EVERY_STATE,
        f"{HANDLERS} manager admin",
        "producer holder carrier destination region recorder",
    ),
    "cancelled": ("tagged", "generator collector port_operator manager admin", "producer region"),
}
FINAL = {"treated", "aggregated", "cancelled"}
# event: the states in which a party limited to some states (`party@states`) may not take the
# batch from its producer's hands (docs/custody.md: its carrier picks a refused batch up from
# whoever delivered it; a refused bag back with the clinic that handed it over is handed over
# again by the clinic).
NOT_FROM_PRODUCER: dict[str, str] = {"in_transit": "rejected"}
# event: the states it follows only while the batch's producer holds it (a bag handed or
# refused back to its clinic is collected again, as a tagged one is).
PRODUCER_ONLY: dict[str, str] = {"collected": "handed_over rejected stored"}

# The relations an organization may have to a batch: none, or one party (several parties allow
# what any one of them allows).
RELATIONS: list[set[Party]] = [set(), *({party} for party in Party)]


def _principal(role: Role, organization_id: int = 1) -> Principal:
    return Principal(
        user_id=1, username="u", role=role, organization_id=organization_id, region_path="1."
    )


def _batch(state: str, **parties: int | None) -> Batch:
    """A batch in memory (no database): producer 10, which also holds it unless `parties` say."""
    batch = Batch(id=1, code="C", state=state, region_path="2.")
    values = {"producer_id": 10, "holder_id": 10, "carrier_id": None, "destination_id": None}
    for name, value in {**values, **parties}.items():
        setattr(batch, name, value)
    return batch


def _expected_refusal(
    event: str, role: Role, state: str, relation: set[Party], *, producer_holds: bool = False
) -> str | None:
    """The guard that refuses, in the order they are checked, or None where all allow."""
    states, roles, party_cells = (set(cell.split()) for cell in EXPECTED[event])
    if role.value not in roles:
        return "role"
    if state not in states:
        return "state"
    parties = set()
    if state in PRODUCER_ONLY.get(event, "").split() and not producer_holds:
        party_cells = set()
    for cell in party_cells:
        party, _, only = cell.partition("@")
        limited_away = only and producer_holds and state in NOT_FROM_PRODUCER.get(event, "").split()
        if (not only or state in only.split(",")) and not limited_away:
            parties.add(party)
    if not {p.value for p in relation} & parties:
        return "party"
    return None


def test_the_expectation_table_covers_every_event_type() -> None:
    assert set(EXPECTED) == {e.value for e in EventType} == {e.value for e in SPECS}


@pytest.mark.parametrize("producer_holds", [True, False], ids=["producer holds", "another holds"])
@pytest.mark.parametrize("event_type", list(EventType))
def test_every_state_role_and_party_meets_the_guard_the_table_expects(
    event_type: EventType, producer_holds: bool
) -> None:
    wrong = []
    for state in State:
        batch = _batch(state.value, holder_id=10 if producer_holds else 20)
        for role in Role:
            for relation in RELATIONS:
                expected = _expected_refusal(
                    event_type.value, role, state.value, relation, producer_holds=producer_holds
                )
                try:
                    transitions.check_allowed(_principal(role), batch, relation, event_type)
                    got, error = None, None
                except DomainError as caught:
                    error = caught
                    got = {
                        (Forbidden, "event_type"): "role",
                        (RuleViolation, "event_type"): "state",
                        (Forbidden, "batch"): "party",
                    }.get((type(caught), caught.field), repr(caught))
                if got != expected:
                    wrong.append((state.value, role.value, sorted(relation), expected, got))
                if got == "state" and state.value in FINAL:
                    assert error is not None and "a final state" in error.detail
    assert not wrong, f"{len(wrong)} cases differ, e.g. {wrong[:5]}"


@pytest.mark.parametrize("role", list(Role))
def test_a_scan_offers_the_events_the_table_allows(role: Role) -> None:
    """The holder's user (and a region's manager, by the batch's region) sees as actions
    exactly the event types the table allows from each state."""
    for state in State:
        batch = _batch(state.value, holder_id=1)
        relation = {Party.holder}
        if role in (Role.manager, Role.auditor, Role.admin):
            batch.region_path = "1.2."
            relation = {Party.holder, Party.region}
        expected = [
            e.value for e in EventType if _expected_refusal(e.value, role, state, relation) is None
        ]
        assert transitions.allowed_actions(_principal(role), batch) == expected, state


def test_only_the_roles_that_may_tag_are_offered_a_tagging() -> None:
    assert {role.value for role in TAGGING_ROLES} == set(EXPECTED["tagged"][1].split())


# event: the fields a request must carry (in the order they are checked), and a value for each.
REQUIRED: dict[str, tuple[str, ...]] = {
    "tagged": ("category", "quantity", "unit"),
    "collected": ("batch",),
    "handed_over": ("to_organization_id", "batch"),
    "in_transit": ("batch",),
    "stored": ("batch",),
    "received": ("outcome", "batch"),
    "treated": ("method", "batch"),
    "aggregated": ("children", "batch"),
    "corrected": ("corrects", "batch"),
    "cancelled": ("reason", "batch"),
}
VALUES: dict[str, Any] = {
    "category": "med.infectious",
    "quantity": "3.5",
    "unit": "kg",
    "batch": "YR1HY22NY",
    "to_organization_id": 3,
    "outcome": "accepted",
    "method": "D10",
    "children": ["YR1HY22NY"],
    "corrects": "5f0c5c1e-3b5a-4d7e-9c55-1f1a2b3c4d5e",
    "reason": "mislabelled",
}


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_event_type_requires_its_fields_and_names_the_one_missing(
    event_type: EventType,
) -> None:
    names = REQUIRED[event_type.value]
    complete = event(event_type.value, **{name: VALUES[name] for name in names})
    EventCreate.model_validate(complete)  # all of them: accepted
    for name in names:
        body = {key: value for key, value in complete.items() if key != name}
        with pytest.raises(ValidationError) as raised:
            EventCreate.model_validate(body)
        (error,) = raised.value.errors()
        assert error_field(error) == name
        assert error["msg"] == f"{name} is required for a {event_type.value} event"


def test_a_missing_batch_is_reported_after_the_fields_of_the_type() -> None:
    with pytest.raises(ValidationError) as raised:
        EventCreate.model_validate(event("handed_over"))
    assert error_field(raised.value.errors()[0]) == "to_organization_id"


def test_corrections_may_change_what_the_spec_says_per_event_type() -> None:
    assert CORRECTABLE == {
        "tagged": ("event_time", "quantity", "unit", "category"),
        "received": ("outcome", "weight_kg"),
        "treated": ("method", "weight_kg"),
        "aggregated": ("aggregated",),
    }


def test_every_event_and_state_has_a_chinese_label() -> None:
    assert labels.event_label("handed_over") == "交接"
    assert labels.state_label("rejected") == "已拒收"
    assert all(labels.EVENT_TYPE_LABELS[e] for e in EventType)
    assert all(labels.STATE_LABELS[s] for s in State)


def test_the_custody_effect_moves_holder_and_carrier_as_the_spec_says() -> None:
    """Holder and carrier after each event with a fixed effect: the actor is organization 1, the
    producer 10; a receiver 3 is a carrier."""
    carrier, facility = Organization(id=3), Organization(id=4)
    carrier.kind, facility.kind = OrganizationKind.carrier, OrganizationKind.treatment_facility
    cases: list[tuple[EventType, Organization | None, dict[str, int | None], tuple]] = [
        (EventType.collected, None, {}, (1, 1)),
        (EventType.collected, None, {"carrier_id": 7}, (1, 7)),
        (EventType.handed_over, carrier, {}, (3, 3)),
        (EventType.handed_over, facility, {"carrier_id": 7}, (4, 7)),
        (EventType.in_transit, None, {"carrier_id": 7}, (1, 1)),
        (EventType.stored, None, {"carrier_id": 7}, (1, 7)),
        (EventType.treated, None, {"holder_id": 4}, (4, None)),
        (EventType.cancelled, None, {}, (10, None)),
    ]
    for event_type, receiver, parties, expected in cases:
        batch = _batch("tagged", **parties)
        transitions.take_custody(batch, event_type, actor=1, receiver=receiver)
        assert (batch.holder_id, batch.carrier_id) == expected, event_type
    # A producer collecting its own waste does not become its carrier.
    batch = _batch("tagged")
    transitions.take_custody(batch, EventType.collected, actor=10)
    assert (batch.holder_id, batch.carrier_id) == (10, None)
