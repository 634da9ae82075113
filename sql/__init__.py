"""SQL shipped as package data: `schema/` (tables), `views/` (what analysts query), `reports/` (what reports print)."""
