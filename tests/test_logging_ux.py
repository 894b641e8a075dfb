"""What a user sees and what the loggers keep: one compressed smoke run checked from every side
(W&B table, summary and tags, final table, quiet console, pluggable loggers), W&B mode precedence,
W&B fail-fast / offline fallback without network, and a corrupt summary in a sweep table."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from imcompress.sweep.aggregate import CORRUPT_SUMMARY, job_row
from imcompress.sweep.jobs import discover_jobs
from imcompress.training.loggers import build_loggers, resolve_wandb_mode
from tests.conftest import ROOT, read_summary, run_script

# Messages that the console must no longer show (conf: imcompress/cli/warnings_filter.py, loggers.py).
HARMLESS = (
    "The anonymous setting has no effect",
    "litlogger",
    "The `srun` command is available",
    "isinstance(treespec, LeafSpec)",
)


@pytest.fixture(scope="module")
def glr_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """experiment=smoke compression=glr with the default W&B logger (offline) and an extra plain
    Lightning CSVLogger plugged in through its _target_."""
    root = tmp_path_factory.mktemp("glr")
    job = root / "job"
    result = run_script(
        "train.py",
        "experiment=smoke",
        "compression=glr",
        "pretrained=none",
        "logger=wandb",
        "+logger.plain._target_=lightning.pytorch.loggers.CSVLogger",
        f"+logger.plain.save_dir={root / 'plain'}",
        f"hydra.run.dir={job}",
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return job, result


def _inspect(run_file: Path) -> list[dict[str, Any]]:
    wandb_cli = Path(sys.executable).with_name("wandb")
    output = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(run_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_wandb_per_layer_table_is_logged_for_low_rank(glr_run: tuple[Path, Any]) -> None:
    job, _ = glr_run
    (run_dir,) = (job / "wandb").glob("offline-run-*")
    tables = list((run_dir / "files" / "media" / "table" / "hw").glob("per_layer_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    naive = table["columns"].index("cycles_naive")
    values = [row[naive] for row in table["data"]]
    assert any(isinstance(v, int) for v in values) and any(v is None for v in values)


def test_wandb_run_gets_tags_and_final_numbers(glr_run: tuple[Path, Any]) -> None:
    job, _ = glr_run
    (run_file,) = (job / "wandb").glob("offline-run-*/run-*.wandb")
    records = _inspect(run_file)
    run = next(r["run"] for r in records if r.get("type") == "run")
    assert {"model=resnet20", "method=glr", "hw=imc256", "data=synthetic"} <= set(run["tags"])
    final: dict[str, Any] = {}
    for record in records:
        if record.get("type") == "summary":
            final.update(record["summary"]["update"])
    summary = read_summary(job)
    compression = summary["compression"]
    assert final["parameters"] == summary["parameters"]["total"]
    assert final["compression/layer_ratio"] == round(compression["compression_ratio"], 2)
    model_ratio = compression["model_params_before"] / compression["model_params_after"]
    assert final["compression/model_ratio"] == round(model_ratio, 2)
    assert final["hw/sdk/speedup"] == round(summary["cost"]["sdk/speedup_vs_im2col"], 2)


def test_final_table_is_compact_and_states_the_hw_assumptions(glr_run: tuple[Path, Any]) -> None:
    job, result = glr_run
    table = result.stdout[result.stdout.index("imcompress: summary") :]
    labels = [line.split("│")[1].strip() for line in table.splitlines() if line.count("│") >= 3]
    labels = [label for label in labels if label]
    assert len(labels) == len(set(labels)), labels  # no duplicated rows
    for label in ("test/acc", "parameters", "compressed layers", "hw", "im2col", "sdk", "vwsdk"):
        assert label in labels, label
    assert not any(label.endswith("_naive") or label.startswith("hw/") for label in labels)
    summary = read_summary(job)
    ratio = summary["compression"]["compression_ratio"]
    assert f"({ratio:.2f}x smaller)" in table
    assert "imc256: 256x256 arrays, 1-bit weights in 1-bit cells" in table
    assert "9-bit ADCs" in table
    sdk = summary["cost"]["sdk/speedup_vs_im2col"]
    assert f"{sdk:.2f}x speed, " in table and "x energy vs dense im2col" in table
    same = summary["cost"]["sdk/speedup_vs_dense"]  # the reference: dense on the same mapping
    assert f"{same:.2f}x speed, " in table and "x energy vs dense sdk" in table
    assert f"sdk {summary['cost']['dense_sdk/cycles']:,.0f}" in table  # the dense model row


def test_console_is_quiet_and_no_empty_train_log(glr_run: tuple[Path, Any]) -> None:
    job, result = glr_run
    console = result.stdout + result.stderr
    for message in HARMLESS:
        assert message not in console, message
    assert "could not log the W&B table" not in console
    assert not (job / "train.log").exists()


def test_a_plain_lightning_logger_plugs_in_through_target(glr_run: tuple[Path, Any]) -> None:
    job, _ = glr_run
    written = list((job.parent / "plain").glob("lightning_logs/version_*/metrics.csv"))
    assert len(written) == 1 and "val/acc" in written[0].read_text().splitlines()[0]
    assert (job / "csv" / "metrics.csv").is_file()  # the configured CSV logger still writes


class RecordingLogger(Logger):
    """A user's own logger class: receives the job's config and folder when it asks for them."""

    def __init__(self, job_cfg: DictConfig, output_dir: Path, label: str = "") -> None:
        super().__init__()
        self.job_cfg, self.output_dir, self.label = job_cfg, output_dir, label

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> str:
        return "0"

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass


def test_custom_logger_class_gets_job_context(tmp_path: Path) -> None:
    cfg = OmegaConf.create(
        {
            "name": "x",
            "logger": {
                "mine": {"_target_": f"{__name__}.RecordingLogger", "label": "hello"},
                "off": None,
            },
        }
    )
    (logger,) = build_loggers(cfg, tmp_path)
    assert isinstance(logger, RecordingLogger)
    assert logger.label == "hello" and logger.output_dir == tmp_path and logger.job_cfg is cfg
    bad = OmegaConf.create({"logger": {"broken": {"save_dir": "x"}}})
    with pytest.raises(ValueError, match=r"logger\.broken has no _target_"):
        build_loggers(bad, tmp_path)


def test_wandb_mode_precedence() -> None:
    assert resolve_wandb_mode(None, {}) == ("offline", "default")
    assert resolve_wandb_mode(None, {"WANDB_MODE": "online"}) == ("online", "WANDB_MODE")
    assert resolve_wandb_mode(None, {"WANDB_MODE": "dryrun"}) == ("offline", "WANDB_MODE")
    assert resolve_wandb_mode("offline", {"WANDB_MODE": "online"}) == (
        "offline",
        "logger.wandb.mode",
    )
    assert resolve_wandb_mode("disabled", {}) == ("disabled", "logger.wandb.mode")
    with pytest.raises(ValueError, match=r"WANDB_MODE='onlin'; valid: \['offline', 'online'"):
        resolve_wandb_mode(None, {"WANDB_MODE": "onlin"})
    with pytest.raises(ValueError, match=r"logger.wandb.mode='x'"):
        resolve_wandb_mode("x", {})


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the probe is closed


_ONLINE_SNIPPET = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path
    from omegaconf import OmegaConf
    from imcompress.training.loggers import wandb_logger

    cfg = OmegaConf.create({"name": "t", "logger": {"wandb": {}}, "model": {"name": "m"},
                            "compression": {"method": "glr"}, "hw": {"name": "imc64"},
                            "data": {"name": "d"}})
    out = Path(sys.argv[1])
    started = time.monotonic()
    try:
        logger = wandb_logger(cfg, out / "strict", mode="online", init_timeout_s=2)
        print("UNEXPECTED: started")
    except RuntimeError as error:
        print("STRICT:", error)
    print(f"STRICT SECONDS: {time.monotonic() - started:.1f}")
    logger = wandb_logger(cfg, out / "fallback", mode="online", init_timeout_s=2,
                          offline_fallback=True)
    print("FALLBACK MODE:", logger.experiment.settings.mode)
    logger.experiment.finish()
    """
)


