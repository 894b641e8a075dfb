"""Config-store registration and the checks that run before any expensive work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from imcompress.analog.schema import register_analog_schema
from imcompress.compression import register_compression_schemas
from imcompress.crossbar.config import HardwareConfig, register_hw_schema


def register_configs() -> None:
    """Register the structured schemas that validate the ``hw``, ``compression`` and ``analog``
    groups."""
    store = ConfigStore.instance()
    register_hw_schema(store)
    register_compression_schemas(store)
    register_analog_schema(store)


def check_required(cfg: DictConfig) -> None:
    """Checks that cost nothing, run before any data or model is touched.

    Mandatory values (``???``) left unset, hardware values out of range (the ``base_hw`` schema
    catches typos and types at compose time; ranges are checked here), a ``pretrained`` file
    that is missing or required but not given.
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(
            f"required config values are not set: {', '.join(missing)}; pass them on the "
            f"command line, e.g. {missing[0]}=..."
        )
    if cfg.get("hw") is not None:
        HardwareConfig.from_cfg(cfg.hw)
    pretrained = cfg.get("pretrained")
    if cfg.get("require_pretrained") and not pretrained:
        raise ValueError(
            "this experiment fine-tunes a dense model: pass pretrained=<path to a checkpoint of a "
            "dense train.py run>, e.g. outputs/quickstart/runs/<time>/checkpoints/last.ckpt"
        )
    if pretrained and not Path(str(pretrained)).expanduser().is_file():
        raise FileNotFoundError(f"pretrained={pretrained!r}: no such checkpoint file")


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """Turn ``ckpt_path`` (null | last | auto | a path) into a checkpoint file or None.

    Refuses to start a fresh run in a folder that already holds checkpoints, so that nothing
    written by an earlier run is overwritten.
    """
    checkpoint_dir = output_dir / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    existing = sorted(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []
    if ckpt_path in (None, "", "null"):
        if existing:
            raise FileExistsError(
                f"{checkpoint_dir} already holds checkpoints ({', '.join(p.name for p in existing)}); "
                "pass ckpt_path=last (or auto) to resume that run, or use a new output folder "
                "(leave hydra.run.dir at its default)."
            )
        return None
    if ckpt_path == "auto":
        return str(last) if last.exists() else None
    if ckpt_path == "last":
        if not last.exists():
            raise FileNotFoundError(
                f"ckpt_path=last but there is no {last}. To resume a run, point hydra.run.dir at "
                "that run's folder (outputs/<name>/runs/<time>), or pass ckpt_path=<file.ckpt>."
            )
        return str(last)
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path!r}: no such checkpoint file")
    return str(path.resolve())


def config_essentials(cfg: DictConfig) -> dict[str, Any]:
    """The fields that identify a job in summaries and dashboards."""
    compression = cfg.get("compression") or {}
    return {
        "name": cfg.get("name"),
        "model": cfg.model.get("name"),
        "data": cfg.data.get("name"),
        "compression": compression.get("method", "none"),
        "hw": cfg.get("hw", {}).get("name") if cfg.get("hw") is not None else None,
        "group": cfg.get("group"),
        "rank": cfg.get("rank"),
        "sparsity": cfg.get("sparsity"),
        "seed": cfg.get("seed"),
        "max_epochs": cfg.trainer.get("max_epochs") if "trainer" in cfg else None,
        "pretrained": cfg.get("pretrained"),
    }
