"""Shared fixtures: faust's test app (memory store, flow control on) and one mock per output."""

from unittest.mock import AsyncMock

import pytest

from app import app as faust_app


@pytest.fixture
def app():
    # STREAMLEARN_STORE=memory:// is set by the root conftest.py before the app is imported.
    faust_app.finalize()
    faust_app.flow_control.resume()
    return faust_app


@pytest.fixture
def sent(monkeypatch):
    """Replace ``send`` of every topic the agents write with an AsyncMock, by topic name."""
    from app.kafka import topics

    mocks = {}
    for name in ("scoring", "join", "rekeyed", "events_dlq", "labels_dlq", "predictions"):
        mock = AsyncMock()
        monkeypatch.setattr(getattr(topics, name), "send", mock)
        monkeypatch.setattr(getattr(topics, name), "maybe_declare", AsyncMock())
        mocks[name] = mock
    return mocks
