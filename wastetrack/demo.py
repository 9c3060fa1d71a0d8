"""A small, realistic Rongcheng data set, loaded through the same services the API uses."""

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.events import EventCreate
from schemas.household import PickupCreate, QualityCheck
from schemas.manifests import Decision, LegCreate, LegSign, ManifestCreate
from schemas.pesticide import (
    ConsignmentCreate,
    ConsignmentLine,
    PackagingLine,
    ReturnCreate,
    SaleCreate,
)
from schemas.ports import (
    CleanUpCreate,
    DeliveryCreate,
    DeliveryLineCreate,
    FloatReplacementCreate,
    NotificationLine,
)
from wastetrack.alerts import service as alerts
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.cells import service as cells
from wastetrack.core import codes
from wastetrack.core.principal import Principal
from wastetrack.custody import chain, recorder
from wastetrack.household import service as household
from wastetrack.manifests import service as manifests
from wastetrack.pesticide import service as pesticide
from wastetrack.ports import service as ports
from wastetrack.registry import service as registry
from wastetrack.registry.models import (
    Organization,
    OrganizationKind,
    Region,
    RegionLevel,
    Site,
    Vessel,
)

CITY_CODE = "371082"
# Rongcheng's 22 towns and streets (荣成市辖 12 街道、10 镇; 石岛管理区 counted as its streets).
TOWNS = [
    "崖头街道",
    "城西街道",
    "宁津街道",
    "港湾街道",
    "桃园街道",
    "王连街道",
    "东山街道",
    "斥山街道",
    "寻山街道",
    "崂山街道",
    "石岛街道",
    "蜊江街道",
    "俚岛镇",
    "成山镇",
    "埠柳镇",
    "港西镇",
    "夏庄镇",
    "荫子镇",
    "滕家镇",
    "大疃镇",
    "上庄镇",
    "人和镇",
]
VILLAGES = {
    "崖头街道": ["北山社区", "南山社区", "观海社区"],
    "俚岛镇": ["烟墩角村", "大庄许家村"],
    "石岛街道": ["石岛湾社区", "渔港社区"],
    "成山镇": ["西霞口村"],
}
PASSWORDS = {
    "admin": "demo-admin-2025",
    "manager": "demo-manager-2025",
    "collector": "demo-collector-2025",
    "clinic": "demo-clinic-2025",
    "carrier": "demo-carrier-2025",
    "facility": "demo-facility-2025",
    "port_operator": "demo-port-2025",
    "shop": "demo-shop-2025",
}
DEMO_USERS = {
    # demo role: (username, role, organization key)
    "admin": ("demo_admin", Role.admin, "bureau"),
    "manager": ("demo_manager", Role.manager, "bureau"),
    "collector": ("demo_collector", Role.collector, "community"),
    "clinic": ("demo_clinic", Role.generator, "clinic"),
    "carrier": ("demo_carrier", Role.carrier, "carrier"),
    "facility": ("demo_facility", Role.facility_operator, "medical_plant"),
    "port_operator": ("demo_port", Role.port_operator, "port"),
    "shop": ("demo_shop", Role.generator, "shop"),
}
EXTRA_USERS = {
    "hospital": ("demo_hospital", Role.generator, "hospital"),
    "enterprise": ("demo_enterprise", Role.generator, "enterprise"),
    "incinerator": ("demo_incinerator", Role.facility_operator, "incinerator"),
    "recycler": ("demo_recycler", Role.facility_operator, "recycler"),
    "hw_plant": ("demo_hw_plant", Role.facility_operator, "hw_plant"),
    "sewage_plant": ("demo_sewage_plant", Role.facility_operator, "sewage_plant"),
    "station": ("demo_station", Role.collector, "recovery_point"),
}


async def load_demo(*, secret: str, echo: Callable[[str], Any]) -> dict[str, dict[str, str]]:
    """Create the demo registry and chains unless they exist; return the demo logins."""
    if await Region.exists(code=CITY_CODE):
        echo("demo data already loaded; nothing changed")
    else:
        orgs = await _registry(echo)
        principals = await _users(orgs)
        count = await _chains(orgs, principals, secret)
        count += await _ports(orgs, principals, secret)
        count += await _household_and_medical(orgs, principals, secret)
        count += await _pesticide(orgs, principals, secret)
        count += await _manifests(orgs, principals, secret)
        count += await _messy_histories(orgs, principals, secret)
        await _cells(orgs, principals)
        echo(f"loaded {len(orgs)} organizations and {count} batches with their custody chains")
    return {
        role: {"username": DEMO_USERS[role][0], "password": PASSWORDS[role]} for role in DEMO_USERS
    }


