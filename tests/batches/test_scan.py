"""Scanning, binding pre-printed labels, listing and the public page."""

import httpx
from fastapi import FastAPI

from tests.custody.helpers import advance, collect, post_event, recorded, tag_bag
from tests.factories import World, event, forged, make_user, medical_bag
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch, Label
from wastetrack.core import codes
from wastetrack.core.commands import SCANNED
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind


async def scan_actions(client: httpx.AsyncClient, world: World, who: str, qr: str) -> list[str]:
    found = await client.get("/m/v1/scan", params={"qr": qr}, headers=world.headers(who))
    assert found.status_code == 200, found.text
    actions: list[str] = found.json()["actions"]
    return actions


async def issue(client: httpx.AsyncClient, world: World, org: str, count: int = 1) -> list[str]:
    await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs[org].id, "stream": "medical", "count": count},
    )
    labels = await Label.filter(organization=world.orgs[org], bound_at=None)
    return [
        codes.qr_url(label.code, base_url="http://testserver", secret=world.settings.secret_key)
        for label in labels
    ]


async def test_scan_returns_the_batch_and_next_actions(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    clinic = (
        await client.get(
            "/m/v1/scan", params={"qr": batch["qr_url"]}, headers=world.headers("clinic")
        )
    ).json()
    assert clinic["kind"] == "batch"
    assert clinic["batch"]["code"] == batch["code"]
    assert "cancelled" in clinic["actions"]
    assert "collected" not in clinic["actions"]
    carrier = (
        await client.get(
            "/m/v1/scan", params={"qr": batch["code"].lower()}, headers=world.headers("carrier")
        )
    ).json()
    assert "collected" in carrier["actions"]


async def test_a_correction_is_offered_to_who_may_correct_an_event_of_the_batch(
    client: httpx.AsyncClient, world: World
) -> None:
    """A correction corrects an event the user's organization recorded, or any for a manager:
    the carrier, which has recorded nothing on the bag yet, is not offered one it could never
    record; once it has collected the bag, it is."""
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)

    async def offered(who: str) -> list[str]:
        scanned = await client.get(
            "/m/v1/scan", params={"qr": batch["qr_url"]}, headers=world.headers(who)
        )
        actions: list[str] = scanned.json()["actions"]
        return actions

    assert "corrected" in await offered("clinic")
    assert await offered("carrier") == ["collected"]
    collected = await post_event(
        client, world, "carrier", event("collected", batch["code"], minutes=10)
    )
    assert collected.status_code == 201, collected.text
    assert "corrected" in await offered("carrier")


