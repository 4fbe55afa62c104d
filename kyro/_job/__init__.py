"""BatchJudge and its private runner: building a submit, checking, collecting downloads, and the
stages of a pipeline job. Imports the layers below; nothing below imports it.
"""
