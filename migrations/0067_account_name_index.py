from tortoise import migrations
from tortoise.migrations import operations as ops

# The account a login names is found by index, not by reading every username: a refused login
# for a name that is no account read the whole table and folded each name in Python, so it
# took longer than one for an account, and the time told which names are accounts. Usernames
# are ASCII since 41c7737 (lower() folds them as Python's casefold does); one made before it
# may hold another script, where the two folds differ, and is read by a partial index of its
# own (few rows, none once such accounts are gone). `auth.service._ALIKE` reads both.
ACCOUNT_NAMES = """
CREATE INDEX app_user_folded_idx ON app_user (lower(username));
CREATE INDEX app_user_unfolded_idx ON app_user (id) WHERE username !~ '^[A-Za-z0-9_.]{1,64}$';
"""

ACCOUNT_NAMES_REVERSE = """
DROP INDEX IF EXISTS app_user_unfolded_idx;
DROP INDEX IF EXISTS app_user_folded_idx;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0066_manifest_log_order")]

    initial = False

    operations = [ops.RunSQL(ACCOUNT_NAMES, reverse_sql=ACCOUNT_NAMES_REVERSE)]
