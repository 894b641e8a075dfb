"""Accuracy on non-ideal crossbar tiles with IBM's aihwkit-lightning (``analog`` config group).

Importing this package imports nothing of aihwkit-lightning: the schema is pure, and the hooks
below import the simulator only when the job's ``analog`` preset is enabled (``analog=none``,
the default, costs nothing). See docs/analog.md.
"""

from imcompress.analog.result import AnalogResult
from imcompress.analog.schema import (
    AnalogConfig,
    Calibration,
    TileSettings,
    is_enabled,
    register_analog_schema,
    resolve_settings,
)

__all__ = [
    "AnalogConfig",
    "AnalogResult",
    "Calibration",
    "TileSettings",
    "is_enabled",
    "register_analog_schema",
    "resolve_settings",
]
