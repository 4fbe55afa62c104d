"""Building batch files: the streaming shard builder, shard files on disk, the one-pass
plan-and-build, and resubmission copies of a shard.

Imports ``_plan`` and the layers under it.
"""
