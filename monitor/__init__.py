"""segmon: monitoring for instance-segmentation models in production.

The ``monitor`` package owns every side effect (database, files, HTTP, scheduling);
``detectors`` and ``sampling`` are pure and import without torch or a database.
Importing this package is cheap: submodules are imported where they are used.
"""

from __future__ import annotations

__version__ = "0.1.0"
