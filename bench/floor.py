"""The framework floor for `bench/ingest.py`: the least a single post costs in the service's own
stack, served in the same run as the service and on the same database.

`POST /floor` takes the body a phone posts to `/m/v1/events`, validates it with the same model
(`EventCreate`), opens a transaction with the service's own dependency
(`mobile_api.deps.Transaction`: Tortoise, the same pool and admission), inserts one event-shaped
row, commits, and answers a small JSON object. `POST /floor/sync` does the same for the body of
`/m/v1/sync` (`SyncRequest`), its rows inserted by one `executemany`. No authentication, no rules,
no middleware, no hash chain, no roll-up: whatever a real post does costs more than this. Served
like the service (`wastetrack.cli.serving.run_workers`: uvicorn workers, each on its own socket of
the shared port), with the service's worker count:

    FLOOR_DATABASE_URL=postgresql://... python bench/floor.py --workers 2 --port 8001
"""

import argparse
import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from tortoise import connections

from mobile_api.deps import Transaction
from schemas.events import EventCreate
from schemas.sync import SyncRequest
from wastetrack.cli.serving import run_workers
from wastetrack.core import db

TABLE = "bench_floor"
"""A copy of custody_event's columns and indexes (`LIKE custody_event INCLUDING ALL`), made by
the bench before the floor is served."""


def insert_statement(table: str, columns: list[str]) -> str:
    """One row's INSERT into `table`, its columns' values as $1, $2, …"""
    placeholders = ", ".join(f"${number}" for number in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def create_app() -> FastAPI:
    url = os.environ["FLOOR_DATABASE_URL"]
    template: dict[str, Any] = {}
    sequence = itertools.count(1)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with db.database(url):
            rows = await connections.get("default").execute_query_dict(
                "SELECT * FROM custody_event LIMIT 1"
            )
            if not rows:
                raise RuntimeError("the floor copies a custody_event row: record one first")
            template.update(rows[0])
            # The bench connects its phones once every worker is serving, as the service's
            # are: a worker still starting would leave its share to the others.
            ready = os.environ.get("FLOOR_READY_DIR")
            if ready:
                (Path(ready) / str(os.getpid())).touch()
            yield

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    def row(command: EventCreate) -> dict[str, Any]:
        return {
            **template,
            "id": uuid.uuid4(),
            # A key of its own in the copy's unique (batch_id, seq) index, whichever worker.
            "batch_id": -os.getpid(),
            "seq": next(sequence),
            "client_event_id": command.client_event_id,
            "device_time": command.device_time,
        }

    @app.post("/floor", status_code=201)
    async def floor(body: EventCreate, _: Transaction) -> dict[str, str]:
        values = row(body)
        await connections.get("default").execute_query(
            insert_statement(TABLE, list(values)), list(values.values())
        )
        return {"status": "applied", "client_event_id": str(body.client_event_id)}

    @app.post("/floor/sync")
    async def floor_sync(body: SyncRequest, _: Transaction) -> dict[str, int]:
        rows = [row(entry) for entry in body.events if isinstance(entry, EventCreate)]
        if not rows:
            return {"applied": 0}
        await connections.get("default").execute_many(
            insert_statement(TABLE, list(rows[0])), [list(values.values()) for values in rows]
        )
        return {"applied": len(rows)}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    run_workers(
        "floor:create_app", host="127.0.0.1", port=arguments.port, workers=arguments.workers
    )
