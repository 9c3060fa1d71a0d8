"""The reference catalog, read through the API."""

import httpx

from tests.factories import World


async def test_categories_carry_codes_and_sources(client: httpx.AsyncClient, world: World) -> None:
    medical = (
        await client.get(
            "/m/v1/catalog/categories",
            params={"stream": "medical"},
            headers=world.headers("clinic"),
        )
    ).json()
    by_key = {c["key"]: c for c in medical}
    assert by_key["med.sharps"]["code"] == "841-002-01"
    assert by_key["med.sharps"]["parent_key"] == "med.hw01"
    assert by_key["med.infectious"]["storage_limit_hours"] == 48
    assert "医疗废物分类目录" in by_key["med.infectious"]["source"]


async def test_marpol_letters_keep_their_scheme_version(
    client: httpx.AsyncClient, world: World
) -> None:
    marine = (
        await client.get(
            "/m/v1/catalog/categories", params={"stream": "marine"}, headers=world.headers("port")
        )
    ).json()
    letters = {
        (c["scheme_version"], c["code"]): c["name_en"]
        for c in marine
        if c["scheme"] == "MARPOL Annex V"
    }
    assert letters[("2018", "H")] == "Fishing gear"
    assert letters[("2013", "H")] == "Animal carcass(es)"
    assert ("2013", "K") not in letters


async def test_methods_map_to_modes(client: httpx.AsyncClient, world: World) -> None:
    methods = {
        m["code"]: m["mode"]
        for m in (await client.get("/m/v1/catalog/methods", headers=world.headers("clinic"))).json()
    }
    assert methods["R1"] == "energy_recovery"
    assert methods["D10"] == "disposal"
    assert methods["R13"] == "pending"


async def test_unknown_stream_is_a_clear_error(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(
        "/m/v1/catalog/categories", params={"stream": "nuclear"}, headers=world.headers("clinic")
    )
    assert response.status_code == 404
    assert response.json()["field"] == "stream"
