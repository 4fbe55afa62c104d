"""KyroJudge: the same judges run now through a live provider, with the reply cache on that path.

Imports the layers below; nothing below imports it.
"""
