"""Hydra plugin shim: Hydra only instantiates launchers defined under the ``hydra_plugins`` namespace.

``conf/hydra/launcher/slurm.yaml`` targets :class:`SlurmLauncher` and
``conf/hydra/launcher/local.yaml`` targets :class:`LocalLauncher` here; the implementations live
in :mod:`imcompress.sweep.launcher`.
"""

from imcompress.sweep.launcher import ResumableLocalLauncher as _ImcompressLocalLauncher
from imcompress.sweep.launcher import SlurmLauncher as _ImcompressSlurmLauncher


class SlurmLauncher(_ImcompressSlurmLauncher):
    """``hydra/launcher=slurm``: see :class:`imcompress.sweep.launcher.SlurmLauncher`."""


class LocalLauncher(_ImcompressLocalLauncher):
    """``hydra/launcher=local``: see :class:`imcompress.sweep.launcher.ResumableLocalLauncher`."""
