-- The fingerprint table of the state schema before migrations: schema_fingerprint and schema_migrations replace it.
DROP TABLE IF EXISTS rebates_schema;
