"""The browser tests' data, made in a process of its own (the test process keeps its own ORM
connection): in the database named by WASTETRACK_DATABASE_URL, which the served app has
migrated, build the tests' small world (tests/factories.py) and give the carrier one unused
label for a load. Prints JSON."""

import asyncio
import json

from tests.factories import build_world
from wastetrack.batches.models import Label
from wastetrack.core import codes, db
from wastetrack.core.settings import get_settings


async def main() -> dict[str, object]:
    settings = get_settings()
    assert settings.database_url
    async with db.database(settings.database_url, pool_size=2):
        world = await build_world(settings)
        load = codes.new_code()
        await Label.create(code=load, organization=world.orgs["carrier"], stream_id="medical")
        return {"load": load, "orgs": {k: v.id for k, v in world.orgs.items()}}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
