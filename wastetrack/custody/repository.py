"""Set-based writes for the custody log: one statement per table however many events a sync
carries. The ORM builds one statement per row, which a 500-event sync cannot afford."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from tortoise import connections

from wastetrack.batches.models import Batch, Label
from wastetrack.core.sqlfunctions import BY_KEY, SqlFunction
from wastetrack.custody.rules import Outcome
from wastetrack.manifests.models import CANCELLED
from wastetrack.registry.models import Organization, Region


@dataclass(slots=True)
class NewEvent:
    """A custody event not yet written; same attribute names as the CustodyEvent model."""

    id: uuid.UUID
    batch_id: int
    seq: int
    event_type: str
    state_after: str
    device_time: datetime
    server_time: datetime
    actor_id: int
    organization_id: int
    prev_hash: str = ""  # both set when the event is chained (work._link)
    hash: str = ""
    outcome: str | None = None
    reason: str | None = None
    method_id: str | None = None
    mode: str | None = None
    to_organization_id: int | None = None
    related_batch_id: int | None = None
    corrects_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
    latitude: float | None = None
    longitude: float | None = None
    weight_kg: Decimal | None = None
    photo_sha256: str | None = None
    client_event_id: uuid.UUID | None = None
    payload_digest: str | None = None


@dataclass(slots=True)
class NewLabel:
    code: str
    organization_id: int
    stream_id: str
    issued_by_id: int
    issued_at: datetime


LABEL_COLUMNS = {
    "code": "text",
    "organization_id": "int",
    "stream_id": "text",
    "issued_by_id": "int",
    "issued_at": "timestamptz",
}
EVENT_COLUMNS = {
    "id": "uuid",
    "batch_id": "int",
    "seq": "int",
    "event_type": "text",
    "state_after": "text",
    "outcome": "text",
    "reason": "text",
    "method_id": "text",
    "mode": "text",
    "to_organization_id": "int",
    "related_batch_id": "int",
    "corrects_id": "uuid",
    "details": "text",
    "device_time": "timestamptz",
    "server_time": "timestamptz",
    "actor_id": "int",
    "organization_id": "int",
    "latitude": "float8",
    "longitude": "float8",
    "weight_kg": "numeric",
    "photo_sha256": "text",
    "client_event_id": "uuid",
    "payload_digest": "text",
    "prev_hash": "text",
    "hash": "text",
}
NEW_BATCH_COLUMNS = {
    "id": "int",
    "code": "text",
    "identifier": "text",
    "stream_id": "text",
    "category_id": "text",
    "waste_code": "text",
    "hazard": "jsonb",
    "producer_id": "int",
    "origin_site_id": "int",
    "region_path": "text",
    "quantity": "numeric",
    "unit": "text",
    "state": "text",
    "holder_id": "int",
    "carrier_id": "int",
    "destination_id": "int",
    "parent_id": "int",
    "split_from_id": "int",
    "tagged_at": "timestamptz",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "last_seq": "int",
    "last_hash": "text",
    "last_device_time": "timestamptz",
}
CHANGED_BATCH_COLUMNS = [
    # A correction of the tagging event changes these four.
    "category_id",
    "quantity",
    "unit",
    "tagged_at",
    "state",
    "holder_id",
    "carrier_id",
    "destination_id",
    "parent_id",
    "last_seq",
    "last_hash",
    "last_device_time",
    "updated_at",
]


_LOCK_BATCHES = "SELECT * FROM batch WHERE code = ANY($1::text[]) ORDER BY id FOR UPDATE"
_BATCH_IDS = (
    "SELECT nextval(pg_get_serial_sequence('batch', 'id')) FROM generate_series(1, {count})"
)


async def lock_batches(codes: set[str]) -> list[Batch]:
    """The batches with these codes, locked for the rest of the transaction, in id order so
    that concurrent calls cannot deadlock."""
    rows = await connections.get("default").execute_query_dict(_LOCK_BATCHES, [list(codes)])
    # Tortoise's own constructor for rows read from the database (no per-field validation).
    return [Batch._init_from_db(**row) for row in rows]


_CONTAINERS_OF = (
    "WITH RECURSIVE up AS (SELECT parent_id AS id FROM batch WHERE code = ANY($1::text[])"
    " AND parent_id IS NOT NULL UNION SELECT b.parent_id FROM batch b JOIN up ON b.id = up.id"
    " WHERE b.parent_id IS NOT NULL) SELECT code FROM batch WHERE id IN (SELECT id FROM up)"
)


async def containers_of(codes: list[str]) -> set[str]:
    """The codes of the containers these batches are packed in, at any depth, as stored (read
    unlocked: a call locks them with its own batches, in one id order)."""
    rows = await connections.get("default").execute_query(_CONTAINERS_OF, [codes])
    return {str(row[0]) for row in rows[1]}


async def allocate_batch_ids(count: int) -> list[int]:
    """Batch ids taken from the table's sequence before the rows exist, so events made in the
    same call can point at batches made in the same call."""
    if count == 0:
        return []
    rows = await connections.get("default").execute_query(
        _BATCH_IDS.format(count="$1::int"), [count]
    )
    return [int(row[0]) for row in rows[1]]


@dataclass(frozen=True, slots=True)
class SiteRef:
    """What recording needs of a site: whose it is, and the region what is tagged there
    counts under (which may lie below its organization's, `registry.create_site`)."""

    organization_id: int
    region: Region


@dataclass(slots=True)
class Loaded:
    """What a recording call reads before it decides anything, in one round trip."""

    batches: list[Batch]
    """The batches with the call's codes, locked, in id order."""
    labels: list[Label]
    """The labels with the call's other codes (not yet bound to a batch), locked."""
    organizations: list[Organization]
    """With their region."""
    sites: dict[int, SiteRef]
    """Site id → its organization's id and its region."""
    batch_ids: list[int]
    """Fresh batch ids for the batches the call may tag."""
    known: dict[uuid.UUID, dict[str, Any]]
    """Events already recorded under the call's client ids, with what a resend needs to be
    told (payload_digest, id, state_after, batch__code) and whose it is (organization_id)."""


# Two statements in one call. The first locks the batches, then the labels (in that order, as
# every call takes them), and reads what the call refers to: each part is an array of rows of
# its table's type, which asyncpg decodes with their column names and types. The second reads
# the client ids already recorded. It must be a statement of its own: a statement's snapshot is
# taken before it waits for a lock, so a resend that waited for its original's lock would not
# see it committed; the second statement's snapshot is taken after the locks. It goes through
# client_event, the one place a client id is unique, whose batch_id leads each lookup to the
# event's own partition.
_LOCK_AND_READ = (
    f"WITH locked AS ({_LOCK_BATCHES}),"
    " labelled AS (SELECT * FROM label WHERE code = ANY($1::text[])"
    " AND code NOT IN (SELECT code FROM locked) ORDER BY code FOR UPDATE)"
    " SELECT ARRAY(SELECT ROW(b.*)::batch FROM locked b ORDER BY b.id) AS batches,"
    " ARRAY(SELECT ROW(l.*)::label FROM labelled l ORDER BY l.code) AS labels,"
    " ARRAY(SELECT o FROM organization o WHERE o.id = ANY($2::int[])) AS organizations,"
    # the organizations' regions and the sites'
    " ARRAY(SELECT r FROM region r WHERE r.id IN"
    " (SELECT region_id FROM organization WHERE id = ANY($2::int[])"
    " UNION ALL SELECT region_id FROM site WHERE id = ANY($3::int[]))) AS regions,"
    # site id, its organization's id and its region's id, as triples
    " ARRAY(SELECT ARRAY[s.id, s.organization_id, s.region_id] FROM site s"
    " WHERE s.id = ANY($3::int[])) AS sites,"
    f" ARRAY({_BATCH_IDS.format(count='$4::int')}) AS batch_ids"
)
_KNOWN = (
    "SELECT array_agg(c.client_event_id) AS client_ids,"
    " array_agg(e.payload_digest::text) AS digests, array_agg(e.id) AS ids,"
    " array_agg(e.state_after::text) AS states, array_agg(b.code::text) AS codes,"
    " array_agg(e.organization_id) AS orgs"
    " FROM client_event c"
    " JOIN custody_event e ON e.batch_id = c.batch_id AND e.id = c.event_id"
    " JOIN batch b ON b.id = c.batch_id WHERE c.client_event_id = ANY($5::uuid[])"
)
LOAD = SqlFunction(
    name="wastetrack_load_custody",
    # codes, organizations, sites, how many new batches, client ids
    parameters=("text[]", "int[]", "int[]", "int", "uuid[]"),
    returns=(
        "TABLE (batches batch[], labels label[], organizations organization[],"
        " regions region[], sites int[], batch_ids bigint[], known_client_ids uuid[],"
        " known_digests text[], known_ids uuid[], known_states text[], known_codes text[],"
        " known_organizations int[])"
    ),
    body=(
        "\n#variable_conflict use_column\nDECLARE read record;\nBEGIN\n"
        f"SELECT * INTO read FROM ({_LOCK_AND_READ}) AS locked_and_read;\n"
        "RETURN QUERY SELECT read.batches, read.labels, read.organizations, read.regions,"
        f" read.sites, read.batch_ids, known.* FROM ({_KNOWN}) AS known;\n"
        "END\n"
    ),
    settings=BY_KEY,
    language="plpgsql",
)


async def load(
    *,
    codes: set[str],
    undoing: list[str],
    organization_ids: set[int],
    site_ids: set[int],
    new_batches: int,
    client_event_ids: list[uuid.UUID],
) -> Loaded:
    """Lock the call's batches and labels, read what the call refers to, then the events
    already recorded under its client ids, in one round trip (see `LOAD`). The containers the
    `undoing` batches are packed in, at any depth, which an undone packing judges, are locked
    with them in the one id order: read unlocked first, then again once the batches are
    locked; a container packed into another meanwhile (whose lock, taken later, could wait on
    a call waiting on this one) has every lock released to a savepoint and taken again with
    it, until the read finds no container unlocked."""
    connection = connections.get("default")
    if undoing:
        codes = codes | await containers_of(undoing)
        await connection.execute_script("SAVEPOINT wastetrack_load")
    while True:
        (row,) = await connection.execute_query_dict(
            LOAD.call,
            [list(codes), list(organization_ids), list(site_ids), new_batches, client_event_ids],
        )
        more = await containers_of(undoing) - codes if undoing else set()
        if not more:
            break
        await connection.execute_script("ROLLBACK TO SAVEPOINT wastetrack_load")
        codes = codes | more
    regions = {r["id"]: Region._init_from_db(**r) for r in row["regions"]}
    organizations = []
    for record in row["organizations"]:
        org = Organization._init_from_db(**record)
        # where select_related("region") would put it
        object.__setattr__(org, "_region", regions[org.region_id])
        organizations.append(org)
    known = zip(
        *(
            row[name] or []
            for name in (
                "known_client_ids",
                "known_digests",
                "known_ids",
                "known_states",
                "known_codes",
                "known_organizations",
            )
        ),
        strict=True,
    )
    return Loaded(
        batches=[Batch._init_from_db(**r) for r in row["batches"]],
        labels=[Label._init_from_db(**r) for r in row["labels"]],
        organizations=organizations,
        sites={
            int(site_id): SiteRef(int(org_id), regions[region_id])
            for site_id, org_id, region_id in row["sites"]
        },
        batch_ids=[int(i) for i in row["batch_ids"]],
        known={
            client_id: {
                "payload_digest": digest,
                "id": event_id,
                "state_after": state,
                "batch__code": code,
                "organization_id": org_id,
            }
            for client_id, digest, event_id, state, code, org_id in known
        },
    )


# The manifests a batch ($1, its code as a JSON array) may move on: signed by their producer
# and not cancelled; an open one is also not yet decided by its receiver.
_SIGNED_LISTING = (
    f"m.batch_codes @> $1::jsonb AND m.producer_signed_at IS NOT NULL AND m.state <> '{CANCELLED}'"
)


# The manifest that governs a batch: the latest its producer signed that lists it, an open one
# (not decided, not cancelled) first; for a refused part split from a batch at a receipt (a
# remainder, `split_from_id`), which no manifest lists, that of the batch it was split from
# (followed to the first batch a signed manifest lists). With the batch's holder and producer,
# and how far up the split it was found (`depth`, 0: the batch itself).
_GOVERNING_MANIFEST = (
    "WITH RECURSIVE lineage AS (SELECT b.code, b.split_from_id, b.holder_id, b.producer_id,"
    " 0 AS depth FROM batch b WHERE b.code = $1"
    " UNION ALL SELECT p.code, p.split_from_id, l.holder_id, l.producer_id, l.depth + 1"
    " FROM lineage l JOIN batch p ON p.id = l.split_from_id)"
    " SELECT m.id, m.state, m.decision, m.receiver_id, m.producer_id, m.receiver_signed_at,"
    " m.arrived_at, l.holder_id AS batch_holder_id, l.producer_id AS batch_producer_id, l.depth"
    " FROM lineage l JOIN manifest m ON m.batch_codes @> jsonb_build_array(l.code)"
    " WHERE m.producer_signed_at IS NOT NULL"
    f" ORDER BY l.depth, (m.state <> '{CANCELLED}' AND m.receiver_signed_at IS NULL) DESC,"
    " m.producer_signed_at DESC LIMIT 1"
)


async def on_signed_manifest(code: str, organization_id: int, *, producer: bool) -> bool:
    """Whether the transfer manifest that governs this batch lets the organization take it
    next. An open one (signed by its producer, not decided, not cancelled): while a leg is
    unsigned, only the carrier of an unsigned leg (`later_leg` then wants the first), as that
    leg's signature takes the batch from the previous carrier; once every leg is signed, its
    receiver or one of its carriers, and once its arrival is recorded, its receiver only (the
    decision receives every batch). A decided one opens only the way back of what it refused
    (the batch is `rejected`, as `producer` says, or its decision was a rejection, or the batch
    is the refused part split from one of its batches) until the batch is back with its
    producer: the producer and the manifest's carriers. A cancelled one names only its
    producer, to whom the batch may go back from wherever the manifest left it. A remainder is
    governed by the manifest of the batch it was split from until a manifest lists it."""
    rows = await connections.get("default").execute_query_dict(
        f"WITH governing AS ({_GOVERNING_MANIFEST})"
        " SELECT 1 FROM governing m WHERE CASE"
        f" WHEN m.state = '{CANCELLED}' THEN m.producer_id = $2"
        " WHEN m.receiver_signed_at IS NULL THEN CASE"
        " WHEN EXISTS (SELECT 1 FROM manifest_leg l WHERE l.manifest_id = m.id"
        " AND l.signed_at IS NULL)"
        " THEN EXISTS (SELECT 1 FROM manifest_leg l WHERE l.manifest_id = m.id"
        " AND l.signed_at IS NULL AND l.carrier_id = $2)"
        " ELSE m.receiver_id = $2 OR (m.arrived_at IS NULL AND EXISTS (SELECT 1"
        " FROM manifest_leg l WHERE l.manifest_id = m.id AND l.carrier_id = $2)) END"
        f" ELSE ($3 OR m.decision = '{Outcome.rejected.value}' OR m.depth > 0)"
        " AND m.batch_holder_id IS DISTINCT FROM m.batch_producer_id"
        " AND (m.producer_id = $2 OR EXISTS (SELECT 1 FROM manifest_leg l"
        " WHERE l.manifest_id = m.id AND l.carrier_id = $2)) END",
        [code, organization_id, producer],
    )
    return bool(rows)


async def later_leg(code: str, carrier_id: int) -> tuple[bool, bool]:
    """How a handover of this batch to the carrier stands to the batch's open manifest
    (producer signed, not decided, not cancelled): whether the carrier has signed every leg of
    its own, one after the first among them (that signature put in its hands the batches
    handed to it by then), and whether a leg before the carrier's next unsigned one is unsigned
    still (that leg's signature needs the batches in its own carrier's hands)."""
    (row,) = await connections.get("default").execute_query_dict(
        "WITH target AS (SELECT l.manifest_id,"
        " min(l.seq) FILTER (WHERE l.signed_at IS NULL) AS seq, bool_or(l.seq > 1) AS later"
        " FROM manifest m JOIN manifest_leg l ON l.manifest_id = m.id"
        f" WHERE {_SIGNED_LISTING} AND m.receiver_signed_at IS NULL"
        " AND l.carrier_id = $2 GROUP BY l.manifest_id)"
        " SELECT COALESCE(bool_or(t.seq IS NULL AND t.later), false) AS signed,"
        " COALESCE(bool_or(EXISTS (SELECT 1 FROM manifest_leg e"
        " WHERE e.manifest_id = t.manifest_id AND e.seq < t.seq AND e.signed_at IS NULL)),"
        " false) AS early FROM target t",
        [json.dumps([code]), carrier_id],
    )
    return bool(row["signed"]), bool(row["early"])


_CHANGED_KINDS = {"id": "int", **{name: NEW_BATCH_COLUMNS[name] for name in CHANGED_BATCH_COLUMNS}}
_EVENT_SELECT = ", ".join(f"{name}::jsonb" if name == "details" else name for name in EVENT_COLUMNS)


def _write_statement() -> tuple[str, tuple[str, ...]]:
    """Labels issued and bound, batches made and changed, the events and their client ids, in
    one statement, and its parameters' types: a sub-statement whose array is empty writes
    nothing. The foreign keys are checked at the end of the statement, when the batches and
    events they point at exist; a client id already in client_event fails the whole statement
    (a concurrent resend)."""
    kinds: list[str] = []

    def parameter(kind: str) -> str:
        kinds.append(kind)
        return f"${len(kinds)}::{kind}"

    def placeholders(columns: dict[str, str]) -> dict[str, str]:
        return {name: parameter(f"{kind}[]") for name, kind in columns.items()}

    def arrays(columns: dict[str, str]) -> str:
        return ", ".join(placeholders(columns).values())

    bound_at = parameter("timestamptz")
    labels = arrays(LABEL_COLUMNS)
    bound = parameter("text[]")
    batches = arrays(NEW_BATCH_COLUMNS)
    changed = arrays(_CHANGED_KINDS)
    event_arrays = placeholders(EVENT_COLUMNS)
    events = ", ".join(event_arrays.values())
    client_ids = ", ".join(event_arrays[name] for name in ("client_event_id", "batch_id", "id"))
    assignments = ", ".join(f"{name} = v.{name}" for name in CHANGED_BATCH_COLUMNS)
    statement = (
        f"WITH issued AS (INSERT INTO label ({', '.join(LABEL_COLUMNS)}, bound_at)"
        f" SELECT *, {bound_at} FROM unnest({labels})),"
        f" bound AS (UPDATE label SET bound_at = {bound_at} WHERE code = ANY({bound})),"
        f" made AS (INSERT INTO batch ({', '.join(NEW_BATCH_COLUMNS)})"
        f" SELECT * FROM unnest({batches})),"
        f" changed AS (UPDATE batch SET {assignments} FROM unnest({changed})"
        f" AS v({', '.join(_CHANGED_KINDS)}) WHERE batch.id = v.id),"
        f" claimed AS (INSERT INTO client_event (client_event_id, batch_id, event_id)"
        f" SELECT * FROM unnest({client_ids}) AS v(client_event_id, batch_id, event_id)"
        f" WHERE v.client_event_id IS NOT NULL)"
        f" INSERT INTO custody_event ({', '.join(EVENT_COLUMNS)}) SELECT {_EVENT_SELECT}"
        f" FROM unnest({events}) AS v({', '.join(EVENT_COLUMNS)})"
    )
    return statement, tuple(kinds)


_WRITE_STATEMENT, _WRITE_PARAMETERS = _write_statement()
# On its generic plan: with one event, planning the statement cost more than running it
# (see wastetrack.core.sqlfunctions).
WRITE = SqlFunction(
    name="wastetrack_write_custody",
    parameters=_WRITE_PARAMETERS,
    returns="void",
    body=_WRITE_STATEMENT,
    settings=BY_KEY,
)
FUNCTIONS = (LOAD, WRITE)
"""The recording's statements kept as SQL functions, installed by `wastetrack migrate`."""


@dataclass(frozen=True, slots=True)
class Part:
    """Rows of one write, as they stood when the part was taken: a sync's later events go on
    changing the same batches while an earlier part is being written."""

    client_event_ids: list[uuid.UUID | None]
    """Of its events, in order."""
    arguments: list[Any]
    """The write statement's parameters."""


def part(
    *,
    labels: Sequence[NewLabel],
    bound_labels: Sequence[str],
    new_batches: Sequence[Batch],
    changed_batches: Sequence[Batch],
    events: Sequence[NewEvent],
    bound_at: datetime,
) -> Part:
    """Take these rows for one write (see `WRITE`)."""
    return Part(
        client_event_ids=[e.client_event_id for e in events],
        arguments=[
            bound_at,
            *([getattr(x, name) for x in labels] for name in LABEL_COLUMNS),
            list(bound_labels),
            *(
                [
                    json.dumps(b.hazard or []) if name == "hazard" else _value(getattr(b, name))
                    for b in new_batches
                ]
                for name in NEW_BATCH_COLUMNS
            ),
            *([_value(getattr(b, name)) for b in changed_batches] for name in _CHANGED_KINDS),
            *(
                [
                    json.dumps(e.details, ensure_ascii=False)
                    if name == "details"
                    else getattr(e, name)
                    for e in events
                ]
                for name in EVENT_COLUMNS
            ),
        ],
    )


async def write(rows: Part) -> None:
    """One part of what a recording call decided, in one round trip."""
    await connections.get("default").execute_query(WRITE.call, rows.arguments)


def _value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
