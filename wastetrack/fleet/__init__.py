"""Carriers' fleets: vehicles, drivers and the GPS positions their phones report."""
