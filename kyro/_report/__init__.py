"""The HTML report over a results file: the data gathered in one pass, and the page.

Imports only the base modules (the price table included).
"""
