"""Registers (台账) per organization: incoming, outgoing, storage inventory, medical handovers."""
