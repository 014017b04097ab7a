"""``faust -A app replay``: command-line mistakes are usage errors, before anything starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nope"], "unknown dataset 'nope'; choose one of: agrawal,"),
        (["led"], "'led' is a Multi-class classification dataset, but"),
        (["phishing", "--limit", "0"], "Invalid value for '--limit': must be >= 1, got 0"),
        (["phishing", "--rate", "-1"], "Invalid value for '--rate': must be >= 0, got -1"),
    ],
)
def test_a_bad_replay_command_line_is_a_usage_error(args, says):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env["STREAMLEARN_BROKER"] = "kafka://127.0.0.1:1"  # never reached
    result = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "app", "replay", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert says in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
