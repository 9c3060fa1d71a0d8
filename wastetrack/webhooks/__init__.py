"""Webhooks: subscriptions to the change feed, and their deliveries to integrators."""
