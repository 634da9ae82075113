-- Write a small lake table (the temp view {view}) whole, as one Parquet file at {target}.
COPY (FROM {view}) TO {target} (FORMAT parquet);
