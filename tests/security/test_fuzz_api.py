"""Property-based fuzzing of every operation in the app's own OpenAPI document (schemathesis):
whatever a manager or a collector sends, the answer is never a 5xx and always matches the
contract."""

import asyncio
import logging
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.depth import randomized
from tests.factories import World

ROLES = ("manager", "collector")
MAX_EXAMPLES = 4
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """requests-style arguments as httpx takes them."""
    out = {
        k: kwargs[k] for k in ("method", "url", "headers", "params", "json", "files") if k in kwargs
    }
    data = kwargs.get("data")
    if isinstance(data, str | bytes):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if out.get("files") is None:
        out.pop("files", None)
    else:
        files = out["files"]
        items = files.items() if isinstance(files, dict) else files
        out["files"] = [(name, _file_part(part)) for name, part in items]
    return out


def _file_part(part: Any) -> Any:
    """Negative cases put numbers or nulls where a file goes; send them as text, as requests
    would."""
    if isinstance(part, tuple):
        return (part[0], _file_part(part[1]), *part[2:])
    return part if isinstance(part, str | bytes) else str(part)


def _fuzz_operation(
    operation: Any, mode: GenerationMode, send: Any, headers: dict[str, str], failures: list
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @randomized(
        MAX_EXAMPLES,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        response = send(_httpx_kwargs(kwargs))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (FailureGroup, AssertionError) as failure:
            failures.append(
                f"{case.method} {case.formatted_path} [{mode.value}] -> {response.status_code}"
                f" {response.text[:300]}: {str(failure)[:300]}"
            )
            raise

    try:
        run()
    except (FailureGroup, AssertionError):  # recorded above; fuzz the other operations too
        pass
    except Unsatisfiable:  # nothing to generate (no parameter to make invalid)
        pass


async def test_no_operation_answers_5xx_or_breaks_its_schema(
    app, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Thousands of requests: keep the request log out of the way.
    caplog.set_level(logging.WARNING)
    for name in ("wastetrack", "httpx", "wastetrack.request"):
        logging.getLogger(name).setLevel(logging.WARNING)
    schema = schemathesis.openapi.from_dict(app.openapi())
    loop = asyncio.get_running_loop()
    # A crash must come back as the 500 a client would see, not as an exception in the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def request(kwargs: dict[str, Any]) -> httpx.Response:
        prepared = client.build_request(**kwargs)
        await prepared.aread()  # a multipart body is a stream; the checks read it again
        return await client.send(prepared)

    def send(kwargs: dict[str, Any]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(request(kwargs), loop).result()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    failures: list[str] = []

    def fuzz() -> None:
        for operation in operations:
            for role in ROLES:
                # Invalid bodies are where the 500s hid; invalid path strings only cost time
                # (hypothesis struggles to break a pattern) and the contract bounds them.
                modes = [GenerationMode.POSITIVE]
                if operation.body:
                    modes.append(GenerationMode.NEGATIVE)
                for mode in modes:
                    _fuzz_operation(operation, mode, send, world.headers(role), failures)

    try:
        await loop.run_in_executor(None, fuzz)
    finally:
        await client.aclose()
    assert not failures, "\n".join(failures)
