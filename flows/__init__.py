"""Prefect flows: thin orchestration over `pipeline` (sync, reports, backfill)."""
