"""Chinese labels of the custody log's internal keys, as data: one per event type, state and
treatment mode, read by every page and document that shows them to a person. Categories,
streams and methods carry their own `name_zh` in the catalog; `category_label` adds the code."""

from wastetrack.catalog.models import WasteCategory
from wastetrack.custody.rules import EventType, State

EVENT_TYPE_LABELS: dict[EventType, str] = {
    EventType.tagged: "贴标登记",
    EventType.collected: "收集",
    EventType.handed_over: "交接",
    EventType.in_transit: "运输",
    EventType.stored: "贮存",
    EventType.received: "接收",
    EventType.treated: "处置",
    EventType.aggregated: "合并装箱",
    EventType.corrected: "更正",
    EventType.cancelled: "作废",
}

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
