"""Co-signatures: producers' one-time PIN lists and carriers' bulk signing of manifests."""

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import Id, Integer, Moment, Schema, Text, rule_error


class BulkSignItem(Schema):
    manifest_id: Id
    seq: Integer | None = Field(
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
    def _fields_of_the_role(self) -> "BulkSign":
        """A carrier says when and where it took the waste over; a producer signs its section,
        which has no leg and no place: an item naming either is refused, never signed with it
        silently dropped."""
        for index, item in enumerate(self.manifests):
            for name in ("handover_at", "handover_place"):
                if self.role == "carrier" and getattr(item, name) is None:
                    raise rule_error(
                        f"manifests[{index}].{name}",
                        f"{name} is required when a carrier signs",
                    )
            for name in ("seq", "handover_place"):
                if self.role == "producer" and getattr(item, name) is not None:
                    raise rule_error(
                        f"manifests[{index}].{name}",
                        f"{name} is a carrier's: a producer signs its section, which has none",
                    )
        return self

    @model_validator(mode="after")
    def _each_signature_once(self) -> "BulkSign":
        """An item names one signature, and a request each one once, rather than reporting
        the second signed already: a producer signs a manifest's section (its `seq` means
        nothing), so a manifest is listed once; a carrier signs a leg, and lists a manifest
        again only naming each of its legs by `seq` (one without stands for the first leg not
        yet signed, which another item may name)."""
        first: dict[int, int] = {}
        legs: dict[tuple[int, int | None], int] = {}
        for index, item in enumerate(self.manifests):
            earlier = first.setdefault(item.manifest_id, index)
            if earlier == index:
                legs[item.manifest_id, item.seq] = index
                continue
            if self.role == "carrier" and item.seq is not None and self.manifests[earlier].seq:
                earlier = legs.setdefault((item.manifest_id, item.seq), index)
                if earlier == index:
                    continue
            raise rule_error(
                f"manifests[{index}].manifest_id",
                f"the manifest is listed already as manifests[{earlier}]"
                + (": name each leg by its seq" if self.role == "carrier" else ""),
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
