"""The models: a spec turned into River objects (``spec``), the models of one shard and the
prequential steps they take (``shard``), their batched default metrics (``metric_batch``), which
labels they can learn (``label_rules``), the label join's rules (``join``), and the signed
checkpoint codec (``codec``, the one module here that imports faust: its codec registry); a kept
version's bytes and files (``version_file``, ``signing``); and the MLflow pyfunc wrapper MLflow
runs to load an exported version (``mlflow_pyfunc``, imported by MLflow, never by the worker)."""
