"""Fishing ports: vessels' calls, their waste delivered ashore, clean-ups and the port figures."""

MARINE_STREAM = "marine"
"""The waste stream ports handle: ship waste delivered ashore (and what clean-ups gather)."""
