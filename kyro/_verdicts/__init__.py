"""From replies to verdicts: parse and vote, the result types, bounded aggregation, pipeline
roll-up, and the reply cache that answers a request from an earlier verdict.

Imports ``_config`` and the base modules.
"""
