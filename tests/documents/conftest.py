"""The ports' harbour and the manifests' parties, reused to print their documents."""

from tests.manifests.test_manifests import parties
from tests.ports.test_ports import harbour

__all__ = ["harbour", "parties"]
