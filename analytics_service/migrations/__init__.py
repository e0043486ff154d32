"""Alembic migration environment and scripts (see `analytics_service.migrate`)."""
