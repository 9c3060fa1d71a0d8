"""Signed daily checkpoints of the custody log, and an event's inclusion proof
(docs/security.md, "Tamper evidence of the custody log")."""

from datetime import date

from pydantic import Field

from schemas.base import Schema


class CheckpointRead(Schema):
    day: date = Field(description="the city day sealed")
    events: int = Field(description="how many events the day's Merkle tree holds")
    root: str = Field(description="the Merkle root, hex")
    signature: str = Field(description="Ed25519 signature of the checkpoint message, hex")
    public_key: str = Field(description="the Ed25519 public key that signed it, hex")
    scheme: str = Field(description="how the message and the leaves are made")


class EventProofRead(Schema):
    event_id: str
    event_hash: str
    leaf_index: int
    tree_size: int
    path: list[str] = Field(description="the sibling hashes from the leaf to the root, hex")
    checkpoint: CheckpointRead
