"""Every internal key a page can show has its Chinese label, in one place."""

from mobile_api.presenters import STATE_NAMES_ZH
from wastetrack.catalog import loader
from wastetrack.custody import labels
from wastetrack.custody.rules import EventType, State


def test_every_event_type_state_and_mode_has_a_chinese_label() -> None:
    assert set(labels.EVENT_TYPE_LABELS) == set(EventType)
    assert set(labels.STATE_LABELS) == set(State)
    methods = loader.read_edition("treatment_methods.json")
    assert set(labels.MODE_LABELS) == set(methods["modes"])
    for name in (*labels.EVENT_TYPE_LABELS.values(), *labels.STATE_LABELS.values()):
        assert name and all("\u4e00" <= ch <= "\u9fff" for ch in name)


def test_public_pages_read_the_same_state_labels() -> None:
    assert STATE_NAMES_ZH["in_transit"] == labels.state_label("in_transit") == "运输中"
    assert labels.event_label("handed_over") == "交接"
    assert labels.state_label("no_such_state") == "no_such_state"