async def test_forged_qr_is_refused_like_an_unknown_code(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    forgery = forged(batch["qr_url"])
    unknown = codes.qr_url(
        codes.new_code(), base_url="http://testserver", secret=world.settings.secret_key
    )
    mistyped = batch["code"][:-1] + ("0" if batch["code"][-1] != "0" else "1")
    answers = []
    for qr in (forgery, unknown, mistyped):
        response = await client.get(
            "/m/v1/scan", params={"qr": qr}, headers=world.headers("clinic")
        )
        assert response.status_code == 404
        answers.append(response.json()["detail"])
    assert len(set(answers)) == 1


async def test_first_scan_binds_a_preprinted_label(client: httpx.AsyncClient, world: World) -> None:
    (url,) = await issue(client, world, "clinic")
    scanned = (
        await client.get("/m/v1/scan", params={"qr": url}, headers=world.headers("clinic"))
    ).json()
    assert scanned["kind"] == "label"
    assert scanned["actions"] == ["tagged"]
    body = medical_bag()
    body.pop("event_type")
    bound = await client.post(
        "/m/v1/batches", json={**body, "label": url}, headers=world.headers("clinic")
    )
    assert bound.status_code == 201
    assert bound.json()["qr_url"] == url
    retry = await client.post(
        "/m/v1/batches", json={**body, "label": url}, headers=world.headers("clinic")
    )
    assert retry.status_code == 200
    second = medical_bag()
    second.pop("event_type")
    rebind = await client.post(
        "/m/v1/batches", json={**second, "label": url}, headers=world.headers("clinic")
    )
    assert rebind.status_code == 409
    assert await Batch.all().count() == 1


async def test_label_of_another_organization_cannot_be_bound(
    client: httpx.AsyncClient, world: World
) -> None:
    (url,) = await issue(client, world, "other_clinic")
    body = medical_bag()
    body.pop("event_type")
    response = await client.post(
        "/m/v1/batches", json={**body, "label": url}, headers=world.headers("clinic")
    )
    assert response.status_code == 404
    assert await Batch.all().count() == 0


async def test_a_clinics_unused_label_opens_the_tagging_form_for_a_carrier_only(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carrier may tag on a clinic's pre-printed label (the label stock relationship): its
    scan offers the tagging, naming the clinic whose waste it is. Another clinic, or a facility,
    that may not tag on it gets the answer an unknown code gets."""
    (url,) = await issue(client, world, "clinic")
    scanned = await client.get("/m/v1/scan", params={"qr": url}, headers=world.headers("carrier"))
    assert scanned.status_code == 200, scanned.text
    found = scanned.json()
    assert (found["kind"], found["actions"]) == ("label", ["tagged"])
    assert found["label"]["organization_id"] == world.orgs["clinic"].id
    unknown = codes.qr_url(
        codes.new_code(), base_url="http://testserver", secret=world.settings.secret_key
    )
    for who in ("other_clinic", "facility"):
        answers = [
            await client.get("/m/v1/scan", params={"qr": qr}, headers=world.headers(who))
            for qr in (url, unknown)
        ]
        assert [(a.status_code, a.json()) for a in answers] == [(404, answers[1].json())] * 2
    body = medical_bag(producer_organization_id=world.orgs["clinic"].id)
    body.pop("event_type")
    tagged = await client.post(
        "/m/v1/batches", json={**body, "label": url}, headers=world.headers("carrier")
    )
    assert tagged.status_code == 201, tagged.text
    assert tagged.json()["producer_id"] == world.orgs["clinic"].id


async def test_a_resent_tagging_for_others_is_answered_with_its_batch(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carrier tags a clinic's bag for another carrier to take: its organization is no party
    to the batch, yet a resend of the tagging (the first answer lost) gets the batch, as the
    first send did, not a 404."""
    (url,) = await issue(client, world, "clinic")
    second = await registry.create_organization(
        name="第二医废转运公司", kind=OrganizationKind.carrier, region_id=world.regions["city"].id
    )
    body = medical_bag(
        producer_organization_id=world.orgs["clinic"].id, carrier_organization_id=second.id
    )
    body.pop("event_type")
    sends = [
        await client.post(
            "/m/v1/batches", json={**body, "label": url}, headers=world.headers("carrier")
        )
        for _ in range(2)
    ]
    assert [s.status_code for s in sends] == [201, 200], sends[1].text
    assert sends[1].json()["code"] == sends[0].json()["code"]
    assert sends[0].json()["carrier_id"] == second.id
    assert await Batch.all().count() == 1


async def test_tagging_on_a_bound_code_tells_only_its_parties(
    client: httpx.AsyncClient, world: World
) -> None:
    """A code already bound to a batch is a conflict for the batch's parties; for anyone else
    it answers as an unknown code does, so typed codes reveal nothing about which exist."""
    bag = await tag_bag(client, world)
    body = medical_bag()
    body.pop("event_type")
    answers = {
        (who, label): await client.post(
            "/m/v1/batches", json={**body, "label": label}, headers=world.headers(who)
        )
        for who in ("clinic", "other_clinic")
        for label in (bag["code"], codes.new_code())
    }
    assert answers["clinic", bag["code"]].status_code == 409
    theirs = [a for (who, _), a in answers.items() if who == "other_clinic"]
    assert [(a.status_code, a.json()["field"]) for a in theirs] == [(404, "label")] * 2
    assert theirs[0].json()["detail"] == theirs[1].json()["detail"]
    assert await Batch.all().count() == 1


async def test_a_hazardous_batch_offers_its_carrier_no_collection_the_manifest_rule_refuses(
    client: httpx.AsyncClient, world: World
) -> None:
    """Hazardous waste changes hands only on a signed manifest, whose producer signature
    records the handover: the carrier named on the batch is not offered a collection that
    would be refused, and its producer still the handover."""
    maker = await registry.create_organization(
        name="荣成某船舶修造公司",
        kind=OrganizationKind.enterprise,
        region_id=world.regions["city"].id,
    )
    await make_user(world, "maker", Role.generator, maker)
    body = medical_bag(
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T", "I"],
        quantity="400",
        carrier_organization_id=world.orgs["carrier"].id,
    )
    body.pop("event_type")
    made = await client.post("/m/v1/batches", json=body, headers=world.headers("maker"))
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    carrier = await client.get("/m/v1/scan", params={"qr": code}, headers=world.headers("carrier"))
    assert carrier.status_code == 200, carrier.text
    assert "collected" not in carrier.json()["actions"]
    refused = await post_event(client, world, "carrier", event("collected", code, minutes=10))
    assert refused.status_code == 409, refused.text
    producer = await client.get("/m/v1/scan", params={"qr": code}, headers=world.headers("maker"))
    assert "handed_over" in producer.json()["actions"]


async def test_the_scan_refuses_a_control_character_as_every_text_does(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """docs/security.md: no string takes NUL or another control character (DEL and
    U+0080-U+009F too) nor U+FFFE: `qr` was a plain string, looked up as a code (404). A
    scanner's group separator (GS) is an identifier's gap, as in a body's scanned fields."""
    for qr in ("ABCD%00EFGH", "ABCD%7FEFGH", "ABCD%C2%85EFGH", "ABCD%EF%BF%BEEFGH"):
        answer = await client.get(f"/m/v1/scan?qr={qr}", headers=world.headers("clinic"))
        assert (answer.status_code, answer.json()["field"]) == (422, "qr"), (qr, answer.text)
    gap = await client.get("/m/v1/scan?qr=ABCD%1DEFGH", headers=world.headers("clinic"))
    assert (gap.status_code, gap.json()["field"]) == (404, "qr"), gap.text
    (qr,) = app.openapi()["paths"]["/m/v1/scan"]["get"]["parameters"]
    assert qr["schema"]["pattern"] == SCANNED


async def test_the_scan_offers_no_cancellation_of_a_container_holding_batches(
    client: httpx.AsyncClient, world: World
) -> None:
    """The scan's actions are the state machine's answer (docs/architecture.md): a box the
    clinic packed a bag into is refused a cancellation while it holds it, so not offered."""
    box = await tag_bag(client, world)
    bag = await tag_bag(client, world)
    assert "cancelled" in await scan_actions(client, world, "clinic", box["qr_url"])
    packing = event("aggregated", box["code"], minutes=3, children=[bag["code"]])
    await recorded(client, world, "clinic", packing)
    assert "cancelled" not in await scan_actions(client, world, "clinic", box["qr_url"])
    cancel = event("cancelled", box["code"], minutes=5, reason="wrong box")
    refused = await post_event(client, world, "clinic", cancel)
    assert (refused.status_code, refused.json()["field"]) == (409, "event_type")


async def test_the_scan_offers_no_packing_into_another_producers_bag(
    client: httpx.AsyncClient, world: World
) -> None:
    """A container is a load its user's organization tagged: the carrier holding a clinic's
    bag is not offered to pack into it, and its own load is."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    other = await tag_bag(client, world, carrier_organization_id=carrier)
    await collect(client, world, bag["code"], other["code"])
    assert "aggregated" not in await scan_actions(client, world, "carrier", bag["qr_url"])
    packing = event("aggregated", bag["code"], minutes=8, children=[other["code"]])
    refused = await post_event(client, world, "carrier", packing)
    assert (refused.status_code, refused.json()["field"]) == (409, "batch")
    load = await tag_bag(client, world, "carrier", producer_organization_id=carrier)
    assert "aggregated" in await scan_actions(client, world, "carrier", load["qr_url"])


async def test_label_stream_must_match(client: httpx.AsyncClient, world: World) -> None:
    (url,) = await issue(client, world, "clinic")
    body = medical_bag(stream="household", category="hh.residual")
    body.pop("event_type")
    response = await client.post(
        "/m/v1/batches", json={**body, "label": url}, headers=world.headers("clinic")
    )
    assert response.status_code == 422
    assert response.json()["field"] == "stream"


async def test_recent_batches_page_with_a_cursor(client: httpx.AsyncClient, world: World) -> None:
    made = [(await tag_bag(client, world))["code"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/m/v1/batches", params=params, headers=world.headers("clinic"))
        ).json()
        seen += [b["code"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    other = (await client.get("/m/v1/batches", headers=world.headers("other_clinic"))).json()
    assert other["items"] == []


async def test_bad_cursor_is_a_clear_error(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(
        "/m/v1/batches", params={"cursor": "!!"}, headers=world.headers("clinic")
    )
    assert response.status_code == 422
    assert response.json()["field"] == "cursor"


async def test_public_page_shows_state_but_no_parties(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="treated")
    path = batch["qr_url"].removeprefix("http://testserver")
    page = await client.get(path)
    assert page.status_code == 200
    assert "已处置" in page.text and "感染性废物" in page.text
    for name in ("北山社区卫生室", "荣成医废转运有限公司", "荣成医疗废物处置中心"):
        assert name not in page.text
    assert (await client.get(forged(path))).status_code == 404
    bare = await client.get(f"/q/{batch['code']}")
    assert bare.status_code == 404


async def test_tagging_refuses_absurd_quantities_and_bad_codes(
    client: httpx.AsyncClient, world: World
) -> None:
    cases = [
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "200000", "unit": "kg"}, "quantity"),
        ({"unit": "tonnes"}, "unit"),
        ({"category": "med.unknown"}, "category"),
        ({"stream": "hazardous", "category": "hw.08", "waste_code": "900-249-09"}, "waste_code"),
        ({"stream": "hazardous", "category": "hw.08", "waste_code": "900-24-08"}, "waste_code"),
        ({"waste_code": "900-249-08"}, "waste_code"),
    ]
    for change, field in cases:
        body = {**medical_bag(), **change}
        body.pop("event_type")
        response = await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field, (change, response.json())
    assert await Batch.all().count() == 0
    valid = {
        **medical_bag(
            stream="hazardous", category="hw.08", waste_code="900-249-08", hazard=["T", "I"]
        )
    }
    valid.pop("event_type")
    assert (
        await client.post("/m/v1/batches", json=valid, headers=world.headers("clinic"))
    ).status_code == 201
