"""``analog=none`` (the default) imports nothing of aihwkit-lightning."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import CONF_DIR

SCRIPT = f"""
import sys
from hydra import compose, initialize_config_dir
from imcompress.analog import hooks
from imcompress.config import register_configs
import imcompress.jobs.train
register_configs()
with initialize_config_dir(config_dir={str(CONF_DIR)!r}, version_base="1.3"):
    cfg = compose("train")
assert cfg.analog.name == "none" and not cfg.analog.enabled
assert hooks.prepare_job(cfg, None, None, ["cb"]) == ["cb"]
assert hooks.evaluate_after_test(cfg, None, None, None) == {{}}
loaded = sorted(m for m in sys.modules if m.startswith("aihwkit"))
print("LOADED", loaded)
"""


def test_default_pipeline_imports_no_aihwkit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED []" in done.stdout, done.stdout
