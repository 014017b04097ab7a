"""Layers run one way: the pure core imports alone, and app/ imports neither agents/ nor tables/."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "app.records",
    "app.windows",
    "app.features",
    "app.shard",
    "app.model_spec",
    "app.label_rules",
    "app.join",
    "app.settings",
    "app.figures",
]


def test_the_pure_core_imports_without_the_faust_app_the_environment_or_a_data_dir(tmp_path):
    datadir = tmp_path / "data"
    script = (
        f"import sys; import {', '.join(PURE)}\n"
        "import app.settings as s\n"
        "assert 'settings' not in vars(s), 'settings read at import'\n"
        "wiring = ('app.faust_app', 'app.topics', 'agents', 'tables')\n"
        "built = [m for m in wiring if m in sys.modules]\n"
        "assert not built, built\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env.update(STREAMLEARN_DATADIR=str(datadir), STREAMLEARN_PARTITIONS="not a number")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert not datadir.exists()


def test_app_imports_neither_agents_nor_tables():
    offenders = []
    for path in sorted((ROOT / "app").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("agents", "tables")
            ]
    assert offenders == []
