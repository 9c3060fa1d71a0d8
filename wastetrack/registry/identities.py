"""Global identities: a region by its administrative-division code, an organization by its
unified social credit code. Both are issued by the state, so they name the same place or body
in every city instance and can key a province-wide federation (docs/scale-out.md).

Region codes (行政区划代码):
- a city or county (县级) is a 6-digit GB/T 2260 code, e.g. 371082 荣成市;
- a town or street (乡级) is the 9-digit prefix of the statistical division code
  (统计用区划代码, National Bureau of Statistics): its county's 6 digits and 3 of its own,
  e.g. 371082001 崖头街道;
- a village or community (村级) is the 12-digit code: its town's 9 digits and 3 of its own.

Unified social credit code (统一社会信用代码, GB 32100-2015), 18 characters from
``CREDIT_ALPHABET`` (no I, O, Z, S, V):
- 1: registration authority (登记管理部门: 1 机构编制, 5 民政, 9 市场监管, N 农业, Y 其他 …);
- 2: entity type (机构类别);
- 3–8: the registering authority's 6-digit GB/T 2260 division code (100000: national);
- 9–17: the organization code (主体标识码, GB 11714: 8 characters and a check character);
- 18: the check character over the first 17 (GB/T 17710 ISO 7064 MOD 31-3 style).

The check is verified against the standard's worked example (GB 32100-2015, 校验码计算方法实例,
reproduced e.g. at https://www.yc00.com/web/1713075042a2177900.html: 91350100M000100Y4 →
weighted sum 1640, 1640 mod 31 = 28, 31 - 28 = 3, so 91350100M000100Y43) and against public
business-licence codes such as 914403001922038216 (华为技术有限公司) and 9144030071526726XG
(深圳市腾讯计算机系统有限公司); see tests/registry/test_identities.py. python-stdnum's
``cn.uscc`` computes the same check character but refuses authorities written as letters
(N 农业 for village collective economic organizations, Y, A), which a village-level registry
must accept, hence this module. A code whose check character does not hold is refused, and
the organization is registered without one.
"""

import re

from wastetrack.core.errors import ValidationFailed

# GB/T 2260 province-level divisions: the first two digits of every county code.
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54"
    " 61 62 63 64 65 71 81 82".split()
)
# Credit codes issued by a national authority carry 100000, the code of the whole country.
NATIONAL_CODE = "100000"

# Digits of a region code by level; the database CHECK (Region.Meta) is built from it.
REGION_CODE_DIGITS = {"city": 6, "town": 9, "village": 12}

# The statistical division codes (统计用区划代码) of the National Bureau of Statistics, which a
# village-level code follows, tell an urban community from a rural village by its last three
# digits: 001–199 a residents' committee (居民委员会), 200–399 a villagers' committee
# (村民委员会). Sorting coverage is counted apart for each (docs/metrics.md §6).
COMMUNITY_CODES = range(1, 200)
VILLAGE_CODES = range(200, 400)

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_PATTERN = "^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$"
# Weight of position i (1-based) is 3^(i-1) mod 31.
CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
# GB 11714 organization code: weights over the 8 body characters, values 0–9 and A=10 … Z=35.
ORGANIZATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_CREDIT_RE = re.compile(CREDIT_PATTERN)


def region_code_check_sql() -> str:
    """The database CHECK on region codes: digits, their number set by the level."""
    return " OR ".join(
        f"(level = '{level}' AND code ~ '^[0-9]{{{digits}}}$')"
        for level, digits in REGION_CODE_DIGITS.items()
    )


def check_region_code(code: str, *, level: str, parent_code: str | None) -> str:
    """The region's code when it fits its level and extends its parent's; else a
    ValidationFailed naming ``code``."""
    digits = REGION_CODE_DIGITS[level]
    if not (code.isascii() and code.isdigit() and len(code) == digits):
        raise ValidationFailed(
            f"a {level}'s code has {digits} digits (GB/T 2260 county code"
            f"{', then 3 digits per level below it' if digits > 6 else ''}), not {code!r}",
            field="code",
        )
    if code[:2] not in PROVINCE_CODES:
        raise ValidationFailed(
            f"{code!r} does not start with a GB/T 2260 province code", field="code"
        )
    if level == "city":
        # Usually a county-level unit (371082 荣成市); a prefecture without counties has its
        # towns right under its own code (441900 东莞市), so 00 is allowed.
        if code.endswith("0000"):
            raise ValidationFailed(
                f"{code!r} is a province's code, not a city's or county's", field="code"
            )
        return code
    if parent_code is None or code[: len(parent_code)] != parent_code:
        raise ValidationFailed(
            f"a {level}'s code extends its parent's code {parent_code!r}, not {code!r}",
            field="code",
        )
    if code[len(parent_code) :] == "000":
        raise ValidationFailed(
            f"a {level}'s own 3 digits cannot be 000 (that is its parent)", field="code"
        )
    return code


def settlement_kind(code: str) -> str | None:
    """Whether a village-level region is an urban `community` or a rural `village`, by its
    code's last three digits (`COMMUNITY_CODES`, `VILLAGE_CODES`); None when they fall in
    neither range: never guessed."""
    own = int(code[-3:])
    if own in COMMUNITY_CODES:
        return "community"
    if own in VILLAGE_CODES:
        return "village"
    return None


def credit_check_character(first17: str) -> str:
    """The 18th character of a unified social credit code (GB 32100-2015, 5.2)."""
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def organization_check_character(body: str) -> str:
    """The 9th character of a GB 11714 organization code over its 8-character body."""
    total = sum(int(c, 36) * w for c, w in zip(body, ORGANIZATION_WEIGHTS, strict=True))
    return "0123456789X0"[11 - total % 11]


def normalize_credit_code(value: str) -> str:
    """The unified social credit code in upper case without spaces or hyphens, when it is
    valid; else a ValidationFailed naming ``credit_code``."""
    code = re.sub(r"[\s-]", "", value).upper()
    if len(code) != 18:
        raise ValidationFailed(
            f"a unified social credit code has 18 characters, not {len(code)}",
            field="credit_code",
        )
    if not _CREDIT_RE.match(code):
        wrong = sorted({c for c in code if c not in CREDIT_ALPHABET})
        raise ValidationFailed(
            f"characters {wrong} are outside the credit-code alphabet (no I, O, Z, S, V)"
            if wrong
            else "characters 3–8 of a credit code are the 6-digit division code",
            field="credit_code",
        )
    region = code[2:8]
    if region != NATIONAL_CODE and region[:2] not in PROVINCE_CODES:
        raise ValidationFailed(
            f"characters 3–8 ({region}) are not a GB/T 2260 division code", field="credit_code"
        )
    if organization_check_character(code[8:16]) != code[16]:
        raise ValidationFailed(
            "character 17 is not the check character of the organization code (GB 11714)",
            field="credit_code",
        )
    if credit_check_character(code[:17]) != code[17]:
        raise ValidationFailed(
            "character 18 is not the credit code's check character (GB 32100)",
            field="credit_code",
        )
    return code
