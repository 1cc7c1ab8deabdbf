"""A pytest plugin for the course's own test command (``make test``), loaded
early with ``-p tools.pytest_quick_imports``: it keeps ``rfc3987_syntax`` from
being imported.

nbformat validates notebooks with jsonschema, which imports rfc3987_syntax
(when installed, as Jupyter's dependencies install it) only to check the
``iri`` string formats; rfc3987_syntax builds a parser when imported, about
2.5 CPU-seconds on this course's 2-core machine, in each of the dozen pytest
processes a run starts. No notebook schema the tests use has an ``iri``
field, and jsonschema treats the module as optional (it skips those format
checks without it), so nothing tested changes.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # None: `import` raises ImportError

# How a pytest command line loads this plugin (the tests' own pytest runs use it too).
ARGS = ("-p", "tools.pytest_quick_imports")
