#!/usr/bin/env bash
# `make demo`: Kafka, one worker and the fraud stream at a pace a person can watch.
#   scripts/demo.sh        start (foreground; Ctrl-C stops the worker and the feed)
#   scripts/demo.sh stop   stop the broker as well
# DEMO_RATE (events/s, default 20), DEMO_LIMIT (events, default 100000), DEMO_PORT (5000).
# Features: the worker reads docs/examples/fraud.toml, features declared for this stream (a card's
# last 30 s and its typical amount; docs/features.md); STREAMLEARN_CONFIG, if you set it, wins.
# DEMO_FEATURES=fixed runs the default features instead (count, sum, mean over 1 h windows; no
# config file is read), to compare the two:   DEMO_FEATURES=fixed make demo
# Switching while the broker runs is fine: each card's windows start again at its next event
# (counted in /stats/ as windows_reset); `make demo-stop` first to start everything afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "stop" ]]; then
    scripts/kafka.sh down
    exit 0
fi
port="${DEMO_PORT:-5000}"
features="${DEMO_FEATURES:-declared}"
if [[ -n "${STREAMLEARN_CONFIG:-}" ]]; then
    features="from $STREAMLEARN_CONFIG"
elif [[ "$features" == "declared" ]]; then
    export STREAMLEARN_CONFIG=docs/examples/fraud.toml
    features="declared in $STREAMLEARN_CONFIG"
elif [[ "$features" == "fixed" ]]; then
    export STREAMLEARN_CONFIG=/dev/null  # an empty config file: not even ./streamlearn.toml
    features="the default spec (count, sum, mean over tumbling_1h and hopping_1h)"
else
    echo "demo.sh: DEMO_FEATURES must be 'declared' (the default) or 'fixed', got '$features'" >&2
    exit 2
fi
if [[ ! -r "$STREAMLEARN_CONFIG" ]]; then
    echo "demo.sh: cannot read STREAMLEARN_CONFIG=$STREAMLEARN_CONFIG" >&2
    exit 2
fi
if ! scripts/kafka.sh status >/dev/null 2>&1; then
    # `kafka.sh up` formats a new cluster: local table stores of an older one would not match it
    rm -rf .data/worker-*
fi
scripts/kafka.sh up 1
export STREAMLEARN_ID="${STREAMLEARN_ID:-streamlearn-demo}"
cat <<MSG

  streamlearn demo: a worker learns fraud detection from the 'fraud' stream.
    features       $features
    dashboard      http://127.0.0.1:$port/dashboard/   (also at http://127.0.0.1:$port/)
    models (JSON)  http://127.0.0.1:$port/models/
    counters       http://127.0.0.1:$port/stats/
    one card       http://127.0.0.1:$port/features/card-00007/
    Prometheus     http://127.0.0.1:$port/metrics
    Faust's pages  http://127.0.0.1:$port/router/  http://127.0.0.1:$port/table/
    worker log     this terminal (prefixed 'worker.1'); broker log .cache/kafka/run/broker-0/server.log
  Stop: Ctrl-C (worker and feed), then 'make demo-stop' (broker).

MSG
exec .venv/bin/honcho start -p "$port" worker feed
