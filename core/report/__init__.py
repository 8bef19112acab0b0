"""What leaves Gapscope: ``html`` (the self-contained report) and ``exports`` (metrics as CSV and
Parquet, run configs as JSON)."""
