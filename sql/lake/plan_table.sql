-- An empty lake_plan (lake_table, account, broker_type, day) in a cursor of its own: a parallel publish fills it with
-- the one table's rows of the plan the publishing connection made (sql/lake/plan.sql), since temp tables belong to
-- the connection that created them.
CREATE OR REPLACE TEMP TABLE lake_plan (lake_table VARCHAR, account VARCHAR, broker_type VARCHAR, day DATE);
