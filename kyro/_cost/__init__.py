"""Cost: the price table, per-request estimates and a job's resubmission budget.

A base-tier room: it imports only the flat base modules, so the config loader (price
overrides) and the job state (the budget it persists) may both use it.
"""
