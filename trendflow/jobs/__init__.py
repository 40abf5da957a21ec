"""Operator jobs, run with ``ray job submit -- python -m trendflow.jobs.<name>``.

Each job prints one progress line per step (the Ray dashboard's job page shows the log) and
exits non-zero on failure.
"""
