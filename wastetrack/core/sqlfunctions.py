"""Statements of the recording transaction kept as SQL functions, installed from the code's
own text at start-up.

A statement with array parameters stays on custom plans: PostgreSQL re-plans it on every call
(a generic plan cannot know an array's length), and for the recording's statements planning
costs more than running them for one event. A function carries its own settings (a generic
plan, say) for its body only, and is one round trip. Its text lives here, next to the Python
that calls it, so each statement has one definition; `ensure` replaces an installed function
whose definition differs (left by an older release): its body, settings or parameters, or a
fingerprint of the whole definition kept as its comment."""

import hashlib
from dataclasses import dataclass
from functools import cached_property

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

BY_KEY = (
    "plan_cache_mode=force_generic_plan",
    "enable_seqscan=off",
    "enable_hashjoin=off",
    "enable_mergejoin=off",
    "enable_material=off",
)
"""Settings for a body that reads and writes a handful of rows by their keys, as the recording
transaction's do: a generic plan (planning one event's statement cost more than running it),
reaching each table through an index, in nested loops. The generic plan is made from the
statistics of the moment, and PostgreSQL cannot know that an array or a recursive scope holds
one to four batches: it guessed hundreds, so while the tables were small enough (tens of
thousands of batches) it hash-joined whole tables on every call, a cost that grew with the
data."""


@dataclass(frozen=True)
class SqlFunction:
    name: str
    parameters: tuple[str, ...]
    """The parameters' types, in order; the body refers to them as $1, $2, …"""
    returns: str
    body: str
    settings: tuple[str, ...] = ()
    """Settings for the body only, as `name=value` (as pg_proc.proconfig keeps them)."""
    language: str = "sql"
    """`plpgsql` for a body of several statements whose results it combines."""

    @cached_property
    def call(self) -> str:
        """The statement that calls it, passing its parameters through; a function that
        returns a table gives its columns. Made once: each recording call runs it."""
        arguments = ", ".join(f"${number}" for number in range(1, len(self.parameters) + 1))
        return f"SELECT * FROM {self.name}({arguments})"

    def _create(self) -> str:
        settings = " ".join(f"SET {s.replace('=', ' = ')}" for s in self.settings)
        return (
            f"CREATE FUNCTION {self.name}({', '.join(self.parameters)}) RETURNS {self.returns}"
            f" LANGUAGE {self.language} VOLATILE {settings}\nAS $body${self.body}$body$"
        )

    @property
    def fingerprint(self) -> str:
        """The digest of the whole definition (what pg_proc keeps of it does not show a
        renamed result column, say), kept as the installed function's comment."""
        return "wastetrack " + hashlib.sha256(self._create().encode()).hexdigest()

    def definition(self) -> str:
        """SQL that drops every function of this name (whatever its parameters were) and
        creates this one."""
        return (
            "DO $drop$ DECLARE f regprocedure; BEGIN"
            f" FOR f IN SELECT oid FROM pg_proc WHERE proname = '{self.name}' LOOP"
            " EXECUTE 'DROP FUNCTION ' || f; END LOOP; END $drop$;\n"
            f"{self._create()};\n"
            f"COMMENT ON FUNCTION {self.name}({', '.join(self.parameters)})"
            f" IS '{self.fingerprint}'"
        )

    async def _installed_as_defined(self, client: BaseDBAsyncClient) -> bool:
        installed = await client.execute_query_dict(
            "SELECT prosrc, proconfig, obj_description(oid, 'pg_proc') AS fingerprint,"
            " oidvectortypes(proargtypes) = array_to_string($2::text[]::regtype[], ', ')"
            " AS same_parameters"
            " FROM pg_proc WHERE proname = $1",
            [self.name, list(self.parameters)],
        )
        return len(installed) == 1 and (
            installed[0]["prosrc"],
            installed[0]["proconfig"],
            installed[0]["fingerprint"],
            installed[0]["same_parameters"],
        ) == (self.body, list(self.settings) or None, self.fingerprint, True)

    async def ensure(self) -> bool:
        """Install the function as defined here unless it is; True if it (re)installed it.
        Two start-ups at once (two hosts, or `migrate` beside a starting service) take turns:
        the second finds the function as defined and leaves it."""
        if await self._installed_as_defined(connections.get("default")):
            return False
        async with in_transaction() as replacing:
            await replacing.execute_query(
                "SELECT pg_advisory_xact_lock(hashtext('wastetrack_sqlfunctions'))"
            )
            if await self._installed_as_defined(replacing):
                return False
            await replacing.execute_script(self.definition())
        return True
