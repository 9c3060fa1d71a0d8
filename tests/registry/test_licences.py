"""Treatment licences have a first day and are kept in versions; on a day a facility may use
the methods of every licence covering the category or a parent of it."""

from datetime import timedelta

import httpx

from tests.factories import World
from wastetrack.audit.models import AuditEntry
from wastetrack.core import cityday
from wastetrack.registry import service as registry
from wastetrack.registry.models import FacilityLicence


def _url(world: World, org: str = "unlicensed") -> str:
    return f"/admin/v1/organizations/{world.orgs[org].id}/licences"


async def test_a_licence_starts_on_the_day_it_is_granted_unless_told(
    client: httpx.AsyncClient, world: World
) -> None:
    # The city's day the service judges by (not the stories' day, which lags behind it in the
    # first hours of a city day).
    today = cityday.today(world.settings.timezone)
    h = world.headers("admin")
    granted = await client.post(
        _url(world), headers=h, json={"category_key": "med.sharps", "method_codes": ["D10"]}
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["valid_from"] == today.isoformat()
    plant = world.orgs["unlicensed"].id
    yesterday = today - timedelta(days=1)
    assert await registry.licence_covering(
        organization_id=plant, category_key="med.sharps", on=today
    )
    assert not await registry.licence_covering(
        organization_id=plant, category_key="med.sharps", on=yesterday
    )
    # A licence from a day already past judges that day again: only with a reason.
    backdated = {"category_key": "med.chemical", "method_codes": ["D10"]}
    backdated["valid_from"] = yesterday.isoformat()
    refused = await client.post(_url(world), headers=h, json=backdated)
    assert (refused.status_code, refused.json()["field"]) == (422, "reason"), refused.text
    given = await client.post(
        _url(world), headers=h, json={**backdated, "reason": "permit 鲁危证 7 registered late"}
    )
    assert given.status_code == 201, given.text
    entry = await AuditEntry.get(subject_type="licence", subject_id=str(given.json()["id"]))
    assert entry.after["reason"] == "permit 鲁危证 7 registered late"
    assert await registry.licence_covering(
        organization_id=plant, category_key="med.chemical", on=yesterday
    )
    # Its end never precedes its start; a later day needs no reason.
    inverted = {**backdated, "valid_from": (today + timedelta(days=5)).isoformat()}
    inverted["valid_until"] = (today + timedelta(days=4)).isoformat()
    wrong = await client.post(_url(world), headers=h, json=inverted)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "valid_until"), wrong.text


async def test_a_changed_licence_keeps_the_version_before(
    client: httpx.AsyncClient, world: World
) -> None:
    today = cityday.today(world.settings.timezone)
    h = world.headers("admin")
    plant = world.orgs["unlicensed"].id
    past = today - timedelta(days=10)
    first = await client.post(
        _url(world),
        headers=h,
        json={
            "category_key": "hw.08",
            "method_codes": ["D10"],
            "permit_number": "鲁危证 1",
            "valid_from": past.isoformat(),
            "reason": "granted on paper ten days ago",
        },
    )
    assert first.status_code == 201, first.text
    second = await client.post(
        _url(world),
        headers=h,
        json={"category_key": "hw.08", "method_codes": ["R9"], "permit_number": "鲁危证 2"},
    )
    assert second.status_code == 201, second.text
    versions = await FacilityLicence.filter(organization_id=plant, category_key="hw.08").order_by(
        "id"
    )
    assert [(v.permit_number, v.valid_from, v.valid_until) for v in versions] == [
        ("鲁危证 1", past, today - timedelta(days=1)),
        ("鲁危证 2", today, None),
    ]
    before = await registry.licence_covering(
        organization_id=plant, category_key="hw.08", on=today - timedelta(days=1)
    )
    now = await registry.licence_covering(organization_id=plant, category_key="hw.08", on=today)
    assert before is not None and before.method_codes == ["D10"]
    assert now is not None and now.method_codes == ["R9"]
    listed = await client.get(_url(world), headers=world.headers("manager"))
    assert [lic["permit_number"] for lic in listed.json() if lic["category_key"] == "hw.08"] == [
        "鲁危证 1",
        "鲁危证 2",
    ]
    entry = await AuditEntry.get(subject_type="licence", subject_id=str(second.json()["id"]))
    assert entry.action == "licence.updated" and entry.before is not None
    assert entry.before["permit_number"] == "鲁危证 1" and entry.before["valid_until"] is None
    assert entry.after["replaced"] == {
        "id": first.json()["id"],
        "valid_until": (today - timedelta(days=1)).isoformat(),
    }
    # A version never starts before a later one's start.
    earlier = await client.post(
        _url(world),
        headers=h,
        json={
            "category_key": "hw.08",
            "method_codes": ["D10"],
            "valid_from": (past - timedelta(days=1)).isoformat(),
            "reason": "x",
        },
    )
    assert (earlier.status_code, earlier.json()["field"]) == (409, "valid_from"), earlier.text


async def test_a_parent_s_and_a_child_s_licences_both_count(world: World) -> None:
    """Licensed for medical waste as a whole (D9 …) and for sharps alone (D10), the plant may
    use both on sharps, whichever row the database returns first."""
    today = cityday.today(world.settings.timezone)
    plant = world.orgs["facility"].id  # holds med.hw01 with D9, D10, D15 from the world
    await registry.add_licence(
        organization_id=plant, category_key="med.sharps", method_codes=["R4"]
    )
    covering = await registry.licence_covering(
        organization_id=plant, category_key="med.sharps", on=today
    )
    assert covering is not None and covering.method_codes == ["D10", "D15", "D9", "R4"]
    assert {lic.category_key for lic in covering.licences} == {"med.hw01", "med.sharps"}
    # A sibling category has only the parent's.
    sibling = await registry.licence_covering(
        organization_id=plant, category_key="med.infectious", on=today
    )
    assert sibling is not None and sibling.method_codes == ["D10", "D15", "D9"]


async def test_a_licence_kept_since_always_is_replaced_from_the_new_one_s_first_day(
    world: World,
) -> None:
    """Rows kept before versions have no first day: they held since always, and a new version
    ends them the day before it starts."""
    today = cityday.today(world.settings.timezone)
    plant = world.orgs["facility"].id
    old = await FacilityLicence.get(organization_id=plant, category_key="med.hw01")
    assert old.valid_from is None  # the world's, loaded as history
    await registry.add_licence(
        organization_id=plant,
        category_key="med.hw01",
        method_codes=["D10"],
        valid_from=today + timedelta(days=3),
    )
    await old.refresh_from_db()
    assert old.valid_until == today + timedelta(days=2)
    for day, methods in [
        (today - timedelta(days=400), ["D10", "D15", "D9"]),
        (today + timedelta(days=2), ["D10", "D15", "D9"]),
        (today + timedelta(days=3), ["D10"]),
    ]:
        covering = await registry.licence_covering(
            organization_id=plant, category_key="med.infectious", on=day
        )
        assert covering is not None and covering.method_codes == methods, day