def test_wandb_online_without_network_fails_fast_or_falls_back(tmp_path: Path) -> None:
    for name in ("strict", "fallback"):
        (tmp_path / name).mkdir()
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    env.update(
        WANDB_API_KEY="0" * 40,
        WANDB_BASE_URL=f"http://127.0.0.1:{_closed_port()}",
        PYTHONPATH=str(ROOT / "src"),
    )
    result = subprocess.run(
        [sys.executable, "-c", _ONLINE_SNIPPET, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UNEXPECTED" not in result.stdout
    assert "STRICT: W&B could not start an online run within 2 s" in result.stdout
    assert "wandb sync" in result.stdout and "offline_fallback=true" in result.stdout
    assert "continuing OFFLINE" in result.stdout and "FALLBACK MODE: offline" in result.stdout
    assert list((tmp_path / "fallback" / "wandb").glob("offline-run-*"))
    assert (tmp_path / "fallback" / "wandb_run_id.txt").is_file()
    # Failing took less than wandb's default init timeout (90 s) alone: the short timeout held.
    seconds = float(result.stdout.split("STRICT SECONDS: ")[1].split()[0])
    assert seconds < 75, result.stdout


def test_report_names_a_corrupt_summary(tmp_path: Path) -> None:
    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (job / "summary.json").write_text('{"status": "completed", "metr')
    (row,) = [job_row(found) for found in discover_jobs(tmp_path)]
    assert row["status"] == CORRUPT_SUMMARY
    assert str(job / "summary.json") in row["error"]


def test_final_table_of_a_dense_run_has_no_duplicate_reference_row() -> None:
    import io

    from rich.console import Console

    from imcompress.runs.summary import print_final

    cost = {"dense_im2col/cycles": 100.0, "dense_im2col/energy_uj": 2.0}
    for mapping, cycles in (("im2col", 100.0), ("sdk", 40.0), ("sdk_naive", 50.0)):
        cost |= {
            f"{mapping}/cycles": cycles,
            f"{mapping}/energy_uj": cycles / 50,
            f"{mapping}/speedup_vs_im2col": 100.0 / cycles,
            f"{mapping}/energy_ratio_vs_im2col": cycles / 100.0,
        }
    summary = {
        "status": "completed",
        "metrics": {"test/acc": 0.5, "train/loss": 1.0, "lr-SGD": 0.1},
        "parameters": {"total": 1000},
        "compression": {"method": "none", "model_params_before": 1000, "model_params_after": 1000},
        "cost": cost,
        "output_dir": "/nowhere",
    }
    out = io.StringIO()
    print_final(Console(file=out, width=200), summary)
    text = out.getvalue()
    labels = [line.split("│")[1].strip() for line in text.splitlines() if line.count("│") >= 3]
    assert labels == [
        "status", "test/acc", "parameters", "im2col", "sdk", "wall time", "job dir",
    ]  # fmt: skip
    assert "2.50x speed, 0.40x energy vs dense im2col" in text
