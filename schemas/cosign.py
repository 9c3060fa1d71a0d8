"""Co-signatures: producers' one-time PIN lists and carriers' bulk signing of manifests."""

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import Id, Moment, Schema, Text, rule_error


class BulkSignItem(Schema):
    manifest_id: Id
    seq: int | None = Field(
        None, ge=1, le=5, description="carrier: the leg to sign; default your first unsigned leg"
    )
    handover_at: Moment | None = Field(None, description="carrier: required; producer: default now")
    handover_place: Text | None = Field(
        None, min_length=1, max_length=128, description="carrier: required"
    )


class BulkSign(Schema):
    """Many manifests of one round signed in one request: all or nothing."""

    role: Literal["carrier", "producer"] = Field(
        description="carrier: sign your leg of each; producer: sign the producer's section"
    )
    manifests: list[BulkSignItem] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _carrier_says_when_and_where(self) -> "BulkSign":
        if self.role == "carrier":
            for index, item in enumerate(self.manifests):
                for name in ("handover_at", "handover_place"):
                    if getattr(item, name) is None:
                        raise rule_error(
                            f"manifests[{index}].{name}",
                            f"{name} is required when a carrier signs",
                        )
        return self

    @model_validator(mode="after")
    def _each_signature_once(self) -> "BulkSign":
        """An item names one signature (a manifest's section, or its leg `seq`); the same one
        listed again in a request is refused rather than reported signed already."""
        first: dict[tuple[int, int | None], int] = {}
        for index, item in enumerate(self.manifests):
            earlier = first.setdefault((item.manifest_id, item.seq), index)
            if earlier != index:
                raise rule_error(
                    f"manifests[{index}].manifest_id",
                    f"the same signature is listed already as manifests[{earlier}]",
                )
        return self


class BulkSignResult(Schema):
    manifest_id: int
    number: str
    seq: int | None = Field(description="the leg signed (carrier)")
    status: Literal["signed", "already_signed"]
    state: str


class BulkSigned(Schema):
    results: list[BulkSignResult]
    signed: int
    already_signed: int
