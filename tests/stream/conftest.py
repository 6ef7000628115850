"""tests/stream/ mirrors stream/: a test sits in the subfolder of the module it tests (stages/, learning/, ...),
tests of top-level modules (topics.py, broker.py, kafka.py, worker.py, ...) here.

The helper modules kept here (`ops_helpers`, `traffic_helpers`, `_continual`) are imported by name from every
subfolder: this folder goes on sys.path before any test module below it is imported. Test files have
unique basenames across tests/ (no __init__.py: pytest's default `prepend` import mode names a
module by its basename).
"""

from __future__ import annotations

import sys
from pathlib import Path

HELPERS = str(Path(__file__).resolve().parent)
if HELPERS not in sys.path:
    sys.path.insert(0, HELPERS)
