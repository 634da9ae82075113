-- lock (PostgreSQL): serialise, until the transaction ends, every transaction that takes the same key (an account's
-- create hour or planning): what DuckDB's single writer does for the embedded ledger.
SELECT pg_advisory_xact_lock(hashtextextended($key, 0));