async def _registry(echo: Callable[[str], Any]) -> dict[str, Organization]:
    city = await registry.create_region(code=CITY_CODE, name="荣成市", level=RegionLevel.city)
    towns: dict[str, Region] = {}
    villages: dict[str, Region] = {}
    for index, name in enumerate(TOWNS, start=1):
        towns[name] = await registry.create_region(
            code=f"{CITY_CODE}{index:03d}", name=name, level=RegionLevel.town, parent_id=city.id
        )
        for v_index, village in enumerate(VILLAGES.get(name, []), start=1):
            villages[village] = await registry.create_region(
                code=f"{CITY_CODE}{index:03d}{v_index:03d}",
                name=village,
                level=RegionLevel.village,
                parent_id=towns[name].id,
            )
    echo(f"regions: 1 city, {len(towns)} towns, {len(villages)} villages/communities")
    specs: list[tuple[str, str, OrganizationKind, Region, dict[str, Any]]] = [
        ("bureau", "威海市生态环境局荣成分局", OrganizationKind.authority, city, {}),
        ("community", "北山社区居委会", OrganizationKind.community, villages["北山社区"], {}),
        ("point", "北山社区3号投放点", OrganizationKind.collection_point, villages["北山社区"], {}),
        (
            "clinic",
            "烟墩角村卫生室",
            OrganizationKind.clinic,
            villages["烟墩角村"],
            {"bed_count": 4},
        ),
        (
            "hospital",
            "荣成市人民医院",
            OrganizationKind.hospital,
            towns["崖头街道"],
            {"bed_count": 850},
        ),
        (
            "enterprise",
            "荣成某船舶修造有限公司",
            OrganizationKind.enterprise,
            towns["港湾街道"],
            # Fictional, but well-formed (both check characters hold): its hazardous batches
            # get their HJ 1276 数字识别码.
            {"credit_code": "91371082MA3C7K2B9G"},
        ),
        ("shop", "俚岛镇农资经营部", OrganizationKind.agri_input_shop, towns["俚岛镇"], {}),
        (
            "recovery_point",
            "俚岛镇农药包装废弃物回收站",
            OrganizationKind.recovery_point,
            towns["俚岛镇"],
            {},
        ),
        ("port", "石岛渔港", OrganizationKind.fishing_port, villages["渔港社区"], {}),
        (
            "vessel_owner",
            "荣成某远洋渔业有限公司",
            OrganizationKind.vessel_owner,
            towns["石岛街道"],
            {},
        ),
        ("carrier", "荣成市医疗废物转运有限公司", OrganizationKind.carrier, city, {}),
        (
            "medical_plant",
            "威海市医疗废物集中处置中心",
            OrganizationKind.treatment_facility,
            city,
            {},
        ),
        ("incinerator", "荣成市生活垃圾焚烧发电厂", OrganizationKind.treatment_facility, city, {}),
        ("recycler", "荣成市再生资源回收利用中心", OrganizationKind.treatment_facility, city, {}),
        ("hw_plant", "威海市危险废物综合处置中心", OrganizationKind.treatment_facility, city, {}),
        ("sewage_plant", "荣成市第二污水处理厂", OrganizationKind.treatment_facility, city, {}),
        ("other_port", "龙须岛渔港", OrganizationKind.fishing_port, towns["成山镇"], {}),
    ]
    orgs = {}
    for key, name, kind, region, extra in specs:
        orgs[key] = await registry.create_organization(
            name=name, kind=kind, region_id=region.id, **extra
        )
    sites = [
        ("point", 37.1650, 122.4870),
        ("clinic", 37.2380, 122.5810),
        ("port", 36.8930, 122.4280),
        ("hospital", 37.1640, 122.4700),
        ("enterprise", 36.9050, 122.4100),
    ]
    for key, lat, lon in sites:
        await registry.create_site(
            organization_id=orgs[key].id,
            name=orgs[key].name,
            region_id=None,
            latitude=lat,
            longitude=lon,
        )
    licences = [
        ("medical_plant", "med.hw01", ["D9", "D10", "D15"]),
        ("incinerator", "hh.residual", ["R1", "D10"]),
        ("incinerator", "marine.marpol", ["R1", "D10"]),
        ("recycler", "hh.recyclable", ["R3", "R4", "R5", "R13"]),
        ("incinerator", "hh.recyclable", ["R1"]),
        ("recycler", "hh.food", ["R3", "R13"]),
        ("incinerator", "hh.food", ["R1"]),
        ("recycler", "agri.plastic_bottle", ["R3", "R5"]),
        ("recycler", "pfw", ["R3", "R4", "R5", "D10"]),
        ("hw_plant", "hw.08", ["R9", "D10"]),
        ("hw_plant", "hw.49", ["D10"]),
        ("hw_plant", "hh.hazardous", ["R4", "D10"]),
        ("sewage_plant", "marine.sewage", ["D8"]),
        ("recycler", "marine.beach_litter", ["R3", "D10"]),
    ]
    for key, category, methods in licences:
        await registry.add_licence(
            organization_id=orgs[key].id,
            category_key=category,
            method_codes=methods,
            permit_number=f"鲁环许-{key}",
        )
    for number, (name, gt) in enumerate(
        [("鲁荣渔55021", "98"), ("鲁荣渔58836", "455"), ("鲁荣渔51277", "36")], start=1
    ):
        await registry.create_vessel(
            name=name,
            registration_number=f"37108220{number:04d}",
            gross_tonnage=Decimal(gt),
            home_port_id=orgs["port"].id,
            owner_id=orgs["vessel_owner"].id,
        )
    return orgs


