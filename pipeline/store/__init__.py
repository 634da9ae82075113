"""raw/ → DuckDB: parse an archived file, load it exactly, and publish what analysts read."""
