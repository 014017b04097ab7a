"""A setting that cannot be built stops ``faust -A app ...`` at once: one line, exit status 2.

Before, a model or transform that could not be built surfaced only while Faust autodiscovered
the agents, which it logs as a warning and runs on without them: a worker reading nothing.
"""

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"MODEL": "bogus"}, "STREAMLEARN_MODEL='bogus': unknown River estimator"),
        (
            {"TRANSFORM": "json.nope:f"},
            "STREAMLEARN_TRANSFORM='json.nope:f': cannot import json.nope",
        ),
        (
            {"TRANSFORM": "json:nope"},
            "STREAMLEARN_TRANSFORM='json:nope': json has no function 'nope'",
        ),
        ({"PARTITIONS": "abc"}, "STREAMLEARN_PARTITIONS='abc': expected int"),
        (
            {"WEB_URL": "10.0.0.5:6066"},
            "STREAMLEARN_WEB_URL='10.0.0.5:6066': expected the URL other workers reach this one "
            "at, with http:// or https:// and a host, e.g. http://10.0.0.5:6066",
        ),
        ({"CONFIG": "/nonexistent/streamlearn.toml"}, "cannot be read (No such file"),
    ],
)
def test_a_setting_that_cannot_be_built_is_one_line_and_exit_status_2(setting, says, tmp_path):
    result = faust(["worker", "-l", "info"], setting, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("streamlearn: ") and says in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was started


def test_the_commands_stop_the_same_way():
    result = faust(["features", "in.jsonl", "--out", "out.jsonl"], {"TRANSFORM": "json:nope"}, None)
    assert result.returncode == 2
    assert (
        result.stderr
        == "streamlearn: STREAMLEARN_TRANSFORM='json:nope': json has no function 'nope'\n"
    )


def test_a_transform_may_import_streamlearns_own_modules(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"id": "e1", "key": "k", "ts": 10, "x": {"a": 1.0}}\n')
    out = tmp_path / "out.jsonl"
    setting = {"TRANSFORM": "tests.unit.transforms_app:tag"}
    result = faust(["features", str(events), "--out", str(out)], setting, tmp_path)
    assert result.returncode == 0, result.stderr
    from app.settings import Settings

    # (a string feature reaches the model one-hot: name=value)
    fingerprint = Settings().recipe.fingerprint
    assert orjson.loads(out.read_bytes())["x"][f"recipe={fingerprint}"] == 1


def test_tls_files_that_cannot_be_used_are_one_line_too(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    setting = {"SECURITY_PROTOCOL": "SSL", "SSL_CAFILE": str(not_pem)}
    result = faust(["worker"], setting, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("streamlearn: the TLS files (STREAMLEARN_SSL_CAFILE")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def faust(command: list[str], setting: dict[str, str], tmp_path: Path | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env["STREAMLEARN_BROKER"] = "kafka://127.0.0.1:1"  # never reached
    if tmp_path is not None:
        env["STREAMLEARN_DATADIR"] = str(tmp_path / "data")
    env.update({f"STREAMLEARN_{k}": v for k, v in setting.items()})
    return subprocess.run(
        [sys.executable, "-m", "faust", "-A", "app", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('model = "bogus"', "model = 'bogus': unknown River estimator"),
        ('transform = "json:nope"', "transform = 'json:nope': json has no function 'nope'"),
        ('transform = "nowhere_xyz:f"', "transform = 'nowhere_xyz:f': cannot import nowhere_xyz"),
    ],
)
def test_a_bad_setting_of_the_config_file_names_the_file_and_the_key(line, says, tmp_path):
    config = tmp_path / "streamlearn.toml"
    config.write_text(line + "\n")
    result = faust(["worker", "-l", "info"], {"CONFIG": str(config)}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"streamlearn: config file {config}: {says}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "STREAMLEARN_" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_the_environment_wins_over_the_file_and_is_named(tmp_path):
    config = tmp_path / "streamlearn.toml"
    config.write_text('model = "LogisticRegression"\n')
    result = faust(["worker"], {"CONFIG": str(config), "MODEL": "bogus"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("streamlearn: STREAMLEARN_MODEL='bogus': unknown River")


def test_a_transform_beside_the_config_file_is_imported(tmp_path):
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "rules_beside_config.py").write_text(
        "def clean(event):\n    event['x']['amount'] = min(event['x']['amount'], 5.0)\n"
        "    return event\n"
    )
    config = folder / "streamlearn.toml"
    config.write_text('transform = "rules_beside_config:clean"\nwindow_features = "none"\n')
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"id": "e1", "key": null, "ts": 10, "x": {"amount": 12.5}}\n')
    out = tmp_path / "out.jsonl"
    # run from elsewhere: neither the working directory nor PYTHONPATH holds the module
    result = faust(["features", str(events), "--out", str(out)], {"CONFIG": str(config)}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(out.read_bytes())["x"] == {"amount": 5.0}


def test_the_worker_s_start_checks_run_before_it_starts_and_a_refusal_is_one_line(capsys):
    # (the worker's only: Faust runs the other commands in mode's plain Worker)
    from types import SimpleNamespace

    from app.faust_app import StartRefused, StreamlearnWorker

    asked = []

    def unreachable() -> None:
        asked.append("registry")
        raise StartRefused("the schema registry at http://r.test cannot be reached: refused")

    def never() -> None:
        asked.append("after")

    app = SimpleNamespace(start_checks=[unreachable, never])
    with pytest.raises(SystemExit) as stopped:
        StreamlearnWorker(app)
    assert stopped.value.code == 2 and asked == ["registry"]
    err = capsys.readouterr().err
    assert err == "streamlearn: the schema registry at http://r.test cannot be reached: refused\n"
