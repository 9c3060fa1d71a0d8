"""The custody state machine as data: one `EventSpec` per event type, in `SPECS`.

Each spec says which states an event may follow, who may record it (roles, and how the actor's
organization must stand to the batch), the fields a request must carry, the state it leaves the
batch in, whom the batch is then with, how it counts in the roll-ups and its Chinese label. The
request validators, the guards (`check_allowed`), the scan's list of actions, the handlers, the
roll-up, alert and register SQL, the labels and the table in docs/custody.md all read it."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from wastetrack.auth.models import Role
from wastetrack.core.errors import Forbidden, RuleViolation


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


REFUSING = frozenset({Outcome.partially_accepted, Outcome.rejected})
"""The receipts that refuse waste, in whole or part: each states why, as recorded, decided on a
manifest or left by its corrections (`REFUSAL_NEEDS_REASON`)."""
REFUSAL_NEEDS_REASON = "reason is required when waste is refused in whole or part"


class Party(StrEnum):
    """How the actor's organization stands to the batch."""

    producer = "producer"
    holder = "holder"
    carrier = "carrier"
    destination = "destination"
    region = "region"
    # It recorded the event a correction names: it corrects its own record even once the batch
    # has left it (a facility's rejection sent the batch back to its deliverer).
    recorder = "recorder"


class Holder(StrEnum):
    """Whom an event leaves the batch with (`batch.holder_id`)."""

    unchanged = "unchanged"
    producer = "producer"  # a new batch: its producer (a remainder: its deliverer)
    actor = "actor"  # the actor's organization
    receiver = "receiver"  # the organization it is handed to (`to_organization_id`)
    # The receiving facility if it accepts, else whoever delivered the batch (`take_custody`
    # reads the outcome, recorded or corrected).
    acceptor = "acceptor"


class Carrier(StrEnum):
    """What an event does to the batch's carrier (`batch.carrier_id`)."""

    unchanged = "unchanged"
    stated = "stated"  # tagging: the stated carrier, else the tagger unless it is the producer
    actor_if_none = "actor_if_none"  # the actor, if no carrier is set and it is not the producer
    actor = "actor"
    receiver_if_carrier = "receiver_if_carrier"  # the receiver, when it is a carrier


class Rollup(StrEnum):
    """How an event counts in the roll-ups (wastetrack/rollups/facts.py, docs/metrics.md)."""

    none = "none"  # the batch's fact cannot change: recording it costs the roll-ups nothing
    fact = "fact"  # may change the batch's fact (its mass, category or container)
    fate = "fate"  # decides the batch's fate: the latest such event, after corrections


STATE_LABELS: dict[State, str] = {
    State.tagged: "已贴标",
    State.collected: "已收集",
    State.handed_over: "已交接",
    State.in_transit: "运输中",
    State.stored: "贮存中",
    State.received: "已接收",
    State.rejected: "已拒收",
    State.treated: "已处置",
    State.aggregated: "已合并装箱",
    State.cancelled: "已作废",
}

