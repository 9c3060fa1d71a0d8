"""How a command reaches the database and reports: one transaction on a migrated database, one
line of JSON on stdout, and a domain error as a message on stderr with exit status 2. Every
command goes through these, so scripts (.ci/fresh-clone, the docs' examples) can rely on it.
"""

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import BaseModel, TypeAdapter, ValidationError
from tortoise.transactions import in_transaction

from wastetrack.core import db, keys
from wastetrack.core.commands import Id
from wastetrack.core.errors import DomainError
from wastetrack.core.settings import get_settings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Migrate, open the database and run work in one transaction; domain errors exit 2."""

    async def main(url: str) -> T:
        await db.migrate(url)
        async with db.database(url, pool_size=2), in_transaction():
            return await work()

    def start() -> T:
        with db.server_database_url(get_settings()) as url:
            return asyncio.run(main(url))

    return or_exit(start)


def run_and_print(
    work: Callable[[], Awaitable[T]], shape: Callable[[T], object] | None = None
) -> T:
    """run work and print its result, or shape(result), as one line of JSON; return the
    result."""
    result = run(work)
    echo(result if shape is None else shape(result))
    return result


def print_on_server(work: Callable[[str], T]) -> T:
    """Run work on the database server's URL (the embedded server runs meanwhile) and print
    its result as one line of JSON; domain errors exit 2."""
    with db.server_database_url(get_settings()) as url:
        result = or_exit(lambda: work(url))
    echo(result)
    return result


def or_exit(work: Callable[[], T]) -> T:
    """Run work; a domain error is printed and exits 2."""
    try:
        return work()
    except DomainError as error:
        field = f" ({error.field})" if error.field else ""
        typer.echo(f"error{field}: {error.detail}", err=True)
        raise typer.Exit(2) from None


def contract(model: type[M], **values: object) -> M:
    """A command's input read by the API's own contract (`schemas`): what the API refuses, the
    command refuses too, naming the field, with exit status 2, before the database is used."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        typer.echo(f"error ({field}): {first['msg']}", err=True)
        raise typer.Exit(2) from None


_ID = TypeAdapter(Id)


def identifier(field: str, value: int) -> int:
    """An id a command was given that no contract reads (a route takes it in its path), read
    as the API reads a path's id: out of range, it is refused naming `field`, exit status 2."""
    try:
        return int(_ID.validate_python(value))
    except ValidationError as error:
        typer.echo(f"error ({field}): {error.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None


def writable(path: Path) -> Path:
    """`path` for a command's file, refused (exit 2, naming `out`) before anything runs when
    the file could not be written there: a directory, or a folder that does not exist or may
    not be written. `write_file` still says any other failure."""
    folder = path.parent
    why = (
        "it is a directory"
        if path.is_dir()
        else f"{folder} is no directory"
        if not folder.is_dir()
        else f"{folder} may not be written"
        if not os.access(folder, os.W_OK)
        else None
    )
    if why is not None:
        typer.echo(f"error (out): cannot write {path}: {why}", err=True)
        raise typer.Exit(2)
    return path


def write_file(path: Path, content: bytes) -> None:
    """Write a command's file, readable by its owner only and whole or not at all (a label
    sheet may end with a producer's one-time PINs, an export is the city's record); one that
    cannot be written there is said, with exit status 2."""
    try:
        keys.write_private(path, content, replace=True)
    except OSError as error:
        typer.echo(f"error (out): cannot write {path}: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None


def echo(value: object) -> None:
    """Print value as one line of JSON (dates, decimals and the like as their text)."""
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))
