"""A real HTTP listener on loopback that records what webhooks deliver, and settings that
let the service call it."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from wastetrack.core.settings import Settings
from wastetrack.webhooks import sending


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Settings:
    # Loopback targets are allowed here; the SSRF tests build an app without this.
    return settings.model_copy(update={"webhooks_allow_private": True, "webhooks_max_failures": 3})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    """Answers each POST with the next planned status (200 once the plan runs out)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    plan: list[int] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        path = head[0].split()[1]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append(Received(path, headers, body))
        status = self.plan.pop(0) if self.plan else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    found.url = f"http://127.0.0.1:{port}/hooks"
    async with server:
        yield found


@pytest.fixture
async def sender(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """The dispatcher's own HTTP session (real HTTP to the listener)."""
    async with sending.sender(allow_private=settings.webhooks_allow_private) as client:
        yield client
