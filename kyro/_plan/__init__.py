"""Planning: transcripts × judges × runs → provider-neutral requests, and the pre-flight that
finds what a provider would reject before anything is uploaded.

Imports ``_config`` and the base modules.
"""
