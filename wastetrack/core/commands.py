"""What the domain accepts: commands, validated once where they enter, and the value types
their fields share. HTTP contracts in ``schemas/`` build on these; the domain never imports
``schemas/``."""

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from annotated_types import Interval
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

# Control characters are refused at the edge, naming the field: PostgreSQL stores no NUL in
# text or JSON, and a spreadsheet holds none of the others but tab, line feed and carriage
# return (an XLSX download of the row would fail), which stay allowed; nor DEL and the C1
# controls (U+0080-U+009F: NEL is a line break no printed document expects), which no one types;
# nor the noncharacters U+FFFE and U+FFFF, which no XML document, so no XLSX file, may hold.
UNHELD = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff"
"""The characters no text of the service holds, as a regular expression's character range."""
NO_CONTROL = rf"^[^{UNHELD}]*$"
INT32_MAX = 2**31 - 1

Text = Annotated[str, StringConstraints(pattern=NO_CONTROL)]
"""Any string the API accepts: no control characters but tab, line feed and carriage return;
lengths come from the column, per field."""

Reason = Annotated[Text, Field(min_length=1, max_length=2000)]
"""Why a party changes what was recorded (a revision, a cancellation): required, as the audit
and the other parties read it."""


def _not_true_or_false(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "a number: true and false are not numbers")
    return value


NoBoolean = BeforeValidator(_not_true_or_false)
"""JSON's true and false are no numbers; pydantic reads them as 1 and 0 (a return of
`"count": true` credited a drum no one returned, `"to_organization_id": true` named
organization 1). Every number a client sends is one of the types below, `Latitude` or
`Longitude`, which refuse them."""


def _true_or_false(value: Any) -> Any:
    if not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "true or false: not a number, nor a word")
    return value


OnlyBoolean = BeforeValidator(_true_or_false)
Boolean = Annotated[bool, OnlyBoolean]
"""A yes or no a client sends: JSON's true or false only. Pydantic's lax reading takes 1 and 0,
"yes", "no", "on", "off", "t" and "f" too, so `"passed": 1` counted a sorting check passed;
every boolean a request or a command takes refuses them, naming the field."""


def _true_or_false_written(value: Any) -> Any:
    if isinstance(value, bool):  # a default
        return value
    if value in ("true", "false"):
        return value == "true"
    raise PydanticCustomError("bool_type", "true or false: not a number, nor a word")


OnlyWrittenBoolean = BeforeValidator(_true_or_false_written)
QueryBoolean = Annotated[bool, OnlyWrittenBoolean]
"""A yes or no in a query string: `true` or `false`, as JSON writes them; FastAPI would read
`1`, `yes`, `off` too (`open_only=off` listed every alert)."""

Integer = Annotated[int, NoBoolean]
"""A whole number a client sends (its bounds per field)."""

Id = Annotated[int, NoBoolean, Interval(ge=1, le=INT32_MAX)]
"""A row id: the columns are PostgreSQL integers (int32)."""

Int32 = Annotated[int, NoBoolean, Interval(ge=-INT32_MAX - 1, le=INT32_MAX)]

Key = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_CONTROL)]
"""A short name: an indicator's code (its column holds 64), a stream's code."""


def _unpadded(key: str) -> str:
    if key != key.strip():
        raise PydanticCustomError(
            "key_padded",
            "a key has no leading or trailing whitespace (stripped, it would name another key"
            " of the object, whose value one of the two would silently replace)",
        )
    return key


MapKey = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=1, max_length=64, pattern=NO_CONTROL),
    AfterValidator(_unpadded),
]
"""A JSON object's key (item counts, a criterion's entry, a batch's weight): taken as sent, not
stripped as other strings are, and refused when it has whitespace around it."""

Code = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=NO_CONTROL)]
"""A code, a signed token or a scanned URL in a path or query."""

# UNHELD with GS (\x1d) cut out of its range \x0e-\x1f: a scanner writes it (the scan stories
# send one, so a range written otherwise in UNHELD fails them rather than drifting apart).
SCANNED = "^[^" + UNHELD.replace(r"\x0e-\x1f", r"\x0e-\x1c\x1e\x1f") + "]*$"
"""`NO_CONTROL` but the group separator: what no text of the service holds (`UNHELD`) but GS."""
Scanned = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=SCANNED)]
"""What a phone scanned or a user typed to name a batch, a collection point or a berth (the
scan's `qr` too): a code, a QR URL or an HJ 1276 数字识别码. As `Code`, and a scanner's group
separator (GS, 0x1D) is allowed too: it is read as a gap between an identifier's segments, and
the text is never stored."""
SearchedFor = Annotated[str, StringConstraints(max_length=512, pattern=SCANNED)]
"""A search box's `Scanned`, or blank: nothing asked yet (the dashboard's trace page)."""

