"""Hydra plugin shim: Hydra only instantiates launchers defined under the ``hydra_plugins`` namespace.

``conf/hydra/launcher/slurm.yaml`` targets :class:`SlurmLauncher` here; the implementation lives in
:mod:`imcompress.sweep.launcher`.
"""

from imcompress.sweep.launcher import SlurmLauncher as _ImcompressSlurmLauncher


class SlurmLauncher(_ImcompressSlurmLauncher):
    """``hydra/launcher=slurm``: see :class:`imcompress.sweep.launcher.SlurmLauncher`."""
