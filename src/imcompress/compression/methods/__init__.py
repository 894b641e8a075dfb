"""The compression methods, one module each; importing this package registers them all.

Every module in this folder is imported here (no list to keep up to date), so a new method is
one module with a :func:`~imcompress.compression.registry.register_method` class plus its YAML
in ``conf/compression/``.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
