"""Test-session defaults, loaded before any module of the app (doctests included)."""

import os

# Unit tests and doctests import the app: keep its tables in memory and its state out of the tree.
os.environ.setdefault("STREAMLEARN_STORE", "memory://")
os.environ.setdefault("STREAMLEARN_DATADIR", "/tmp/streamlearn-unit-tests")
os.environ.setdefault("STREAMLEARN_CHECKPOINT_SECRET", "unit-test-secret")
# The unit tests drive the per-stage agents with Faust's test_context(); the batch engine (the
# default for workers) has its own unit tests and runs in the integration tests.
os.environ.setdefault("STREAMLEARN_ENGINE", "agents")
