"""The ports' harbour (a berth, vessels and their owner), for the port tests beside
test_ports.py."""

from tests.ports.test_ports import harbour

__all__ = ["harbour"]