async def _users(orgs: dict[str, Organization]) -> dict[str, Principal]:
    principals = {}
    for role_name, (username, role, org_key) in {**DEMO_USERS, **EXTRA_USERS}.items():
        password = PASSWORDS.get(role_name, f"demo-{role_name}-2025")
        user = await auth.create_user(
            username=username, password=password, role=role, organization_id=orgs[org_key].id
        )
        principals[role_name] = await auth.principal_for(user)
    return principals


async def _chains(
    orgs: dict[str, Organization], principals: dict[str, Principal], secret: str
) -> int:
    """Some 300 batches over the last 60 days, most treated, some still on their way."""
    rng = random.Random(20251231)
    now = datetime.now(UTC)
    plans = (
        [("clinic", "medical", "med.infectious", "kg", "carrier", "medical_plant", "D10")] * 60
        + [("hospital", "medical", "med.sharps", "kg", "carrier", "medical_plant", "D9")] * 60
        + [("collector", "household", "hh.residual", "kg", "collector", "incinerator", "R1")] * 70
        + [("collector", "household", "hh.recyclable.paper", "kg", "collector", "recycler", "R3")]
        * 40
        + [("collector", "household", "hh.food.household", "kg", "collector", "recycler", "R3")]
        * 30
        + [("shop", "agri_packaging", "agri.plastic_bottle", "count", "carrier", "recycler", "R3")]
        * 15
        + [("port_operator", "marine", "marpol2018.A", "m3", "port_operator", "incinerator", "R1")]
        * 10
    )
    post = _Poster(principals, secret)
    count = 0
    for producer, stream, category, unit, mover, facility, method in plans:
        start = now - timedelta(days=rng.uniform(1, 60), hours=rng.uniform(0, 8))
        quantity = {
            "kg": Decimal(rng.randint(15, 400)) / 10,
            "count": Decimal(rng.randint(20, 300)),
            "m3": Decimal(rng.randint(2, 30)) / 10,
        }[unit]
        extra: dict[str, Any] = {}
        if producer in ("clinic", "hospital", "enterprise", "shop"):
            extra["carrier_organization_id"] = orgs["carrier"].id
        if producer == "collector":
            extra["producer_organization_id"] = orgs["point"].id
        if producer == "port_operator":
            extra["producer_organization_id"] = orgs["vessel_owner"].id
        code = await post.tag(
            producer, start, stream=stream, category=category, quantity=quantity, unit=unit, **extra
        )
        count += 1
        # What the plant's weighbridge reads: near the declared kg, or near the estimate from
        # the catalog's unit mass (bottles, 0.05 kg) or density (MARPOL A plastics, 50 kg/m³).
        base = {"kg": quantity, "count": quantity * Decimal("0.05"), "m3": quantity * 50}[unit]
        weight = (base * Decimal(str(round(rng.uniform(0.92, 1.02), 3)))).quantize(Decimal("0.001"))
        steps = [
            (mover, _event("collected", code, start + timedelta(hours=2))),
            (
                mover,
                _event(
                    "in_transit",
                    code,
                    start + timedelta(hours=3),
                    destination_organization_id=orgs[facility].id,
                ),
            ),
            (
                _PLANT_OPERATORS[facility],
                _event(
                    "received",
                    code,
                    start + timedelta(hours=6),
                    outcome="accepted",
                    weight_kg=weight,
                ),
            ),
            (
                _PLANT_OPERATORS[facility],
                _event("treated", code, start + timedelta(hours=30), method=method),
            ),
        ]
        # Recent batches are still on their way; nothing is recorded ahead of the clock.
        stop = len(steps) if start < now - timedelta(days=3) else rng.randint(0, len(steps))
        for who, submission in steps[:stop]:
            if submission.device_time > now:
                break
            await post(who, submission)
    return count


