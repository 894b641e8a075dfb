"""imcompress: compress CNNs (low-rank, group low-rank, pruning) for IMC crossbar accelerators.

Packages by role (docs/architecture.md): ``compression``, ``models``, ``data``, ``crossbar``
(the library: no training code); ``planner``; ``training`` and ``jobs`` (what the entry
scripts run); ``runs`` (a run folder and its records); ``sweep``; ``studies``; ``analog``;
``reporting`` (tables, figures, labels); ``cli``. Pre-move module paths named by saved run
folders stay importable (:mod:`imcompress.moved`).
"""

from imcompress import moved as _moved

_moved.install()

__version__ = "0.1.0"
