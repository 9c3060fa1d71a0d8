"""Carriers' fleets: vehicles, drivers, GPS positions, and the trajectory of a batch."""

from typing import Annotated

from fastapi import Depends, Path, Query

from mobile_api.bodies import Router
from mobile_api.deps import CurrentUser, Paging, Transaction, require
from mobile_api.presenters import NEXT_PAGE
from schemas.base import Id, QueryBoolean, Scanned, Text
from schemas.fleet import (
    DriverCreate,
    DriverRead,
    LineString,
    PositionBatch,
    PositionsStored,
    Trajectory,
    VehicleCreate,
    VehicleRead,
    VehicleUpdate,
)
from wastetrack.auth.models import Role
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.fleet import service as fleet
from wastetrack.fleet import tracking

router = Router(prefix="/m/v1", tags=["fleet"])


FleetManager = Annotated[
    Principal,
    Depends(require(*fleet.FLEET_MANAGERS, detail="only a carrier's users manage its fleet")),
]
FleetReader = Annotated[
    Principal,
    Depends(
        require(*fleet.FLEET_READERS, detail="fleets are read by their carrier and the managers")
    ),
]
CarrierOnly = Annotated[
    Principal,
    Depends(require(Role.carrier, detail="a carrier's phones report its vehicles")),
]
Plate = Annotated[Text, Path(min_length=1, max_length=32, description="the plate, e.g. 鲁K12345")]


@router.post("/vehicles", response_model=VehicleRead, status_code=201)
async def create_vehicle(body: VehicleCreate, user: FleetManager, _: Transaction) -> object:
    """Register a vehicle in your carrier's fleet (admins: the carrier named)."""
    return await fleet.create_vehicle(principal=user, **body.model_dump())


@router.get("/vehicles", response_model=list[VehicleRead], responses={200: NEXT_PAGE})
async def list_vehicles(
    user: FleetReader,
    paged: Paging,
    include_retired: Annotated[QueryBoolean, Query(description="also retired vehicles")] = False,
) -> object:
    """Your fleet's vehicles (managers: their region's carriers'), by plate."""
    return await paged.read(fleet.list_vehicles, principal=user, include_retired=include_retired)


@router.patch("/vehicles/{plate}", response_model=VehicleRead)
async def update_vehicle(
    plate: Plate, body: VehicleUpdate, user: FleetManager, _: Transaction
) -> object:
    """Change a vehicle's permit, hazardous-goods licence, capacity or driver."""
    changes = body.model_dump(exclude_unset=True)
    for name in ("permit_number", "capacity_kg"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(f"{name} cannot be removed", field=name)
    return await fleet.update_vehicle(principal=user, plate=plate, changes=changes)


@router.delete("/vehicles/{plate}", response_model=VehicleRead)
async def retire_vehicle(plate: Plate, user: FleetManager, _: Transaction) -> object:
    """Retire a vehicle: it names no new carriage, and its history stays."""
    return await fleet.retire_vehicle(principal=user, plate=plate)


@router.post("/vehicles/{plate}/positions", response_model=PositionsStored)
async def record_positions(
    plate: Plate, body: PositionBatch, user: CarrierOnly, _: Transaction
) -> PositionsStored:
    """GPS fixes of one of your vehicles; resending a fix (same time) stores it once."""
    received, stored = await tracking.record_positions(
        principal=user,
        plate=plate,
        positions=[
            tracking.Position(time=p.time, latitude=p.latitude, longitude=p.longitude)
            for p in body.positions
        ],
    )
    return PositionsStored(received=received, stored=stored)


@router.post("/drivers", response_model=DriverRead, status_code=201)
async def create_driver(body: DriverCreate, user: FleetManager, _: Transaction) -> object:
    """Register a driver of your carrier (admins: the carrier named)."""
    return await fleet.create_driver(principal=user, **body.model_dump())


@router.get("/drivers", response_model=list[DriverRead], responses={200: NEXT_PAGE})
async def list_drivers(
    user: FleetReader,
    paged: Paging,
    include_retired: Annotated[QueryBoolean, Query(description="also retired drivers")] = False,
) -> object:
    """Your fleet's drivers (managers: their region's carriers'), by name."""
    return await paged.read(fleet.list_drivers, principal=user, include_retired=include_retired)


@router.delete("/drivers/{driver_id}", response_model=DriverRead)
async def retire_driver(driver_id: Id, user: FleetManager, _: Transaction) -> object:
    """A driver leaves your fleet; the record stays."""
    return await fleet.retire_driver(principal=user, driver_id=driver_id)


@router.get("/batches/{code}/trajectory", response_model=Trajectory)
async def batch_trajectory(code: Scanned, user: CurrentUser) -> Trajectory:
    """The batch's path as a GeoJSON LineString: its carriers' vehicle positions between each
    pickup and the batch's next step."""
    found = await tracking.trajectory(principal=user, code=code)
    coordinates = [(lon, lat) for _, lat, lon in found.points]
    return Trajectory(
        geometry=LineString(coordinates=coordinates) if len(coordinates) >= 2 else None,
        properties={
            "batch_code": found.batch_code,
            "times": [t.isoformat() for t, _, _ in found.points],
            "carriages": [
                {
                    "vehicle_plate": c.plate,
                    "from": c.start.isoformat(),
                    "to": c.end.isoformat() if c.end else None,
                }
                for c in found.carriages
            ],
        },
    )
