# The lines a record keeps as written (a pesticide return's and consignment's, a port call's
# notification) held their numbers as the command's JSON wrote them, a Decimal with its exponent:
# a weight sent as `1E+1` was shown so by the ledger, its files and the phone. New lines are kept
# in plain figures (`Command.as_kept`); this writes the numbers of lines kept before so, each as
# PostgreSQL's numeric reads it (`1E+1` is `10`, `2.5e0` is `2.5`), every other member as it was.
from tortoise import migrations
from tortoise.migrations import operations as ops


def _plain(table: str, column: str, keys: tuple[str, ...]) -> str:
    named = ", ".join(f"'{key}'" for key in keys)
    exponent = (
        f"kv.key IN ({named}) AND jsonb_typeof(kv.value) = 'string' AND kv.value #>> '{{}}' ~* 'e'"
    )
    return f"""
UPDATE {table} SET {column} = (
    SELECT jsonb_agg(
        (SELECT jsonb_object_agg(kv.key, CASE WHEN {exponent}
                    THEN to_jsonb(((kv.value #>> '{{}}')::numeric)::text) ELSE kv.value END)
           FROM jsonb_each(l.line) kv)
        ORDER BY l.n)
    FROM jsonb_array_elements({column}) WITH ORDINALITY l (line, n)
)
WHERE EXISTS (SELECT 1 FROM jsonb_array_elements({column}) l (line), jsonb_each(l.line) kv
              WHERE {exponent});
"""


PLAIN = "".join(
    (
        _plain("packaging_return", "lines", ("weight_kg",)),
        _plain("consignment", "lines", ("weight_kg",)),
        _plain(
            "port_call", "notification", ("to_deliver_m3", "storage_capacity_m3", "retained_m3")
        ),
    )
)


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0063_returns_without_plain_digest")]

    initial = False

    operations = [ops.RunSQL(PLAIN, reverse_sql="SELECT 1;")]
