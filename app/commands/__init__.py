"""The commands beside ``worker``: ``faust -A app replay`` (``replay``, with its sources
``datasets`` and the seeded ``fraud`` stream), ``faust -A app features`` (``features``) and
``faust -A app models list|export|promote|rollback`` (``models``; ``export --mlflow`` imports
``mlflow_export``, the one module here that imports MLflow, on that path only)."""
