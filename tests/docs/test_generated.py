"""Tables in docs/ that restate code: the custody state machine and the settings.

The custody tables are generated whole from `wastetrack/custody/rules.py` (`SPECS`); the
configuration table's variables and defaults are checked against `wastetrack/core/settings.py`
(its meanings are written by hand). A failure prints the text to paste.
"""

import re
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic_core import PydanticUndefined

from tests.docs.pages import ROOT
from wastetrack.core.settings import Settings
from wastetrack.custody.rules import (
    FINAL_STATES,
    SPECS,
    STATE_LABELS,
    Carrier,
    EventSpec,
    Holder,
    Party,
    Rollup,
    State,
)

BEGIN, END = "<!-- generated from {}: do not edit by hand -->", "<!-- end of generated text -->"


def _names(values: Any, order: type[Enum]) -> str:
    chosen = set(values)
    if chosen == set(order):
        return f"any {order.__name__.lower()}"
    return ", ".join(f"`{v.value}`" for v in order if v in chosen)


_HOLDER = {
    Holder.unchanged: "unchanged",
    Holder.producer: "its producer (a remainder: the deliverer)",
    Holder.actor: "the actor's organization",
    Holder.receiver: "the receiver",
    Holder.acceptor: "the receiver, if it accepts",
}
_CARRIER = {
    Carrier.unchanged: "unchanged",
    Carrier.stated: "the stated one, else the tagger unless it is the producer",
    Carrier.actor_if_none: "the actor, if none yet and it is not the producer",
    Carrier.actor: "the actor's organization",
    Carrier.receiver_if_carrier: "the receiver, if it is a carrier",
}
_ROLLUP = {
    Rollup.none: "no",
    Rollup.fact: "may change the batch's fact",
    Rollup.fate: "decides its fate",
}


def _targets(spec: EventSpec) -> str:
    names = [f"`{t.value}`" if t is not None else "unchanged" for t in spec.targets]
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"{text}: {spec.note}" if spec.note else text


def render_custody_rules() -> str:
    """The state machine as Markdown tables, one row per event type, in the enum's order: who
    may record it when, then what a request must carry, what it does and how it counts."""
    lines = [
        "| event | 中文 | may follow the states | recorded by the roles | actor's organization is"
        " the batch's |",
        "|---|---|---|---|---|",
    ]
    for event, spec in SPECS.items():
        roles = ", ".join(f"`{role.value}`" for role in sorted(spec.roles, key=lambda r: r.value))
        if not spec.from_states:
            lines.append(f"| `{event.value}` | {spec.label} | (creates the batch) | {roles} | |")
            continue
        parties = _names(spec.parties, Party)
        if spec.producer_only:
            parties += (
                f" (from {_names(spec.producer_only, State)} only while its producer holds it)"
            )
        for party, states in spec.party_states.items():
            parties += f"; `{party.value}` only from {_names(states, State)}"
            if spec.not_from_producer:
                parties += (
                    f" (from {_names(spec.not_from_producer, State)} not while its producer holds"
                    " it)"
                )
        lines.append(
            f"| `{event.value}` | {spec.label} | {_names(spec.from_states, State)} | {roles}"
            f" | {parties} |"
        )
    lines += [
        "",
        "| event | required fields | leaves the batch | held by | carrier | in the roll-ups |",
        "|---|---|---|---|---|---|",
    ]
    for event, spec in SPECS.items():
        required = ", ".join(f"`{name}`" for name in spec.required)
        lines.append(
            f"| `{event.value}` | {required} | {_targets(spec)} | {_HOLDER[spec.holder]}"
            f" | {_CARRIER[spec.carrier]} | {_ROLLUP[spec.rollup]} |"
        )
    lines.append("")
    lines.append(
        "States: " + ", ".join(f"`{state.value}` {STATE_LABELS[state]}" for state in State) + "."
    )
    lines.append(f"Final states: {_names(FINAL_STATES, State)}.")
    return "\n".join(lines)


def _generated_section(text: str, source: str) -> str:
    begin = BEGIN.format(source)
    assert begin in text and END in text, f"the page lacks the markers {begin!r} … {END!r}"
    return text.split(begin, 1)[1].split(END, 1)[0].strip()


def test_custody_doc_states_the_rules_of_the_code() -> None:
    page = (ROOT / "docs" / "custody.md").read_text(encoding="utf-8")
    expected = render_custody_rules()
    assert _generated_section(page, "wastetrack/custody/rules.py") == expected, (
        "docs/custody.md is out of date; paste between the markers:\n" + expected
    )


def _default(name: str) -> str | None:
    """The default as the docs write it, or None where the doc may say it in words."""
    field = Settings.model_fields[name]
    if field.default_factory is not None or "secret" in name or "key" in name:
        return None
    value = field.default
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Decimal | float | int | str):
        return f"`{value}`"
    return f"`{value!r}`"


def configuration_rows() -> dict[str, tuple[str, str]]:
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = _generated_section(page, "wastetrack/core/settings.py")
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`WASTETRACK_([A-Z0-9_]+)`", cells[0])
        if match and len(cells) == 3:
            rows[match.group(1).lower()] = (cells[1], cells[2])
    return rows


def test_configuration_doc_lists_every_setting_with_its_default() -> None:
    rows = configuration_rows()
    skeleton = "\n".join(
        f"| `WASTETRACK_{name.upper()}` | {_default(name) or '…'} |"
        f" {Settings.model_fields[name].description or '…'} |"
        for name in Settings.model_fields
    )
    assert set(rows) == set(Settings.model_fields), (
        "docs/operations.md's configuration table must list exactly the settings; rows:\n"
        + skeleton
    )
    for name, (default, meaning) in rows.items():
        expected = _default(name)
        assert expected is None or default == expected, (name, default, expected)
        assert meaning, f"WASTETRACK_{name.upper()} needs a meaning in docs/operations.md"


def test_renderers_follow_the_code() -> None:
    table = render_custody_rules()
    assert "| `treated` | 处置 | `stored`, `received` | `facility_operator` | `holder` |" in table
    assert "| `corrected` | 更正 | any state |" in table
    handed_over = "| `handed_over` | `to_organization_id`, `batch` | `handed_over` | the receiver |"
    assert handed_over in table
    assert "`rejected` 已拒收" in table
    assert _default("port") == "`8000`" and _default("database_url") == "unset"