async def _ports(
    orgs: dict[str, Organization], principals: dict[str, Principal], secret: str
) -> int:
    """石岛渔港 with two berths, port calls of the three demo vessels, their deliveries (most
    carried on to treatment), a beach clean-up and a float replacement."""
    port = orgs["port"]
    await ports.register_port(
        port_id=port.id,
        grade="中心渔港",
        latitude=36.8930,
        longitude=122.4280,
        reception_facility=True,
        listed=True,
    )
    await ports.register_port(
        port_id=orgs["other_port"].id,
        grade="二级渔港",
        latitude=37.3960,
        longitude=122.6890,
        reception_facility=False,
        listed=True,
    )
    berths = [
        await ports.add_berth(
            port_id=port.id, name=name, latitude=lat, longitude=lon, geofence_m=None
        )
        for name, lat, lon in (("1号泊位", 36.8935, 122.4272), ("3号泊位", 36.8926, 122.4291))
    ]
    operator = principals["port_operator"]
    post = _Poster(principals, secret)
    now = datetime.now(UTC)
    batches = 0
    for index, vessel in enumerate(await Vessel.filter(home_port_id=port.id).order_by("id")):
        for trip in range(4):
            arrived = now - timedelta(days=7 * trip + index + 1, hours=6)
            call = await ports.open_port_call(
                principal=operator,
                vessel_id=vessel.id,
                arrived_at=arrived,
                days_at_sea=6 + trip,
                crew=6 + index * 4,
                fishing_area="shidao_se" if index != 1 else "chengshantou_nw",
                notification=[
                    NotificationLine(category="marpol2018.A", to_deliver_m3=Decimal("0.4"))
                ],
            )
            lines = [
                DeliveryLineCreate(
                    annex_v="A",
                    scheme_version="2018",
                    volume_m3=Decimal("0.4") + Decimal(trip) / 10,
                ),
                DeliveryLineCreate(annex_v="C", scheme_version="2018", volume_m3=Decimal("0.3")),
                DeliveryLineCreate(category="pfw.plastic.nets", mass_kg=Decimal(12 + 3 * trip)),
            ]
            if vessel.gross_tonnage < 400:
                lines.append(DeliveryLineCreate(category="marine.sewage", volume_m3=Decimal("0.8")))
            berth = berths[trip % 2]
            result = await ports.record_delivery(
                principal=operator,
                secret=secret,
                submission=DeliveryCreate(
                    client_event_id=uuid.uuid4(),
                    berth=codes.qr_url(berth.code, base_url="http://demo", secret=secret),
                    vessel_id=vessel.id,
                    started_at=arrived + timedelta(hours=1),
                    ended_at=arrived + timedelta(hours=2),
                    latitude=berth.latitude,
                    longitude=berth.longitude,
                    lines=lines,
                ),
            )
            assert result.error is None, result.error
            await ports.close_port_call(
                principal=operator, port_call_id=call.id, departed_at=arrived + timedelta(hours=20)
            )
            delivery = await ports.get_delivery(
                principal=operator, delivery_id=result.record_id or 0
            )
            batches += len(delivery.lines)
            if trip == 0:
                continue  # the latest trip's waste is still at the port
            for line in delivery.lines:
                facility = {"marine.sewage": "sewage_plant", "pfw.plastic.nets": "recycler"}.get(
                    line.category_id, "incinerator"
                )
                method = {"sewage_plant": "D8", "recycler": "R3"}.get(facility, "R1")
                code = line.batch.code
                when = arrived + timedelta(hours=4)
                # Weighed at the plant: a little less than the mass derived or declared.
                weight = (Decimal(line.mass_kg or 1) * Decimal("0.96")).quantize(Decimal("0.001"))
                await post(
                    "port_operator",
                    _event("in_transit", code, when, destination_organization_id=orgs[facility].id),
                )
                await post(
                    facility,
                    _event(
                        "received",
                        code,
                        when + timedelta(hours=2),
                        outcome="accepted",
                        weight_kg=weight,
                    ),
                )
                await post(
                    facility, _event("treated", code, when + timedelta(hours=20), method=method)
                )
    cleanup = await ports.record_cleanup(
        principal=operator,
        secret=secret,
        submission=CleanUpCreate(
            client_event_id=uuid.uuid4(),
            region_id=port.region_id,
            area_name="石岛湾东沙滩",
            setting="beach",
            started_at=now - timedelta(days=3, hours=4),
            ended_at=now - timedelta(days=3, hours=1),
            latitude=36.8810,
            longitude=122.4420,
            participants=32,
            item_counts={
                "floats": 46,
                "ropes": 21,
                "nets": 6,
                "bottles": 133,
                "foam": 75,
                "fish_boxes": 4,
                "other_plastics": 58,
            },
            total_weight_kg=Decimal("96.4"),
        ),
    )
    assert cleanup.error is None, cleanup.error
    await ports.record_float_replacement(
        principal=operator,
        submission=FloatReplacementCreate(
            client_event_id=uuid.uuid4(),
            region_id=port.region_id,
            replaced_on=(now - timedelta(days=10)).date(),
            foam_floats_removed=2400,
            new_floats_installed=2300,
            new_float_type="环保型塑料浮球",
        ),
    )
    return batches + 1


