"""Shapes domain objects into response contracts where a field needs the server's settings."""

import html

from schemas.batches import BatchRead
from wastetrack.batches.models import Batch
from wastetrack.core import codes
from wastetrack.core.settings import Settings

_BATCH_ATTRIBUTES = (
    "code",
    "stream_id",
    "category_id",
    "waste_code",
    "producer_id",
    "origin_site_id",
    "quantity",
    "unit",
    "state",
    "holder_id",
    "carrier_id",
    "destination_id",
    "parent_id",
    "tagged_at",
    "created_at",
    "last_seq",
)


def batch_read(batch: Batch, settings: Settings) -> BatchRead:
    values = {name: getattr(batch, name) for name in _BATCH_ATTRIBUTES}
    values["qr_url"] = codes.qr_url(
        batch.code, base_url=settings.base_url, secret=settings.secret_key
    )
    return BatchRead.model_validate(values)


STATE_NAMES_ZH = {
    "unbound": "未启用",
    "tagged": "已贴标",
    "collected": "已收集",
    "handed_over": "已交接",
    "in_transit": "运输中",
    "stored": "贮存中",
    "received": "已接收",
    "rejected": "已拒收",
    "treated": "已处置",
    "aggregated": "已合并装箱",
    "cancelled": "已作废",
}


def render_public_page(summary: dict[str, str | None]) -> str:
    """A minimal, dependency-free page for the public-supervision QR view."""
    rows = [
        ("编码 Code", summary["code"]),
        ("类别 Stream", summary["stream"]),
        ("分类 Category", summary["category"] or "—"),
        ("状态 State", STATE_NAMES_ZH.get(summary["state"] or "", summary["state"])),
        ("贴标日期 Tagged", summary["tagged_at"] or "—"),
        ("最近更新 Updated", summary["updated_at"] or "—"),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<title>固体废物追溯 wastetrack</title><style>body{font-family:sans-serif;margin:1rem}"
        "th{text-align:left;padding-right:1rem;color:#555}td,th{padding:.3rem 0}</style></head>"
        f"<body><h1>固体废物追溯</h1><table>{cells}</table>"
        "<p>公众监督：如发现违规处置，请向荣成市生态环境主管部门反映。</p></body></html>"
    )
