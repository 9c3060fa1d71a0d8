"""The 数字识别码 (digital identifier) of a hazardous-waste batch, HJ 1276-2022 危险废物识别标志
设置技术规范: four segments, 37 characters, printed on the label, the manifest and exports.

    91371082MA3C4R2X7B 90024908 20261130 001
    └ unit (18) ─────┘ └ code ┘ └ date ┘ └ n ┘

1. the producing (or collecting) unit's 18-character unified social credit code (GB 32100);
2. the 8 digits of its 国家危险废物名录 code (``900-249-08`` → ``90024908``);
3. the day the waste was tagged, ``YYYYMMDD`` in the city's time zone;
4. a 3-digit sequence number per unit, waste code and day (``001``–``999``).

Sources: four segments and 37 characters in all, and what each segment holds, from secondary
readings of HJ 1276-2022 (see docs/labels.md); the widths 18 + 8 + 8 + 3 follow from the
credit code's length, the 名录 code's digits, an 8-digit date and the remainder. Numbers are
issued at the end of the recording call, in prefix order, from one counter row per prefix
(``identifier_sequence``): concurrent taggings wait for each other's commit instead of
colliding, and the unique index on ``batch.identifier`` refuses any duplicate all the same.
The call then writes each number into its tagging, whose hash it was not in yet
(``custody.work.pin_identifiers``).
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tortoise import connections

from wastetrack.batches.models import Batch
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import Conflict, ValidationFailed

STANDARD = "HJ 1276-2022"
UNIT_LENGTH = 18
WASTE_CODE_LENGTH = 8
DATE_LENGTH = 8
SEQUENCE_LENGTH = 3
PREFIX_LENGTH = UNIT_LENGTH + WASTE_CODE_LENGTH + DATE_LENGTH
LENGTH = PREFIX_LENGTH + SEQUENCE_LENGTH
MAX_SEQUENCE = 10**SEQUENCE_LENGTH - 1
# The credit code's alphabet (GB 32100: digits and capitals without I, O, Z, S, V).
PATTERN = re.compile(r"[0-9A-HJ-NP-RTUWXY]{18}[0-9]{8}(?:19|20)[0-9]{6}[0-9]{3}")


def applies(stream_rules: Mapping[str, Any] | None) -> bool:
    """Whether batches of a stream carry an HJ 1276 identifier: the streams whose movements need
    a transfer manifest (危险废物转移管理办法) are the hazardous ones HJ 1276 labels; medical
    waste, marked under HJ 421, does not."""
    return bool((stream_rules or {}).get("manifest"))


def waste_code_digits(waste_code: str) -> str:
    """``900-249-08`` → ``90024908``."""
    digits = waste_code.replace("-", "")
    if len(digits) != WASTE_CODE_LENGTH or not digits.isascii() or not digits.isdigit():
        raise ValidationFailed(
            "waste_code must have the form NNN-NNN-NN (国家危险废物名录)", field="waste_code"
        )
    return digits


def prefix(*, credit_code: str, waste_code: str, tagged_at: datetime, timezone: str) -> str:
    """The first three segments: unit, waste code and the tagging day in the city's zone."""
    if len(credit_code) != UNIT_LENGTH:
        raise ValidationFailed(
            "the producer's unified social credit code must have 18 characters",
            field="producer_organization_id",
        )
    day = local_date(tagged_at, timezone)
    return f"{credit_code}{waste_code_digits(waste_code)}{day:%Y%m%d}"


def pending_prefix(
    *,
    stream_rules: Mapping[str, Any] | None,
    credit_code: str | None,
    waste_code: str | None,
    tagged_at: datetime,
    timezone: str,
    require_credit_code: bool,
) -> str | None:
    """What tagging stores until the call numbers it: the prefix, or None when the stream takes
    no identifier or the producer has no credit code (refused instead when so configured)."""
    if not applies(stream_rules) or waste_code is None:
        return None
    if not credit_code:
        if require_credit_code:
            raise ValidationFailed(
                f"the producer has no unified social credit code, which the {STANDARD}"
                " 数字识别码 of hazardous waste begins with: register it first",
                field="producer_organization_id",
            )
        return None
    return prefix(
        credit_code=credit_code, waste_code=waste_code, tagged_at=tagged_at, timezone=timezone
    )


FULL = (
    f"{STANDARD} numbers at most {MAX_SEQUENCE} batches per unit, waste code and day;"
    " this one is full"
)


async def check_room(prefix: str, counted: dict[str, int]) -> None:
    """Refuse (409, naming waste_code) one more batch under `prefix` when no number is left:
    those given out before the call (read once per prefix) and those its taggings took so far,
    counted in `counted`. So a full day refuses its own tagging, not the whole call it came
    in; read without a lock, the numbering at the end (`number`) still refuses the call when a
    concurrent one took the last numbers meanwhile."""
    if prefix not in counted:
        rows = await connections.get("default").execute_query_dict(
            "SELECT last_number FROM identifier_sequence WHERE prefix = $1", [prefix]
        )
        counted[prefix] = int(rows[0]["last_number"]) if rows else 0
    if counted[prefix] >= MAX_SEQUENCE:
        raise Conflict(FULL, field="waste_code")
    counted[prefix] += 1


async def number(batches: Iterable[Batch]) -> None:
    """Complete every pending prefix with its sequence number: one upsert per prefix, in prefix
    order, so that calls tagging several keys always lock their counters in the same order."""
    waiting: dict[str, list[Batch]] = defaultdict(list)
    for batch in batches:
        if batch.identifier is not None and len(batch.identifier) == PREFIX_LENGTH:
            waiting[batch.identifier].append(batch)
    client = connections.get("default")
    for key in sorted(waiting):
        group = waiting[key]
        rows = await client.execute_query_dict(
            "INSERT INTO identifier_sequence (prefix, last_number) VALUES ($1, $2)"
            " ON CONFLICT (prefix) DO UPDATE"
            " SET last_number = identifier_sequence.last_number + EXCLUDED.last_number"
            " RETURNING last_number",
            [key, len(group)],
        )
        last = int(rows[0]["last_number"])
        if last > MAX_SEQUENCE:
            raise Conflict(FULL, field="waste_code")
        for offset, batch in enumerate(group):
            batch.identifier = f"{key}{last - len(group) + offset + 1:0{SEQUENCE_LENGTH}d}"


async def of_codes(codes: Iterable[str]) -> dict[str, str]:
    """The identifiers of the batches with these codes that have one, by code."""
    rows = await Batch.filter(code__in=list(codes), identifier__isnull=False).values_list(
        "code", "identifier"
    )
    return {str(code): str(identifier) for code, identifier in rows}


def normalize(typed: str) -> str | None:
    """The identifier in a typed or scanned text (spaces and hyphens between segments allowed,
    any case), or None when the text is not one."""
    candidate = re.sub(r"[\s-]", "", typed).upper()
    return candidate if PATTERN.fullmatch(candidate) else None


def segments(identifier: str) -> tuple[str, str, str, str]:
    """The four segments, for printing with gaps between them."""
    ends = (UNIT_LENGTH, UNIT_LENGTH + WASTE_CODE_LENGTH, PREFIX_LENGTH)
    return (
        identifier[: ends[0]],
        identifier[ends[0] : ends[1]],
        identifier[ends[1] : ends[2]],
        identifier[ends[2] :],
    )


def spaced(identifier: str) -> str:
    """``91371082MA3C4R2X7B 90024908 20261130 001``."""
    return " ".join(segments(identifier))
