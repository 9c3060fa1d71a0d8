"""Chinese labels of the custody log's internal keys, read by every page and document that shows
them to a person: one per event type and state (the custody spec's, `rules.SPECS` and
`rules.STATE_LABELS`) and per treatment mode. Categories, streams and methods carry their own
`name_zh` in the catalog; `category_label` adds the code."""

from wastetrack.catalog.models import WasteCategory
from wastetrack.custody.rules import SPECS, EventType, State

# Re-exported: pages and documents read every label from this module.
from wastetrack.custody.rules import STATE_LABELS as STATE_LABELS

EVENT_TYPE_LABELS: dict[EventType, str] = {event: spec.label for event, spec in SPECS.items()}

# A public scan of a label that no batch uses yet.
UNBOUND_LABEL = "未启用"

# 《固体废物分类与代码目录》's treatment modes, as the catalog's methods name them.
MODE_LABELS: dict[str, str] = {
    "reuse": "再使用",
    "recycling": "再生利用",
    "energy_recovery": "能量回收",
    "other_recovery": "其他资源化利用",
    "disposal": "无害化处置",
    "pending": "暂存待处理",
}


def event_label(event_type: str) -> str:
    """The Chinese name of an event type (the key itself if it is unknown)."""
    try:
        return EVENT_TYPE_LABELS[EventType(event_type)]
    except ValueError:
        return event_type


def state_label(state: str) -> str:
    """The Chinese name of a batch state (the key itself if it is unknown)."""
    try:
        return STATE_LABELS[State(state)]
    except ValueError:
        return state


def category_label(category: WasteCategory) -> str:
    """ "废矿物油 (HW08)": the catalog's Chinese name with its code."""
    return f"{category.name_zh} ({category.code})" if category.code else category.name_zh
