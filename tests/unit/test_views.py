"""The web views' own pieces: the dashboard's counters as the docs list them, the page template,
and the settings' warnings (the browser and a real worker: tests/integration/test_dashboard.py)."""

import re
from pathlib import Path

import orjson
import pytest

from app import app
from app.config import Config
from app.faust_app import settings_warnings
from app.settings import DEV_SECRET, Settings
from app.web.views import (
    COUNTERS_MARK,
    DASHBOARD,
    DASHBOARD_COUNTERS,
    FAUST_INDEX,
    dashboard_page,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_list_the_counters_the_dashboard_always_shows():
    text = (ROOT / "docs" / "operations.md").read_text()
    (panel,) = re.findall(
        r"^- \*\*Dead letters and counters\*\*:(.*?)(?=^- |^#)", text, re.M | re.S
    )
    listed = re.findall(r"(?:and )?([a-z][a-z ]*?) \(`(\w+)`\)", " ".join(panel.split()))
    assert listed == [(words, key) for key, words in DASHBOARD_COUNTERS]
    assert len(listed) == 7


def test_the_page_holds_the_counters_once():
    assert COUNTERS_MARK not in DASHBOARD
    line = next(x for x in DASHBOARD.splitlines() if x.startswith(b"const COUNTERS = "))
    assert orjson.loads(line.removeprefix(b"const COUNTERS = ").rstrip(b";")) == [
        list(c) for c in DASHBOARD_COUNTERS
    ]
    with pytest.raises(ValueError, match="once"):
        dashboard_page(b"<html>no mark</html>")


def test_the_default_checkpoint_secret_is_warned_about_without_its_value():
    (warning,) = settings_warnings(Config.build(Settings(checkpoint_secret=DEV_SECRET)))
    assert warning.startswith("STREAMLEARN_CHECKPOINT_SECRET is not set")
    assert DEV_SECRET not in warning
    assert settings_warnings(Config.build(Settings(checkpoint_secret="s3cret"))) == []


def test_faust_s_own_index_is_left_out():
    # what Faust mounts at "/" without its statistics pages, and no longer in the list it applies
    # (a Faust upgrade that renames either fails here: app/web/views.py's drop_faust_index)
    assert ("", FAUST_INDEX) in type(app.web).production_blueprints
    assert FAUST_INDEX not in [bp for _, bp in app.web.blueprints._enabled]
    assert "/" in app.web.views