FINAL_STATES = frozenset({State.treated, State.cancelled, State.aggregated})
FIELD_ROLES = frozenset({Role.collector, Role.carrier, Role.port_operator})
HANDLER_ROLES = FIELD_ROLES | {Role.generator, Role.facility_operator}


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: its guards, its contract, its effect and how it counts."""

    label: str
    from_states: frozenset[State]  # empty: the event creates the batch
    roles: frozenset[Role]
    parties: frozenset[Party]  # empty: no batch yet (tagging checks its producer itself)
    required: tuple[str, ...]  # request fields, in the order they are checked
    targets: tuple[State | None, ...]  # the states it may leave; None: the batch's own state
    # Request fields it may carry besides the required ones and `COMMON_FIELDS`; any other
    # field set is refused (`fields_of`), never silently dropped.
    optional: tuple[str, ...] = ()
    holder: Holder = Holder.unchanged
    carrier: Carrier = Carrier.unchanged
    rollup: Rollup = Rollup.none
    # Fields a correction of an event of this type may change (beyond CORRECTABLE_ON_ANY).
    correctable: tuple[str, ...] = ()
    # Roles that may act on another organization's event (a correction's).
    overriders: frozenset[Role] = frozenset()
    # Parties that may act only from some of `from_states`: one that does not hold the batch
    # takes it only as it comes to them (a destination, as the batch arrives).
    party_states: Mapping[Party, frozenset[State]] = field(default_factory=dict)
    # States in which those parties take the batch only from another than its producer: from
    # the producer's hands it goes by its own handover or by a collection (`producer_only`).
    not_from_producer: frozenset[State] = frozenset()
    # States from which the event follows only while the batch's producer holds it: a refused
    # or returned bag back with its clinic is collected again as a tagged one is (with the
    # producer's PIN where the stream asks, cosign.producer_confirmation).
    producer_only: frozenset[State] = frozenset()
    note: str = ""  # how the handler picks its target or holder, where it computes them

    @property
    def target(self) -> State | None:
        """The state the event always leaves, or None where the handler computes it."""
        return self.targets[0] if len(self.targets) == 1 else None

    def parties_in(self, state: str, *, producer_holds: bool) -> frozenset[Party]:
        """The parties one of which may record the event on a batch in this state, held by its
        producer or not."""
        if state in self.producer_only and not producer_holds:
            return frozenset()
        return frozenset(
            p
            for p in self.parties
            if state in self.party_states.get(p, self.from_states)
            and not (p in self.party_states and producer_holds and state in self.not_from_producer)
        )


def _states(*states: State) -> frozenset[State]:
    return frozenset(states)


def _parties(*parties: Party) -> frozenset[Party]:
    return frozenset(parties)


# Every event but the tagging names its batch; that requirement is checked last.
_BATCH = ("batch",)

SPECS: dict[EventType, EventSpec] = {
    EventType.tagged: EventSpec(
        label="贴标登记",
        from_states=frozenset(),
        roles=frozenset({Role.generator, Role.collector, Role.carrier, Role.port_operator}),
        parties=frozenset(),
        required=("category", "quantity", "unit"),
        optional=(
            "stream",
            "waste_code",
            "hazard",
            "producer_organization_id",
            "origin_site_id",
            "carrier_organization_id",
            "destination_organization_id",
        ),
        targets=(State.tagged,),
        holder=Holder.producer,
        carrier=Carrier.stated,
        rollup=Rollup.fact,
        correctable=("event_time", "quantity", "unit", "category"),
    ),
    EventType.collected: EventSpec(
        label="收集",
        # A tagged batch is its producer's; a batch handed back to its producer, or refused
        # back to it, and stored there or not, is collected again from it, and from nobody else.
        from_states=_states(State.tagged, State.handed_over, State.rejected, State.stored),
        producer_only=_states(State.handed_over, State.rejected, State.stored),
        roles=FIELD_ROLES,
        parties=_parties(Party.producer, Party.holder, Party.carrier),
        required=_BATCH,
        optional=("producer_pin", "vehicle_plate"),
        targets=(State.collected,),
        holder=Holder.actor,
        carrier=Carrier.actor_if_none,
    ),
    EventType.handed_over: EventSpec(
        label="交接",
        from_states=_states(
            State.tagged,
            State.collected,
            State.handed_over,
            State.stored,
            State.received,
            State.rejected,
            State.in_transit,
        ),
        roles=HANDLER_ROLES,
        parties=_parties(Party.holder),
        required=("to_organization_id", *_BATCH),
        optional=("producer_pin", "vehicle_plate"),
        targets=(State.handed_over,),
        holder=Holder.receiver,
        carrier=Carrier.receiver_if_carrier,
    ),
    EventType.in_transit: EventSpec(
        label="运输",
        from_states=_states(
            State.collected, State.handed_over, State.stored, State.rejected, State.in_transit
        ),
        roles=FIELD_ROLES,
        parties=_parties(Party.holder, Party.carrier),
        # The batch's carrier picks it up where it was collected or refused (from whoever
        # delivered it, not from its producer, which hands it over); once handed over or stored,
        # it moves on only with whoever holds it. In transit already, its holder sends it on in
        # another vehicle (a transfer at its depot: a later manifest leg of the same carrier),
        # which the event's plate records.
        party_states={Party.carrier: _states(State.collected, State.rejected)},
        not_from_producer=_states(State.rejected),
        required=_BATCH,
        optional=("destination_organization_id", "vehicle_plate"),
        targets=(State.in_transit,),
        holder=Holder.actor,
        carrier=Carrier.actor,
    ),
    EventType.stored: EventSpec(
        label="贮存",
        from_states=_states(State.collected, State.handed_over, State.in_transit, State.received),
        roles=HANDLER_ROLES,
        parties=_parties(Party.holder, Party.destination),
        party_states={Party.destination: _states(State.in_transit)},
        required=_BATCH,
        targets=(State.stored,),
        holder=Holder.actor,
    ),
    EventType.received: EventSpec(
        label="接收",
        from_states=_states(State.in_transit, State.handed_over, State.stored),
        roles=frozenset({Role.facility_operator}),
        parties=_parties(Party.holder, Party.destination),
        party_states={Party.destination: _states(State.in_transit)},
        required=("outcome", *_BATCH),
        optional=("reason", "refused_kg"),
        targets=(State.received, State.rejected),
        holder=Holder.acceptor,
        rollup=Rollup.fate,
        correctable=("outcome", "weight_kg"),
        note="`rejected` when the outcome is `rejected`, else `received`",
    ),
    EventType.treated: EventSpec(
        label="处置",
        from_states=_states(State.received, State.stored),
        roles=frozenset({Role.facility_operator}),
        parties=_parties(Party.holder),
        required=("method", *_BATCH),
        targets=(State.treated, State.stored),
        rollup=Rollup.fate,
        correctable=("method", "weight_kg"),
        note="`stored` for a method of the pending mode (storage is not a fate)",
    ),
    EventType.aggregated: EventSpec(
        label="合并装箱",
        from_states=_states(
            State.tagged, State.collected, State.handed_over, State.in_transit, State.stored
        ),
        roles=HANDLER_ROLES,
        parties=_parties(Party.holder),
        required=("children", *_BATCH),
        targets=(State.aggregated, None),
        rollup=Rollup.fact,
        # `aggregated: false` on a child's own event undoes its aggregation (corrections).
        correctable=("aggregated",),
        note="the children become `aggregated`; the container keeps its state",
    ),
    EventType.corrected: EventSpec(
        label="更正",
        from_states=frozenset(State),
        roles=HANDLER_ROLES | {Role.manager, Role.admin},
        parties=frozenset(Party),
        required=("corrects", *_BATCH),
        # And every field a correction may change (`fields_of`); `event_time` is the corrected
        # tagging's.
        optional=("event_time",),
        targets=(
            None,
            State.received,
            State.rejected,
            State.treated,
            State.stored,
            State.tagged,
            State.collected,
            State.handed_over,
            State.in_transit,
        ),
        holder=Holder.acceptor,
        rollup=Rollup.fact,
        overriders=frozenset({Role.manager, Role.admin}),
        note="a corrected outcome or method may change the state the corrected event left;"
        " an undone aggregation (`aggregated: false`) gives the child back its state before it",
    ),
    EventType.cancelled: EventSpec(
        label="作废",
        from_states=_states(State.tagged),
        roles=frozenset(
            {Role.generator, Role.collector, Role.port_operator, Role.manager, Role.admin}
        ),
        parties=_parties(Party.producer, Party.region),
        required=("reason", *_BATCH),
        targets=(State.cancelled,),
        rollup=Rollup.fate,
    ),
}

# What a correction may change on an event of any type.
CORRECTABLE_ON_ANY = ("weight_kg", "latitude", "longitude", "photo_sha256", "reason")

# The request fields every event may carry: its identity, batch, time, place, weight, photo and
# note (a tagging's `batch`: the pre-printed label it binds).
COMMON_FIELDS = (
    "client_event_id",
    "event_type",
    "batch",
    "device_time",
    "latitude",
    "longitude",
    "weight_kg",
    "photo_sha256",
    "note",
)


def _fields(event_type: EventType, spec: EventSpec) -> frozenset[str]:
    fields = {*COMMON_FIELDS, *spec.required, *spec.optional}
    if event_type == EventType.corrected:
        fields |= {f for s in SPECS.values() for f in s.correctable} | set(CORRECTABLE_ON_ANY)
    return frozenset(fields)


_FIELDS = {event_type: _fields(event_type, spec) for event_type, spec in SPECS.items()}


def fields_of(event_type: EventType) -> frozenset[str]:
    """The request fields an event of this type may carry; another field set is refused."""
    return _FIELDS[event_type]


def foreign_field_rule(event_type: EventType, field: str) -> str:
    """The rule a request breaks when it sets a field its event type has no use for."""
    return (
        f"{field} does not belong to a {event_type.value} event"
        f" (its fields: {', '.join(sorted(_FIELDS[event_type] - {'event_type'}))})"
    )


def required_rule(event_type: EventType, field: str) -> str:
    """The rule a request breaks when it lacks one of its event type's required fields."""
    return f"{field} is required for a {event_type.value} event"


