"""User errors: what the entry scripts print as one line instead of a traceback.

A user error is a bad value in the config or on the command line, a missing input file, a plan
budget that cannot be reached, or layers that cannot take the chosen compression. The checks raise
:class:`ConfigError` (or a ``ValueError``/``FileNotFoundError`` of their own, see
:func:`is_user_error`); :func:`imcompress.cli.run_main` prints ``error: <message>`` and exits 1,
and ``HYDRA_FULL_ERROR=1`` shows the traceback instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

PACKAGE_DIR = Path(__file__).resolve().parent

# Hydra's message for an override of a key that is not in the config.
_UNKNOWN_KEY = re.compile(r"Could not override '(?P<key>[^']+)'")


class ConfigError(ValueError):
    """A config or command-line value that cannot work; the message names key, value and choices."""


class LayerProblem(str):
    """One layer that cannot take its settings, as a line (a ``str``) with its parts kept.

    ``message`` is the same text for every layer with the same problem, so
    :func:`group_problems` can list those layers on one line; ``valid`` are the values that would
    work for this layer (intersected over the layers of a group).
    """

    layer: str
    message: str
    valid: tuple[int, ...] | None

    def __new__(
        cls, layer: str, message: str, detail: str = "", valid: Iterable[int] | None = None
    ) -> LayerProblem:
        valid_text = f"; valid: {', '.join(map(str, valid))}" if valid is not None else ""
        where = f"{layer} ({detail})" if detail else layer
        problem = super().__new__(cls, f"{where}: {message}{valid_text}")
        problem.layer = layer
        problem.message = message
        problem.valid = tuple(valid) if valid is not None else None
        return problem


def group_problems(problems: Iterable[str]) -> list[str]:
    """One line per distinct problem, listing the layers that have it.

    :class:`LayerProblem` entries with the same ``message`` become
    ``"<message> for N layers: a, b, ... (valid: <values valid for all of them>)"``; plain strings
    ``"<layer> (<detail>): <message>"`` are grouped by message the same way, other strings are
    kept as they are (duplicates dropped).
    """
    groups: dict[str, list[LayerProblem]] = {}
    lines: list[str] = []
    for text in problems:
        problem = text if isinstance(text, LayerProblem) else _parse_problem(text)
        if isinstance(problem, LayerProblem):
            if problem.message not in groups:
                lines.append(problem.message)  # placeholder, keeps the first-seen order
            groups.setdefault(problem.message, []).append(problem)
        elif problem not in lines:
            lines.append(problem)
    return [_group_line(groups[line]) if line in groups else line for line in lines]


_PLAIN_PROBLEM = re.compile(r"^(?P<layer>[\w.\-]+)(?: \((?P<detail>[^)]*)\))?: (?P<message>.+)$")


def _parse_problem(text: str) -> LayerProblem | str:
    """``"layer1.0.conv1 (OC=16, ...): message"`` as a :class:`LayerProblem`; else ``text``."""
    match = _PLAIN_PROBLEM.match(text)
    if match is None:
        return text
    return LayerProblem(match["layer"], match["message"], match["detail"] or "")


def _group_line(group: list[LayerProblem]) -> str:
    layers = ", ".join(problem.layer for problem in group)
    count = f"{len(group)} layers:" if len(group) > 1 else "layer"
    line = f"{group[0].message} for {count} {layers}"
    valids = [set(problem.valid) for problem in group if problem.valid is not None]
    if valids:
        line += f" (valid: {', '.join(map(str, sorted(set.intersection(*valids))))})"
    return line


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a user error (one line) rather than a bug (traceback).

    User errors: :class:`ConfigError`; Hydra's composition errors (unknown key or group option,
    override syntax) and OmegaConf's type checks of a value; and a ``ValueError`` or
    ``FileNotFoundError`` raised by this package's own code (its checks), not inside a library.
    """
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )

    compose_errors = (ConfigCompositionException, MissingConfigException, OverrideParseException)
    if isinstance(error, (ConfigError, ValidationError, *compose_errors)):
        return True
    return isinstance(error, ValueError | FileNotFoundError) and _raised_here(error.__traceback__)


def _raised_here(trace: TracebackType | None) -> bool:
    """Whether the innermost frame of ``trace`` is in this package."""
    last = None
    while trace is not None:
        last, trace = trace, trace.tb_next
    if last is None:
        return False
    return Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR)


def describe_error(error: BaseException) -> str:
    """The text of a user error for the console: the message, and a did-you-mean for a typo."""
    from hydra.errors import MissingConfigException

    text = str(error).strip()
    unknown = _UNKNOWN_KEY.match(text)
    if unknown is not None:
        return _unknown_key_message(unknown["key"], error.__cause__)
    if isinstance(error, MissingConfigException) and error.options:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        choices = sorted(o for o in error.options if not o.startswith("base_"))  # schemas
        return (
            f"{group}={option} is not an option of '{group}'; choose one of: {', '.join(choices)}"
        )
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else error
    if isinstance(cause, OmegaConfBaseException):  # OmegaConf adds full_key/object_type lines
        key = getattr(cause, "full_key", None)
        first = str(cause).strip().splitlines()[0]
        return f"{key}: {first}" if key else first
    return text


def _unknown_key_message(key: str, cause: BaseException | None) -> str:
    """``grop=2`` -> "no key 'grop' in this config; did you mean group?".

    The candidates are the keys under the node where OmegaConf stopped (``cause.parent_node``,
    the root for a misspelt first component), as dotted paths from the root.
    """
    node = getattr(cause, "parent_node", None)
    full_key = str(getattr(cause, "full_key", "") or "")
    if full_key.startswith(f"{key}."):  # key=<dict> naming a key the node does not have
        inner = full_key[len(key) + 1 :]
        return (
            f"{key}: the given value names '{inner}', which {key} does not have (a mapping "
            f"only sets the keys it already has); to add it, write +{full_key}=<value>"
        )
    prefix = f"{full_key.rsplit('.', 1)[0]}." if "." in full_key else ""
    keys = []
    if isinstance(node, DictConfig):
        keys = [prefix + k for k in dotted_keys(OmegaConf.to_container(node, resolve=False))]
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
    if close:
        return f"no key '{key}' in this config; did you mean {' or '.join(close)}?"
    here = sorted(k for k in keys if "." not in k[len(prefix) :])
    return (
        f"no key '{key}' in this config (see --help); keys here: {', '.join(here)}. "
        f"To add a new key on purpose, write +{key}=..."
    )


def dotted_keys(tree: object, prefix: str = "") -> list[str]:
    """Every dotted key of a nested dict (``hydra.*`` left out)."""
    keys: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{prefix}{key}"
            if name != "hydra":
                keys.append(name)
                keys.extend(dotted_keys(value, f"{name}."))
    return keys
