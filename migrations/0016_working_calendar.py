from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from wastetrack.calendar.service import load_pinned
from wastetrack.registry.models import OrganizationKind

# Pinned here, not read from today's catalog files: the 名录 code each medical class fixes
# (医疗废物分类目录 2021 + 国家危险废物名录 2021, HW01) and the pattern of the HW01 class itself.
MEDICAL_WASTE_CODES = {
    "med.infectious": "841-001-01",
    "med.sharps": "841-002-01",
    "med.pathological": "841-003-01",
    "med.chemical": "841-004-01",
    "med.pharmaceutical": "841-005-01",
}
MEDICAL_CLASS_PATTERN = ("med.hw01", "841-00[1-5]-01")

# The indicators, corrected against the plan (专栏1 and the chapter text): (code, column,
# corrected value, value before). 第九章第一节 holds the beverage-carton target; 第八章 "第三节
# 持续开展农村环境整治" the villages' harmless treatment; the plan gives small institutions no
# figure, only 落实 (100 % read from it).
INDICATOR_FIXES = [
    ("beverage_carton_recycling", "section", "第九章第一节", "第九章第四节"),
    (
        "rural_household_waste_harmless",
        "section",
        "第八章第三节（持续开展农村环境整治）",
        "第八章",
    ),
    ("small_clinic_collection", "target_text", "落实就近集中收集管理（规划未给数值）", None),
]
INDICATOR_SOURCE = (
    "荣成市“十四五”生态环境保护规划: 专栏1 and 第七章第二节, 第八章第三节, 第八章第四节, 第九章",
    "荣成市“十四五”生态环境保护规划: 专栏1 and 第七章第二节, 第八章第四节, 第九章",
)


async def forward(apps, schema_editor):
    client = schema_editor.client
    await load_pinned(client, "working_calendar_cn_1.11.0.json")
    await client.execute_many(
        "UPDATE waste_category SET waste_code = $2 WHERE key = $1",
        [[key, code] for key, code in MEDICAL_WASTE_CODES.items()],
    )
    await client.execute_query(
        "UPDATE waste_category SET waste_code_pattern = $2 WHERE key = $1",
        list(MEDICAL_CLASS_PATTERN),
    )
    await client.execute_script(
        "UPDATE waste_category SET waste_code_pattern = '[0-9]{3}-[0-9]{3}-' || substr(code, 3)"
        " WHERE stream_id = 'hazardous' AND code ~ '^HW[0-9]{2}$';"
    )
    for code, column, new, _ in INDICATOR_FIXES:
        await client.execute_query(
            f"UPDATE indicator SET {column} = $2 WHERE code = $1", [code, new]
        )
    await client.execute_query("UPDATE indicator SET source = $1", [INDICATOR_SOURCE[0]])


async def backward(apps, schema_editor):
    client = schema_editor.client
    for code, column, _, old in INDICATOR_FIXES:
        await client.execute_query(
            f"UPDATE indicator SET {column} = $2 WHERE code = $1", [code, old]
        )
    await client.execute_query("UPDATE indicator SET source = $1", [INDICATOR_SOURCE[1]])


class Migration(migrations.Migration):
    # Working calendar, per-category waste codes, medical institution kinds, indicator sections.
    dependencies = [("wastetrack", "0015_batch_facts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="CalendarDay",
            fields=[
                ("day", fields.DateField(primary_key=True, unique=True, db_index=True)),
                ("is_working_day", fields.BooleanField()),
                ("name", fields.CharField(null=True, max_length=64)),
                ("source", fields.CharField(max_length=128)),
            ],
            options={"table": "working_calendar", "app": "wastetrack", "pk_attr": "day"},
            bases=["Model"],
        ),
        ops.AlterField(
            model_name="Organization",
            name="kind",
            field=fields.CharEnumField(
                description="collection_point: collection_point\ncommunity: community\nclinic: clinic\nvillage_clinic: village_clinic\ntownship_hospital: township_hospital\nhospital: hospital\nenterprise: enterprise\nagri_input_shop: agri_input_shop\nrecovery_point: recovery_point\nfishing_port: fishing_port\nvessel_owner: vessel_owner\ncarrier: carrier\ntreatment_facility: treatment_facility\nauthority: authority",
                enum_type=OrganizationKind,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="WasteCategory",
            name="waste_code",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="WasteCategory",
            name="waste_code_pattern",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.RunPython(forward, backward),
    ]