async def _household_and_medical(
    orgs: dict[str, Organization], principals: dict[str, Principal], secret: str
) -> int:
    """Three communities and villages with sorted collection, 40 pickups with quality checks at
    北山社区's collection point, and one clinic bag left past its 48 hours."""
    for name in ("北山社区", "南山社区", "烟墩角村"):
        village = await Region.get(name=name)
        await household.set_sorted_collection(region_id=village.id, since=date(2023, 6, 1))
    site = await Site.get(organization_id=orgs["point"].id)
    point = codes.qr_url(site.code or "", base_url="http://demo", secret=secret)
    rng = random.Random(19095)
    now = datetime.now(UTC)
    classes = [
        "hh.food.household",
        "hh.residual",
        "hh.recyclable.paper",
        "hh.recyclable.plastic",
        "hh.hazardous.battery",
    ]
    for index in range(40):
        passed = rng.random() < 0.8
        result = await household.record_pickup(
            principal=principals["collector"],
            secret=secret,
            submission=PickupCreate(
                client_event_id=uuid.uuid4(),
                site=point,
                category=classes[index % 5],
                weight_kg=Decimal(rng.randint(20, 900)) / 10,
                device_time=now - timedelta(days=rng.uniform(0.2, 30)),
                latitude=site.latitude,
                longitude=site.longitude,
                quality=QualityCheck(
                    passed=passed,
                    contamination_share=Decimal(
                        rng.randint(0, 8) if passed else rng.randint(15, 40)
                    )
                    / 100,
                ),
            ),
        )
        assert result.error is None, result.error
    await _Poster(principals, secret).tag(
        "clinic",
        now - timedelta(hours=72),
        stream="medical",
        category="med.infectious",
        quantity=Decimal("2.2"),
        unit="kg",
        carrier_organization_id=orgs["carrier"].id,
    )
    await alerts.refresh()
    return 41


