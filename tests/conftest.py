"""Shared fixtures: faust's test app (memory store, flow control on) and one mock per output."""

from unittest.mock import AsyncMock

import pytest

from app import app as faust_app
from app import parts as worker_parts


@pytest.fixture
def app():
    # STREAMLEARN_STORE=memory:// is set by the root conftest.py before the app is imported.
    faust_app.finalize()
    faust_app.flow_control.resume()
    return faust_app


@pytest.fixture
def parts():
    """The parts of the test worker (app/worker.py): its agents, tables and keeper."""
    return worker_parts


@pytest.fixture
def sent(monkeypatch):
    """Replace ``send`` of every topic the agents write with an AsyncMock, by topic name."""
    topics = worker_parts.topics
    mocks = {}
    for name in ("scoring", "join", "rekeyed", "events_dlq", "labels_dlq", "predictions"):
        mock = AsyncMock()
        monkeypatch.setattr(getattr(topics, name), "send", mock)
        monkeypatch.setattr(getattr(topics, name), "maybe_declare", AsyncMock())
        mocks[name] = mock
    return mocks
