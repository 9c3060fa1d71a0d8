"""The ports' harbour (a berth, vessels and their owner), reused for plates and receipts."""

from tests.ports.test_ports import harbour

__all__ = ["harbour"]