async def _pesticide(
    orgs: dict[str, Organization], principals: dict[str, Principal], secret: str
) -> int:
    """Sales at the shop, returns by ten farmers at the shop and the recovery point, and one
    consignment of bottles to the recycler."""
    rng = random.Random(2020)
    now = datetime.now(UTC)
    materials = ["agri.plastic_bottle", "agri.plastic_bag", "agri.glass_bottle", "agri.drum"]
    for day in range(30):
        for material in materials:
            await pesticide.record_sale(
                principal=principals["shop"],
                submission=SaleCreate(
                    client_event_id=uuid.uuid4(),
                    sold_on=(now - timedelta(days=day)).date(),
                    material=material,
                    count=rng.randint(5, 40),
                ),
            )
    for index in range(30):
        who = principals["shop"] if index % 3 else principals["station"]
        result = await pesticide.record_return(
            principal=who,
            secret=secret,
            submission=ReturnCreate(
                client_event_id=uuid.uuid4(),
                farmer_phone=f"1386310{index % 10:04d}",
                returned_at=now - timedelta(days=rng.uniform(0.5, 29)),
                lines=[
                    PackagingLine(material=m, count=rng.randint(1, 20))
                    for m in rng.sample(materials, 2)
                ],
            ),
        )
        assert result.error is None, result.error
    sent = await pesticide.record_consignment(
        principal=principals["station"],
        secret=secret,
        submission=ConsignmentCreate(
            client_event_id=uuid.uuid4(),
            destination_organization_id=orgs["recycler"].id,
            sent_at=now - timedelta(days=2),
            lines=[
                ConsignmentLine(
                    material="agri.plastic_bottle", count=310, weight_kg=Decimal("15.5")
                )
            ],
        ),
    )
    assert sent.error is None, sent.error
    return 1


async def _manifests(
    orgs: dict[str, Organization], principals: dict[str, Principal], secret: str
) -> int:
    """Waste oil from the shipyard on transfer manifests: five accepted and treated, one
    arrived and still undecided past its 5 working days (an open alert)."""
    post = _Poster(principals, secret)
    now = datetime.now(UTC)
    made = 0
    for trip in range(6):
        start = now - timedelta(days=40 - trip * 6)
        tagged = await post(
            "enterprise",
            *(
                _event(
                    "tagged",
                    None,
                    start,
                    stream="hazardous",
                    category="hw.08",
                    waste_code="900-249-08",
                    hazard=["T", "I"],
                    quantity=Decimal(400),
                    unit="kg",
                )
                for _ in range(2)
            ),
        )
        codes_ = [outcome.result.batch_code or "" for outcome in tagged]
        made += len(codes_)
        manifest = await manifests.create_manifest(
            principal=principals["enterprise"],
            area_code="3710",
            secret=secret,
            submission=ManifestCreate(
                category="hw.08",
                waste_code="900-249-08",
                waste_name="废机油",
                hazard=["T", "I"],
                physical_form="液态",
                packaging="200L铁桶×4",
                quantity_kg=Decimal(800),
                emergency_measures="泄漏时用吸油毡围堵，禁止明火",
                batches=codes_,
                receiver_organization_id=orgs["hw_plant"].id,
                legs=[
                    LegCreate(
                        carrier_organization_id=orgs["carrier"].id,
                        vehicle_plate="鲁K12345",
                        permit_number="鲁危运2023001",
                    )
                ],
            ),
        )
        await manifests.sign_producer(
            principal=principals["enterprise"],
            manifest_id=manifest.id,
            secret=secret,
            handed_over_at=start + timedelta(hours=1),
        )
        await manifests.sign_leg(
            principal=principals["carrier"],
            manifest_id=manifest.id,
            seq=1,
            secret=secret,
            signature=LegSign(
                handover_at=start + timedelta(hours=2), handover_place="荣成某船舶修造公司"
            ),
        )
        await manifests.arrive(
            principal=principals["hw_plant"],
            manifest_id=manifest.id,
            arrived_at=start + timedelta(hours=5),
        )
        if trip == 5:
            continue
        await manifests.decide(
            principal=principals["hw_plant"],
            manifest_id=manifest.id,
            secret=secret,
            tolerance=Decimal("0.05"),
            decision=Decision(decision="accepted", received_quantity_kg=Decimal(792), method="R9"),
        )
        for code in codes_:
            await post("hw_plant", _event("treated", code, start + timedelta(days=2), method="R9"))
    await alerts.refresh()
    return made


