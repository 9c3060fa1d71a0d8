"""The custody state machine as data: which event may follow which state, by whom."""

from dataclasses import dataclass
from enum import StrEnum

from wastetrack.auth.models import Role


class EventType(StrEnum):
    tagged = "tagged"
    collected = "collected"
    handed_over = "handed_over"
    in_transit = "in_transit"
    stored = "stored"
    received = "received"
    treated = "treated"
    aggregated = "aggregated"
    corrected = "corrected"
    cancelled = "cancelled"


class State(StrEnum):
    tagged = "tagged"
    collected = "collected"
    handed_over = "handed_over"
    in_transit = "in_transit"
    stored = "stored"
    received = "received"
    rejected = "rejected"
    treated = "treated"
    aggregated = "aggregated"
    cancelled = "cancelled"


class Outcome(StrEnum):
    accepted = "accepted"
    partially_accepted = "partially_accepted"
    rejected = "rejected"


class Party(StrEnum):
    """How the actor's organization stands to the batch."""

    producer = "producer"
    holder = "holder"
    carrier = "carrier"
    destination = "destination"
    region = "region"


FINAL_STATES = frozenset({State.treated, State.cancelled, State.aggregated})
FIELD_ROLES = frozenset({Role.collector, Role.carrier, Role.port_operator})
HANDLER_ROLES = FIELD_ROLES | {Role.generator, Role.facility_operator}


@dataclass(frozen=True, slots=True)
class Rule:
    from_states: frozenset[State]
    roles: frozenset[Role]
    parties: frozenset[Party]


_ANY_LIVE = frozenset(set(State) - FINAL_STATES)

RULES: dict[EventType, Rule] = {
    EventType.collected: Rule(
        frozenset({State.tagged}),
        FIELD_ROLES,
        frozenset({Party.producer, Party.holder, Party.carrier}),
    ),
    EventType.handed_over: Rule(
        frozenset(
            {
                State.tagged,
                State.collected,
                State.handed_over,
                State.stored,
                State.received,
                State.rejected,
                State.in_transit,
            }
        ),
        HANDLER_ROLES,
        frozenset({Party.holder}),
    ),
    EventType.in_transit: Rule(
        frozenset({State.collected, State.handed_over, State.stored, State.rejected}),
        FIELD_ROLES,
        frozenset({Party.holder, Party.carrier}),
    ),
    EventType.stored: Rule(
        frozenset({State.collected, State.handed_over, State.in_transit, State.received}),
        HANDLER_ROLES,
        frozenset({Party.holder, Party.destination}),
    ),
    EventType.received: Rule(
        frozenset({State.in_transit, State.handed_over, State.stored}),
        frozenset({Role.facility_operator}),
        frozenset({Party.holder, Party.destination}),
    ),
    EventType.treated: Rule(
        frozenset({State.received, State.stored}),
        frozenset({Role.facility_operator}),
        frozenset({Party.holder}),
    ),
    EventType.aggregated: Rule(
        frozenset(
            {State.tagged, State.collected, State.handed_over, State.in_transit, State.stored}
        ),
        HANDLER_ROLES,
        frozenset({Party.holder, Party.carrier, Party.producer}),
    ),
    EventType.corrected: Rule(
        frozenset(State),
        HANDLER_ROLES | {Role.manager, Role.admin},
        frozenset({Party.producer, Party.holder, Party.carrier, Party.destination, Party.region}),
    ),
    EventType.cancelled: Rule(
        frozenset({State.tagged}),
        frozenset({Role.generator, Role.collector, Role.port_operator, Role.manager, Role.admin}),
        frozenset({Party.producer, Party.region}),
    ),
}
