"""Drive a batch along its chain through the API."""

from typing import Any

import httpx
from tortoise.transactions import in_transaction

from tests.factories import World, event, medical_bag


async def post_event(
    client: httpx.AsyncClient, world: World, who: str, body: dict
) -> httpx.Response:
    return await client.post("/m/v1/events", json=body, headers=world.headers(who))


async def recorded(client: httpx.AsyncClient, world: World, who: str, body: dict) -> dict[str, Any]:
    """Post an event that must be recorded (201); its answer."""
    response = await post_event(client, world, who, body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def tag_bag(
    client: httpx.AsyncClient, world: World, who: str = "clinic", **fields: Any
) -> dict:
    body = medical_bag(**fields)
    body.pop("event_type")
    response = await client.post("/m/v1/batches", json=body, headers=world.headers(who))
    assert response.status_code == 201, response.text
    return response.json()


async def advance(client: httpx.AsyncClient, world: World, code: str, *, until: str) -> None:
    """Move a medical bag along the usual chain up to and including `until`."""
    steps = [
        ("carrier", event("collected", code, minutes=10)),
        (
            "carrier",
            event(
                "in_transit",
                code,
                minutes=20,
                destination_organization_id=world.orgs["facility"].id,
            ),
        ),
        ("facility", event("received", code, minutes=60, outcome="accepted", weight_kg="3.4")),
        ("facility", event("treated", code, minutes=120, method="D10")),
    ]
    for who, body in steps:
        response = await post_event(client, world, who, body)
        assert response.status_code == 201, response.text
        if body["event_type"] == until:
            return


async def collect(
    client: httpx.AsyncClient, world: World, *codes: str, who: str = "carrier", minutes: int = 5
) -> None:
    """The carrier collects each bag: what goes into its load must be in its hands first."""
    for code in codes:
        response = await post_event(client, world, who, event("collected", code, minutes=minutes))
        assert response.status_code == 201, response.text


async def as_superuser_without_triggers(*statements: tuple[str, list]) -> None:
    """What an intruder with the owner's password can do: switch triggers off and edit rows."""
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL session_replication_role = replica")
        for sql, values in statements:
            await conn.execute_query(sql, values)