async def _cells(orgs: dict[str, Organization], principals: dict[str, Principal]) -> None:
    """Ten zero-waste cells; six assessed at county level with evidence, some passing."""
    manager = principals["manager"]
    today = datetime.now(UTC).date()
    evidence = {
        "reduction_measures": {"value": 85, "evidence": "2025年度现场核查记录"},
        "publicity": {"value": 90, "evidence": "宣传活动台账与照片"},
        "medical_waste_compliance": {"value": 95, "evidence": "卫健部门检查通报"},
        "port_collection": {"value": 92, "evidence": "渔港接收台账"},
        "solid_waste_utilization": {"value": 93, "evidence": "固废管理台账"},
        "hazardous_compliance": {"value": 91, "evidence": "规范化评估报告"},
    }
    places = [
        ("community", "北山社区", "北山社区", None, True),
        ("community", "南山社区", "南山社区", None, True),
        ("community", "烟墩角村", "烟墩角村", None, True),
        ("hospital", "荣成市人民医院", "崖头街道", "hospital", True),
        ("fishing_port", "石岛渔港", "渔港社区", "port", True),
        ("government_office", "荣成分局机关", "崖头街道", "bureau", True),
        ("school", "崖头中学", "崖头街道", None, False),
        ("scenic_area", "那香海景区", "成山镇", None, False),
        ("express_outlet", "石岛快递网点", "石岛街道", None, False),
        ("restaurant", "渔港饭店", "渔港社区", None, False),
    ]
    for cell_type, name, region_name, org_key, assessed in places:
        region = await Region.get(name=region_name)
        cell = await cells.create_cell(
            principal=manager,
            cell_type=cell_type,
            name=name,
            region_id=region.id,
            organization_id=orgs[org_key].id if org_key else None,
        )
        if assessed:
            await cells.assess(
                principal=manager,
                cell_id=cell.id,
                level="county",
                assessed_on=today,
                entered=evidence,
            )


