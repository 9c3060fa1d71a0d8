"""A port reads the deliveries at its port and those made for it as a vessel's owner, page by
page (`wastetrack.core.paging`): a delivery it may read for both reasons comes once; a town's
manager reads those at the ports in their town."""

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx

from tests.api.test_paging import _walk
from tests.factories import NOW, World
from tests.ports.test_ports import Harbour
from wastetrack.ports.models import Berth, Delivery, PortCall
from wastetrack.registry import service as registry
from wastetrack.registry import vessels
from wastetrack.registry.models import OrganizationKind


async def test_port_and_town_manager_walk_their_deliveries_once_each_newest_first(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    port, other = world.orgs["port"], world.orgs["other_port"]
    own = await vessels.create_vessel(
        name="鲁荣渔60001",
        registration_number="371082200003",
        gross_tonnage=Decimal(50),
        home_port_id=port.id,
        owner_id=port.id,
    )
    third = await registry.create_organization(
        name="俚岛渔港", kind=OrganizationKind.fishing_port, region_id=world.regions["town"].id
    )
    berths = {
        port.id: harbour.berth_id,
        other.id: (await Berth.get(port_id=other.id)).id,
        third.id: (
            await Berth.create(
                port=third, name="1号泊位", code="LD-1", latitude=37.16, longitude=122.61
            )
        ).id,
    }
    # the port's own vessel at the port (both reasons), at the other ports (as owner only); the
    # owner's vessel at the port (as port only), at the other ports (neither)
    plan = [(own, port), (own, other), (own, third), (harbour.small, port)]
    plan += [(harbour.small, other), (harbour.small, third)]
    for n in range(24):
        vessel, at = plan[n % len(plan)]
        started = NOW - timedelta(days=2, hours=n // 3)  # ties in threes
        await Delivery.create(
            client_event_id=uuid.uuid4(),
            payload_digest="0" * 64,
            receipt_number=f"T{n:04d}",
            vessel=vessel,
            port=at,
            owner_id=vessel.owner_id,
            berth_id=berths[at.id],
            started_at=started,
            ended_at=started + timedelta(minutes=30),
            recorded_at=started + timedelta(hours=1),
            recorded_by=world.users["port"],
        )
    reads = [d for d in await Delivery.all() if port.id in (d.port_id, d.owner_id)]
    expected = [d.id for d in sorted(reads, key=lambda d: (d.started_at, d.id), reverse=True)]
    assert len(expected) == 16
    for limit in (1, 2, 3, 5, 500):
        rows, _ = await _walk(client, "/m/v1/deliveries", world.headers("port"), limit)
        assert [r["id"] for r in rows] == expected, limit
    for_own, _ = await _walk(
        client, f"/m/v1/deliveries?vessel_id={own.id}&limit=2", world.headers("port"), 2
    )
    assert [r["id"] for r in for_own] == [
        i for i in expected if i in {d.id for d in reads if d.vessel_id == own.id}
    ]
    # The town's manager reads the deliveries at ports in their town (not at the third port,
    # in another town), whoever owns the vessel.
    in_town = [d for d in await Delivery.all() if d.port_id in (port.id, other.id)]
    newest_first = sorted(in_town, key=lambda d: (d.started_at, d.id), reverse=True)
    rows, _ = await _walk(client, "/m/v1/deliveries", world.headers("town_manager"), 3)
    assert len(rows) == 16
    assert [r["id"] for r in rows] == [d.id for d in newest_first]


async def test_port_calls_are_walked_once_each_latest_arrival_first(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A port reads the calls at its port; a town's manager those at the ports in their town
    (their office's none: a port call names only its port), a reason through a join."""
    port, other = world.orgs["port"], world.orgs["other_port"]
    third = await registry.create_organization(
        name="俚岛渔港", kind=OrganizationKind.fishing_port, region_id=world.regions["town"].id
    )
    for n in range(15):
        await PortCall.create(
            vessel=harbour.small if n % 2 else harbour.large,
            port=[port, other, third][n % 3],
            arrived_at=NOW - timedelta(days=3, hours=n // 4),  # ties in fours
            departed_at=None if n % 4 else NOW - timedelta(days=1),
            days_at_sea=3,
            crew=5,
            recorded_by=world.users["port"],
        )
    readers = {"port": {port.id}, "town_manager": {port.id, other.id}}
    for who, ports in readers.items():
        for open_only in (False, True):
            reads = [
                c
                for c in await PortCall.all()
                if c.port_id in ports and (c.departed_at is None or not open_only)
            ]
            expected = [c.id for c in sorted(reads, key=lambda c: (c.arrived_at, c.id))][::-1]
            for limit in (1, 2, 4, 500):
                path = f"/m/v1/port-calls?open_only={str(open_only).lower()}&limit={limit}"
                rows, _ = await _walk(client, path, world.headers(who), limit)
                assert [r["id"] for r in rows] == expected, (who, open_only, limit)
