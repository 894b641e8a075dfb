"""Shared test helpers: W&B forced offline, subprocess runners for the entry scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

# No test may reach W&B's servers: offline mode, no key, quiet.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)


def run_script(
    script: str, *overrides: str, cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``src/<script>`` with Hydra overrides in ``cwd`` and capture its output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / script), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_summary(job_dir: Path) -> dict[str, Any]:
    return json.loads((job_dir / "summary.json").read_text())


@pytest.fixture
def compose() -> Iterator[Any]:
    """Compose the train config in-process: ``compose(["data=synthetic", ...])``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from imcompress.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def _compose(overrides: list[str] | None = None, config_name: str = "train") -> Any:
            return hydra_compose(
                config_name=config_name, overrides=overrides or [], return_hydra_config=True
            )

        yield _compose


@pytest.fixture(autouse=True)
def _signal_handlers_kept(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves SIGINT/SIGTERM as it found them: a handler left behind by one in-process
    job would silently change how the next test's job reacts to a signal. A test that leaks one
    fails here, naming the signal and the handler (then the handlers are restored)."""
    import signal

    watched = (signal.SIGINT, signal.SIGTERM)
    before = {signum: signal.getsignal(signum) for signum in watched}
    yield
    leaked = {}
    for signum, handler in before.items():
        now = signal.getsignal(signum)
        if now is not handler:
            leaked[signal.Signals(signum).name] = getattr(now, "__qualname__", repr(now))
            signal.signal(signum, handler)
    assert not leaked, f"{request.node.nodeid} left signal handlers installed: {leaked}"
