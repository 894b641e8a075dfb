"""The ``--help`` page of the entry scripts: each config group's options, and every key of the
script's own config with its meaning and valid values (``conf/hydra/help/imcompress.yaml``).

A key's meaning is its comment in the script's YAML (``conf/<script>.yaml``), else the docstring
under the field of its structured schema (``PlanConfig``, ``Budget``, ...); its valid values come
from the schema's field type (an enum lists its members, a bool is true | false). Keys of a config
group (``model.*``, ``compression.*``, ...) are not listed: ``--cfg job`` prints them.
"""

from __future__ import annotations

import ast
import enum
import inspect
import io
import re
import textwrap
import tokenize
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

RESOLVER = "imcompress.config_keys"
# Config groups that are the subject of a script: their keys are listed as its own.
SUBJECT_GROUPS = {"evaluate": ("analog",)}
# `key: value  # comment` in a YAML file (no multi-line values in our configs)
_YAML_KEY = re.compile(
    r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*)(?:#\s?(?P<doc>.*))?$"
)
KEY_WIDTH = 34
LINE_WIDTH = 100


def register_help_resolver() -> None:
    """Register the ``${imcompress.config_keys:}`` resolver the help template uses."""
    OmegaConf.register_new_resolver(RESOLVER, config_keys_help, replace=True)


def config_keys_help(*, _root_: DictConfig) -> str:
    """``key=default  meaning (valid: ...)`` for every key of the script's own config."""
    hydra = _root_.hydra
    config_name = str(hydra.job.config_name)
    groups = {name.split("/")[0] for name in hydra.runtime.choices}
    docs = yaml_comments(_main_config_dir(hydra) / f"{config_name}.yaml")
    app = OmegaConf.masked_copy(_root_, [str(k) for k in _root_ if k != "hydra"])
    tree = OmegaConf.to_container(app, resolve=False)  # defaults as typed: ${...} kept
    lines: list[str] = []
    for key, value in tree.items() if isinstance(tree, dict) else ():
        if key in groups and key not in docs and key not in SUBJECT_GROUPS.get(config_name, ()):
            continue  # a group chosen by option (listed above), not set in this script's YAML
        _describe_node(app, str(key), value, docs, lines)
    return "\n".join(lines).replace("$", "$$")  # Hydra fills the page in as a string.Template


def _describe_node(
    parent: DictConfig | None, key: str, value: Any, docs: dict[str, str], lines: list[str],
    path: str = "",
) -> None:  # fmt: skip
    name = f"{path}{key}"
    schema_docs, valid = _schema_field(parent, key) if parent is not None else ("", None)
    doc = docs.get(name) or schema_docs
    if isinstance(value, dict) and value:
        if doc:
            lines.append(_format_line(name, "", doc, None))
        child = parent.get(key) if parent is not None else None
        child = child if isinstance(child, DictConfig) else None
        for sub, sub_value in value.items():
            _describe_node(child, str(sub), sub_value, docs, lines, f"{name}.")
        return
    lines.append(_format_line(name, _format_value(value), doc, valid))


def _format_value(value: Any) -> str:
    """A default as it is typed on the command line (interpolations unresolved)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    return str(value.value if isinstance(value, enum.Enum) else value)


def _format_line(name: str, value: str, doc: str, valid: list[str] | None) -> str:
    head = f"  {name}={value}" if value else f"  {name}:"
    text = doc or ""
    if valid and not all(v in text for v in valid):
        text = f"{text} (valid: {' | '.join(valid)})".strip()
    if not text:
        return head
    indent = " " * KEY_WIDTH
    body = textwrap.fill(
        text, LINE_WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )
    if len(head) >= KEY_WIDTH - 1:
        return f"{head}\n{body}"
    return head.ljust(KEY_WIDTH) + body[KEY_WIDTH:]


def _schema_field(parent: DictConfig, key: str) -> tuple[str, list[str] | None]:
    """The docstring and valid values of field ``key`` of ``parent``'s structured schema."""
    schema = OmegaConf.get_type(parent)
    if schema is None or not inspect.isclass(schema) or schema is dict:
        return "", None
    doc = attribute_docs(schema).get(key, "")
    try:
        hint = typing.get_type_hints(schema).get(key)
    except (NameError, TypeError):
        return doc, None
    return doc, _valid_values(hint)


def _valid_values(hint: Any) -> list[str] | None:
    options = typing.get_args(hint) or (hint,)
    for option in options:
        if inspect.isclass(option) and issubclass(option, enum.Enum):
            return [str(member.value) for member in option]
    return None


def attribute_docs(schema: type) -> dict[str, str]:
    """``field -> doc`` of a dataclass: the string literal below a field, else its ``#`` comment."""
    docs: dict[str, str] = {}
    for cls in reversed(schema.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(cls))
            tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError):
            continue
        comments = _line_comments(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for field, after in zip(body, [*body[1:], None], strict=True):
            if not (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)):
                continue
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[field.target.id] = " ".join(after.value.value.split())
                continue
            lines = range(field.lineno, (field.end_lineno or field.lineno) + 1)
            comment = next((comments[n] for n in lines if n in comments), "")
            if comment:
                docs[field.target.id] = comment
    return docs


def _line_comments(source: str) -> dict[int, str]:
    """``line number -> comment text`` of a piece of Python source."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


def yaml_comments(path: Path) -> dict[str, str]:
    """``dotted.key -> trailing comment`` ("" if none) of every key of a YAML file (``defaults``
    and ``hydra`` left out)."""
    if not path.is_file():
        return {}
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        match = _YAML_KEY.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        stack = [(i, k) for i, k in stack if i < indent]
        stack.append((indent, match["key"]))
        name = ".".join(k for _, k in stack)
        if stack[0][1] in ("defaults", "hydra"):
            continue
        docs[name] = (match["doc"] or "").strip()
    return docs


def _main_config_dir(hydra: DictConfig) -> Path:
    for source in hydra.runtime.config_sources:
        if source.provider == "main" and str(source.path).startswith("file://"):
            return Path(str(source.path)[len("file://") :])
    return Path("conf")
