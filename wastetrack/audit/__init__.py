"""The audit log: who changed the registry, users, licences, API keys and webhooks, and how."""