def events_counted(*rollups: Rollup) -> tuple[EventType, ...]:
    """The event types that count in the roll-ups in one of these ways, in the enum's order."""
    return tuple(e for e, spec in SPECS.items() if spec.rollup in rollups)


def sql_list(values: Iterable[str]) -> str:
    """Constant keys as a SQL list (`'a', 'b'`), formatted into query text once, at import:
    the keys are the enums' own, never user input."""
    return ", ".join(f"'{value}'" for value in values)


def estimated_remainder(batch: str) -> str:
    """SQL: whether the batch row `batch` is a remainder whose kg was set against the
    catalog's estimate (its tagging says `estimated`, custody.remainders): an estimate, never a
    declaration. Its tagging is reached by key."""
    return (
        f"EXISTS (SELECT 1 FROM custody_event {batch}_tagging"
        f" WHERE {batch}.split_from_id IS NOT NULL AND {batch}_tagging.batch_id = {batch}.id"
        f" AND {batch}_tagging.seq = 1 AND {batch}_tagging.details->>'estimated' = 'true'"
        " OFFSET 0)"
    )


def check_allowed(
    event_type: EventType,
    *,
    role: Role,
    state: str,
    relation: set[Party],
    producer_holds: bool,
) -> None:
    """Refuse an event the spec does not allow here: by role, by the batch's state, by how the
    actor's organization stands to the batch, held by its producer or not (checked in that
    order)."""
    spec = SPECS[event_type]
    if role not in spec.roles:
        raise Forbidden(
            f"a {role.value} cannot record a {event_type.value} event", field="event_type"
        )
    if state not in spec.from_states:
        detail = (
            f"the batch is {state}, a final state: nothing may follow it"
            if state in FINAL_STATES
            else f"a {event_type.value} event cannot follow the state {state}"
        )
        raise RuleViolation(detail, field="event_type")
    parties = spec.parties_in(state, producer_holds=producer_holds)
    if not relation & parties:
        who = (
            f"it must be the batch's {' or '.join(sorted(p.value for p in parties))}"
            if parties
            else "only while its producer holds it"
        )
        raise Forbidden(
            f"your organization may not record {event_type.value} for this batch"
            f" while it is {state} ({who})",
            field="batch",
        )


def may_correct(*, role: Role, organization_id: int | None, recorded_by: int | None) -> bool:
    """Whether a user may correct an event recorded by the organization `recorded_by`: the
    recorder's own users may, and a correction's overriders (managers, admins) any event."""
    overriders = SPECS[EventType.corrected].overriders
    return role in overriders or (recorded_by is not None and recorded_by == organization_id)