MOST_OFFSET = timedelta(hours=14)
"""The widest UTC offset a clock keeps (Kiribati's +14:00; the westernmost is -12:00)."""


# How an ISO 8601 date-time begins: its year and a hyphen (pydantic reads a number in any
# spelling, `1.79e9` or `.5`, as Unix time: the check names what a time is, not what it is not).
_DATE_TIME = re.compile(r"\s*[0-9]{4}-")


def _moment_text(value: Any) -> Any:
    """A moment is written, as ISO 8601 with its offset. Pydantic would also take a number,
    as Unix seconds or, past 2e10, milliseconds: a phone's count in the other unit would be
    another instant, and no offset says which it meant."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME.match(value)):
        return value
    raise PydanticCustomError(
        "moment_format", "a time is written as ISO 8601 with its UTC offset, not as a number"
    )


def _offset_of_a_clock(value: datetime) -> datetime:
    """An offset no clock keeps (`+23:59`, ISO 8601's widest) is a mistyped one: its instant
    would be a day away from what the phone showed."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MOST_OFFSET:
        raise PydanticCustomError(
            "moment_offset", "a UTC offset lies within -14:00 and +14:00, as clocks keep them"
        )
    return value


FIRST_YEAR, LAST_YEAR = 1900, 2199


def _written_within_years(value: datetime) -> datetime:
    """A time written in the years 1900–2199 (in its own offset, as the client wrote it): its
    city day and its column can always be computed (an extreme year overflowed there, a 500).
    Said in the times' own form: pydantic's bound read `datetime.datetime(1900, 1, 1, …)`."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError(
            "moment_range", f"a time written in the years {FIRST_YEAR} to {LAST_YEAR}"
        )
    return value


MomentRange = AfterValidator(_written_within_years)

Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_moment_text),
    AfterValidator(_offset_of_a_clock),
    MomentRange,
]
"""A time a client sends, written as ISO 8601 with its UTC offset (within ±14:00), in the years
1900 to 2199 (`MomentRange`). Rules of the domain narrow it further, a device clock to 2000 and
after, say."""

_DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_alone(value: Any) -> Any:
    """A day is sent as its date alone. Pydantic would also take a midnight time with an offset
    (or a count of seconds) and keep that offset's date, which need not be the city's day of
    the instant: 2026-10-01T00:00:00+14:00 is 30 September in Rongcheng."""
    if isinstance(value, str) and _DAY_TEXT.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise PydanticCustomError(
        "day_format", "a day is a calendar date written YYYY-MM-DD, without a time or an offset"
    )


_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)


def _within_years(value: date) -> date:
    # Said in the days' own form: pydantic's own bound reads `datetime.date(1900, 1, 1)`.
    if not _FIRST_DAY <= value <= _LAST_DAY:
        raise PydanticCustomError(
            "day_range", f"a day from {_FIRST_DAY.isoformat()} to {_LAST_DAY.isoformat()}"
        )
    return value


Day = Annotated[
    date,
    BeforeValidator(_date_alone),
    AfterValidator(_within_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "ge": _FIRST_DAY.isoformat(),
            "le": _LAST_DAY.isoformat(),
        }
    ),
]
"""A calendar day a client sends, as YYYY-MM-DD (the city's day: it carries no time or offset
to read in another zone), in the same years as a `Moment`."""

Latitude = Annotated[float, NoBoolean, Field(ge=-90, le=90)]
Longitude = Annotated[float, NoBoolean, Field(ge=-180, le=180)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A photo's SHA-256, lower-case hex, as the evidence store names it."""
Hazard = Literal["T", "C", "I", "R", "In"]
"""Hazard characteristics: toxicity, corrosivity, ignitability, reactivity, infectivity."""


def _each_once(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise PydanticCustomError("unique_items", "names each hazard characteristic once")
    return items


Hazards = Annotated[list[Hazard], AfterValidator(_each_once), Field(max_length=5)]
"""A batch's hazard characteristics: a set, each named once. The order they are sent in is the
order a label prints them, not content: a command lists the field in `UNORDERED_FIELDS`, so a
resend naming them in another order is the same record."""


class Command(BaseModel):
    """A request to the domain, checked field by field when it is made: a phone's event, a
    port's delivery, a manifest. The API's contracts extend these with their documentation;
    the domain (the demo, a manifest's own events) makes them directly."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, str_strip_whitespace=True)

    LATE_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields added after clients first stored digests of this command."""

    UNORDERED_FIELDS: ClassVar[tuple[str, ...]] = ()
    """List fields that hold a set: their digest reads the items in sorted order."""

    SCANNED_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields naming a batch, a collection point or a berth as a phone scanned or a user typed
    it (a QR URL, a code in any case, with or without hyphens, an HJ 1276 数字识别码): their
    content is what they name, so a digest reads the code each names (`named`)."""

    READ_FIELDS: ClassVar[dict[str, Callable[[str], str]]] = {}
    """Text fields whose value is written several ways (a plate in any case, with or without
    its separator), each with the reading of its value, as the record stores it: a digest
    reads the value (`named`)."""

    PERSONAL_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Text fields that identify a person (a farmer's phone or ID number). A digest is kept in
    the database, and a plain one gives such a field back to anyone who tries the values its
    masked form leaves open; so the command is digested only as `keyed` gives it, each of these
    fields replaced by its keyed hash."""

    _keyed: bool = PrivateAttr(default=False)

    def keyed(self, key: bytes) -> Self:
        """This command as its digest reads it: each personal field's value replaced by its
        HMAC-SHA256 under `key` (`keys.KeyRing.kept_digest`). Itself when it has none."""
        if not self.PERSONAL_FIELDS:
            return self
        hashed = {
            name: hmac.new(key, f"{name}:{value}".encode(), hashlib.sha256).hexdigest()
            for name in self.PERSONAL_FIELDS
            if (value := getattr(self, name)) is not None
        }
        copy = self.model_copy(update=hashed)
        copy._keyed = True
        return copy

    _as_sent: "Command | None" = PrivateAttr(default=None)

    def named(self, code_of: Callable[[str], str | None]) -> Self:
        """This command as its digest reads it: each text of a scanned field replaced by the
        code of what it names (`code_of`; one naming nothing is kept as written, and the
        command is refused), then each of `READ_FIELDS` by its value. Itself when that changes
        nothing. Each reading came in its own release, so each step keeps the command before
        it (`same_content` matches a record stored by any of them)."""
        update: dict[str, Any] = {}
        for name in self.SCANNED_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                update[name] = code_of(value) or value
            elif isinstance(value, list):
                update[name] = [code_of(text) or text for text in value]
        scanned = self._read_as(update)
        return scanned._read_as(
            {
                name: read(value)
                for name, read in self.READ_FIELDS.items()
                if isinstance(value := getattr(self, name), str)
            }
        )

    def _read_as(self, update: dict[str, Any]) -> Self:
        """This command with `update`'s values, keeping this one as the content before
        (`_as_sent`); itself when they are its own."""
        if all(update[name] == getattr(self, name) for name in update):
            return self
        copy = self.model_copy(update=update)
        copy._keyed = self._keyed
        copy._as_sent = self
        return copy

    def digest(self) -> str:
        """What makes a resend a duplicate: the same content always digests the same, however
        it was written: an instant in any UTC offset, a number with trailing zeros (2.40, 2.4)
        or as -0, each read as its value (fields in declaration order). Late fields count only
        when given, so a resend recorded before they existed stays a duplicate. Content
        written so already (the phone app's) digests as it did before values were read."""
        if self.PERSONAL_FIELDS and not self._keyed:
            raise TypeError(f"{type(self).__name__} holds personal fields: digest it keyed")
        return _written_digest(_canonical(self), self._late())

    def as_kept(self) -> dict[str, Any]:
        """This command (a line of a return, a consignment, a notification) as a record keeps
        it in JSON: each number in plain figures as its value reads (10 for 1E+1, 2.4 for 2.40,
        0 for -0), each instant in UTC; what the ledger, the files and the phone then show."""
        kept: dict[str, Any] = _canonical(self, sets=False).model_dump(mode="json")
        return kept

    def same_content(self, digest: str) -> bool:
        """Whether a record stored with `digest` holds this command's content: its digest, or,
        for one stored before digests read values (December 2026), the digest of the content as
        it was written then, which a resend of that request still matches; one stored before
        sets were read as sets, the digest of its values with the set as it came; one stored
        before scanned texts were read as the batches they name, the same as sent. A record
        with personal fields kept with no digest is taken as this content: its plain digest was
        dropped (migration 0063), and the client_event_id alone names it."""
        if self.PERSONAL_FIELDS and not digest:
            return True
        late = self._late()
        if digest in (self.digest(), _written_digest(self, late)):
            return True
        # Stored while values were read but sets were not yet (5 December 2026).
        if self.UNORDERED_FIELDS and digest == _written_digest(_canonical(self, sets=False), late):
            return True
        # Stored while scanned texts were digested as sent, or plates were (7 December 2026):
        # the command before each reading, in turn.
        return self._as_sent is not None and self._as_sent.same_content(digest)

    def _late(self) -> set[str]:
        return {name for name in self.LATE_FIELDS if getattr(self, name) is None}


def _written_digest(command: BaseModel, exclude: set[str]) -> str:
    return hashlib.sha256(command.model_dump_json(exclude=exclude).encode()).hexdigest()


_ZERO = Decimal(0)
_AS_WRITTEN = frozenset({str, int, bool, UUID})  # a field's value its digest takes as it is


def _canonical(value: Any, *, sets: bool = True) -> Any:
    """`value` (a command, or one of its fields) with each instant in UTC, each number as its
    value's shortest text (2.4 for 2.40, 10 for 1E+1, 0 for -0 and -0.0) and each mapping's
    keys in order (a JSON object's members have none), each set (a command's
    `UNORDERED_FIELDS`) in sorted order (unless not `sets`); itself when it is so already, as
    most are."""
    if isinstance(value, BaseModel):
        changed = {}
        unordered = getattr(value, "UNORDERED_FIELDS", ())
        for name, item in value.__dict__.items():
            if item is None or type(item) in _AS_WRITTEN:
                continue
            canonical = _canonical(item, sets=sets)
            if sets and name in unordered and canonical != sorted(canonical):
                canonical = sorted(canonical)
            if canonical is not item:
                changed[name] = canonical
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.utcoffset() else value
    if isinstance(value, Decimal):
        number = Decimal(format(value.normalize(), "f")) if value else _ZERO
        return value if str(number) == str(value) else number
    if isinstance(value, float):
        return 0.0 if value == 0 else value  # -0.0 is 0.0
    if isinstance(value, list):
        items = [_canonical(item, sets=sets) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        members = {key: _canonical(value[key], sets=sets) for key in sorted(value)}
        same = list(members) == list(value) and all(members[k] is value[k] for k in value)
        return value if same else members
    return value


def ascii_digits(text: str, *, most: int) -> bool:
    """Whether a client's `text` is a number to read with ``int()``: 1 to `most` ASCII digits.
    `str.isdigit` takes "²", which ``int()`` refuses (a 500), and ``int()`` itself takes
    Arabic-Indic and full-width digits, and thousands of digits slowly."""
    return 0 < len(text) <= most and text.isascii() and text.isdecimal()


def field_of(location: tuple[Any, ...] | list[Any]) -> str:
    """'events[3].weight_kg' style names from a pydantic error location."""
    parts: list[str] = []
    for part in location:
        if isinstance(part, int) and parts:
            parts[-1] = f"{parts[-1]}[{part}]"
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        elif part == "":
            # A key that is the empty string (refused as unknown): named as JSON writes it.
            parts.append('""')
        else:
            parts.append(str(part))
    return ".".join(parts)


def rule_error(field: str, message: str) -> PydanticCustomError:
    """A rule across several fields (raised in a model_validator) that names the field the
    client must fix: ``error_field`` appends it to the model's location."""
    return PydanticCustomError("model_rule", message, {"field": field})


def error_field(error: Any) -> str:
    """The field a pydantic error names: its location, and a model rule's own field. An
    object's key refused itself is named by the key: pydantic marks it with a last part
    "[key]" after the key it refused (the error's input), which a value under a key spelled
    "[key]" does not have."""
    location = tuple(error["loc"])
    if len(location) >= 2 and location[-1] == "[key]" and location[-2] == error.get("input"):
        location = location[:-1]
    name = field_of(location)
    own = (error.get("ctx") or {}).get("field") if error.get("type") == "model_rule" else None
    if own:
        return f"{name}.{own}" if name else str(own)
    return name


class Located(Command):
    """A command that may say where it was made: its latitude and longitude come together or
    not at all. The fields are declared by each command, where they stand in its order (a
    command's digest follows it); this mixin keeps the one rule."""

    @model_validator(mode="after")
    def _latitude_with_longitude(self) -> Self:
        latitude, longitude = getattr(self, "latitude", None), getattr(self, "longitude", None)
        if (latitude is None) != (longitude is None):
            raise rule_error("longitude", "latitude and longitude go together")
        return self
