"""API keys: scoped, revocable credentials for machines, each acting as a service user."""
