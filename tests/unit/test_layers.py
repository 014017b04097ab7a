"""Layers run one way: the pure core imports alone (no faust, mode or aiokafka), app/ imports
neither agents/ nor tables/ (but the wiring, app/worker.py, which nothing imports), and tables/
does not import agents/."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from app import PURE_MODULES as PURE  # the one list
from app import PURE_ROOMS

ROOT = Path(__file__).resolve().parents[2]


def test_the_pure_core_imports_without_the_faust_app_the_environment_or_a_data_dir(tmp_path):
    datadir = tmp_path / "data"
    script = (
        f"import sys; import {', '.join(PURE)}\n"
        "import app.settings as s\n"
        "assert 'settings' not in vars(s), 'settings read at import'\n"
        "wiring = ('app.faust_app', 'app.kafka.topics', 'agents', 'tables')\n"
        "wiring += ('faust', 'mode', 'aiokafka')\n"
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


def imported(path: Path) -> list[str]:
    """The modules ``path`` imports."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def imports_of(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of ``forbidden`` top-level packages in the modules of ``folder``."""
    return [
        f"{path.name}: {n}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n in imported(path)
        if n.split(".")[0] in forbidden
    ]


def test_app_imports_neither_agents_nor_tables_but_the_wiring():
    """app/worker.py assembles the worker (it imports every layer); nothing imports it but the
    package's ``app.app`` (app/__init__.py)."""
    assert [
        i for i in imports_of("app", ("agents", "tables")) if i.split(":")[0] != "worker.py"
    ] == []
    users = [
        f"{path.relative_to(ROOT)}"
        for folder in ("app", "agents", "tables")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "app.worker" in imported(path) and path != ROOT / "app" / "__init__.py"
    ]
    assert users == []


def test_tables_do_not_import_agents():
    assert imports_of("tables", ("agents",)) == []


def test_the_pure_modules_name_neither_faust_mode_nor_aiokafka():
    offenders = [
        f"{module}: {n}"
        for module in PURE
        for n in imported(ROOT / (module.replace(".", "/") + ".py"))
        if n.split(".")[0] in ("faust", "mode", "aiokafka")
    ]
    assert offenders == []


def test_every_module_of_a_pure_room_is_in_the_one_list():
    rooms = [ROOT / room.replace(".", "/") for room in PURE_ROOMS]
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for room in rooms
        for path in room.glob("*.py")
        if path.name != "__init__.py"
    }
    assert modules and modules - set(PURE) == set()


def test_app_keeps_its_modules_in_rooms():
    """A new module goes into the room of its concern (app/__init__.py lists them); only the
    settings, the step, compat and the wiring sit at the top."""
    top = {p.name for p in (ROOT / "app").glob("*.py")}
    allowed = {"__init__.py", "settings.py", "config.py", "step.py", "compat.py"}
    allowed |= {"faust_app.py", "worker.py"}
    assert top - allowed == set()


#: the private names of faust, mode, aiokafka and river that app/compat.py wraps
LIBRARIES = ("faust", "mode", "aiokafka", "river")
COMPAT_NAMES = (
    "_consumer_record",
    "_key_deserializer",
    "_builder",
    "_relative_offset",
    "_client",
    "_enabled",
    "_gap",
    "_unacked_messages",
    "_encode_key",
    "_encode_value",
    "_decode_key",
    "_decode_value",
    "_db_for_partition",
    "_current_event",
    "_multiclass",
)


def outside_compat() -> list[Path]:
    """The modules of app/, agents/ and tables/ but app/compat.py."""
    paths = [p for folder in ("app", "agents", "tables") for p in (ROOT / folder).rglob("*.py")]
    return sorted(p for p in paths if p != ROOT / "app" / "compat.py")


def private_name(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def test_the_library_internals_app_compat_wraps_appear_nowhere_else():
    known = re.compile(r"\b(" + "|".join(COMPAT_NAMES) + r")\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in outside_compat()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if known.search(line)
    ]
    assert offenders == [], "a library's private name: use (or add) a function of app/compat.py"


def test_no_other_module_imports_or_reads_a_private_name():
    """A library's private name imported, read by ``getattr`` and the like, or read as another
    object's attribute (nothing of ours is read so: a private attribute of an object not
    ``self`` or ``cls`` is a library's)."""
    offenders = []
    for path in outside_compat():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                names = parts[1:] + [alias.name for alias in node.names]
                private = parts[0] in LIBRARIES and any(private_name(n) for n in names)
            elif isinstance(node, ast.Import):
                private = any(
                    n.name.split(".")[0] in LIBRARIES
                    and any(private_name(p) for p in n.name.split("."))
                    for n in node.names
                )
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                private = private_name(str(node.args[1].value))
            elif isinstance(node, ast.Attribute):
                private = private_name(node.attr) and not (
                    isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
                )
            else:
                continue
            if private:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == [], "a private name: use (or add) a function of app/compat.py"


def test_app_compat_imports_no_library_and_builds_nothing():
    script = (
        "import sys, app.compat\n"
        "loaded = ('faust', 'mode', 'aiokafka', 'river', 'app.faust_app', 'agents', 'tables')\n"
        "loaded = [m for m in loaded if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_built_worker_imports_no_mlflow(tmp_path):
    """MLflow is for ``faust -A app models export --mlflow`` only (app/commands/mlflow_export.py):
    building the worker (the models command included), then importing every other module of
    app/, agents/ and tables/ but app/models/mlflow_pyfunc.py, leaves it (and pandas, which its
    pyfunc needs) unimported, so a worker runs without them."""
    script = (
        "import sys, pkgutil, importlib, app, agents, tables\n"
        "from app.settings import Settings\n"
        "from app.worker import build\n"
        "worker = build(Settings.from_env())\n"
        "skip = {'app.commands.mlflow_export', 'app.models.mlflow_pyfunc'}\n"
        "for package in (app, agents, tables):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if info.name not in skip:\n"
        "            importlib.import_module(info.name)\n"
        "import app.commands.models\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'pandas'))\n"
        "assert loaded == [], loaded[:5]\n"
        "print(len([m for m in sys.modules if m.startswith(('app.', 'agents.', 'tables.'))]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env.update(STREAMLEARN_DATADIR=str(tmp_path / "data"), STREAMLEARN_STORE="memory://")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 50  # (every module was imported)
