"""Judges YAML → a validated :class:`~kyro.JudgesConfig`: YAML with positions, the per-judge
schema, request parameters, prompt templates, the pipeline DAG and the loader.

Imports only the base modules.
"""