async def _messy_histories(
    orgs: dict[str, Organization], principals: dict[str, Principal], secret: str
) -> int:
    """What a real month also holds, so the dashboard shows how the definitions treat it: a
    cancelled bag, a rejected load delivered elsewhere, a partial acceptance whose refused
    remainder is treated elsewhere, and corrections of a tagging, a weighing and a treatment
    (docs/metrics.md)."""
    now = datetime.now(UTC)
    start = now - timedelta(days=12)
    post = _Poster(principals, secret)

    async def burn(code: str, sent: datetime, treated: datetime, weight: str) -> None:
        """The collector takes the batch to the incinerator, where it is weighed two hours
        later and burnt for energy (R1)."""
        await post(
            "collector",
            _event("in_transit", code, sent, destination_organization_id=orgs["incinerator"].id),
        )
        await post(
            "incinerator",
            _event(
                "received",
                code,
                sent + timedelta(hours=2),
                outcome="accepted",
                weight_kg=Decimal(weight),
            ),
            _event("treated", code, treated, method="R1"),
        )

    point = {"producer_organization_id": orgs["point"].id}
    # Tagged twice by mistake: the second label is cancelled.
    twice = await post.tag(
        "clinic",
        start,
        stream="medical",
        category="med.infectious",
        quantity=Decimal("2.4"),
        unit="kg",
        carrier_organization_id=orgs["carrier"].id,
    )
    await post(
        "clinic", _event("cancelled", twice, start + timedelta(minutes=5), reason="重复贴标")
    )
    # Paper soaked with kitchen waste: refused by the recycler, burnt for energy instead.
    paper = await post.tag(
        "collector",
        start,
        stream="household",
        category="hh.recyclable.paper",
        quantity=Decimal("180"),
        unit="kg",
        **point,
    )
    await post(
        "collector",
        _event("collected", paper, start + timedelta(hours=1)),
        _event(
            "in_transit",
            paper,
            start + timedelta(hours=2),
            destination_organization_id=orgs["recycler"].id,
        ),
    )
    await post(
        "recycler",
        _event(
            "received",
            paper,
            start + timedelta(hours=4),
            outcome="rejected",
            reason="纸类混入大量厨余，拒收",
        ),
    )
    await burn(paper, start + timedelta(hours=5), start + timedelta(hours=20), "176.5")
    # Food waste partly in plastic bags: the rest is accepted and weighed.
    food = await post.tag(
        "collector",
        start + timedelta(days=1),
        stream="household",
        category="hh.food.household",
        quantity=Decimal("240"),
        unit="kg",
        **point,
    )
    await post(
        "collector",
        _event("collected", food, start + timedelta(days=1, hours=1)),
        _event(
            "in_transit",
            food,
            start + timedelta(days=1, hours=2),
            destination_organization_id=orgs["recycler"].id,
        ),
    )
    (received,) = await post(
        "recycler",
        _event(
            "received",
            food,
            start + timedelta(days=1, hours=3),
            outcome="partially_accepted",
            weight_kg=Decimal("1650"),
            reason="约三成为袋装混合垃圾，退回分拣",
        ),
    )
    # The weighbridge reading was typed without its decimal point.
    await post(
        "recycler",
        _event(
            "corrected",
            food,
            start + timedelta(days=1, hours=5),
            corrects=received.result.event_id,
            weight_kg=Decimal("165.0"),
            reason="地磅读数录入漏小数点",
        ),
    )
    # The corrected weighing leaves 75 kg refused: a remainder batch of its own, which the
    # collector takes to the incinerator instead.
    rest = (await Batch.get(split_from__code=food)).code
    await burn(
        rest, start + timedelta(days=1, hours=6), start + timedelta(days=1, hours=20), "72.5"
    )
    (treated,) = await post(
        "recycler", _event("treated", food, start + timedelta(days=2), method="R13")
    )
    await post(
        "recycler",
        _event(
            "corrected",
            food,
            start + timedelta(days=2, hours=1),
            corrects=treated.result.event_id,
            method="R3",
            reason="已堆肥处理，误录为暂存R13",
        ),
    )
    # A collector typed 35 kg for 3.5 kg of glass, and corrected it the same day.
    glass = await post.tag(
        "collector",
        start + timedelta(days=3),
        stream="household",
        category="hh.recyclable.glass",
        quantity=Decimal("35"),
        unit="kg",
        **point,
    )
    history = await chain.history(principal=principals["collector"], code=glass)
    await post(
        "collector",
        _event(
            "corrected",
            glass,
            start + timedelta(days=3, hours=2),
            corrects=history[1][0].id,
            quantity=Decimal("3.5"),
            reason="数量录入错误",
        ),
    )
    return 4


# The demo user who operates each treatment plant.
_PLANT_OPERATORS = {
    "medical_plant": "facility",
    "incinerator": "incinerator",
    "recycler": "recycler",
    "hw_plant": "hw_plant",
}


@dataclass(frozen=True, slots=True)
class _Poster:
    """Posts custody events as a demo user (by their demo role name); the demo is built from
    events that must all be recorded, so a refused one stops the load."""

    principals: dict[str, Principal]
    secret: str

    async def __call__(self, who: str, *submissions: EventCreate) -> list[recorder.Recorded]:
        outcomes = await recorder.record_events(
            principal=self.principals[who], secret=self.secret, submissions=list(submissions)
        )
        for outcome in outcomes:
            assert outcome.error is None, (who, outcome.error)
        return outcomes

    async def tag(self, who: str, when: datetime, **fields: Any) -> str:
        """Tag one new batch; its code."""
        (outcome,) = await self(who, _event("tagged", None, when, **fields))
        code = outcome.result.batch_code
        assert code is not None
        return code


def _event(event_type: str, code: str | None, when: datetime, **fields: Any) -> EventCreate:
    return EventCreate.model_validate(
        {
            "client_event_id": uuid.uuid4(),
            "event_type": event_type,
            "batch": code,
            "device_time": when,
            **fields,
        }
    )
