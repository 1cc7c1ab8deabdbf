"""Queuing Systems in Python: the code behind the course's notebooks.

Modules, one per noun: ``server`` (the course's Redis), ``client``
(connecting, with the original's messages), ``schools`` and
``schools_async`` (basic operations), ``exercises`` (self-checks). Later
lessons add their own modules beside these.
"""

__all__: list[str] = []
