#!/usr/bin/env bash
# `make demo`: Kafka, one worker and the fraud stream at a pace a person can watch.
#   scripts/demo.sh        start (foreground; Ctrl-C stops the worker and the feed)
#   scripts/demo.sh stop   stop the broker as well
# DEMO_RATE (events/s, default 20), DEMO_LIMIT (events, default 100000), DEMO_PORT (5000).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "stop" ]]; then
    scripts/kafka.sh down
    exit 0
fi
port="${DEMO_PORT:-5000}"
if ! scripts/kafka.sh status >/dev/null 2>&1; then
    # `kafka.sh up` formats a new cluster: local table stores of an older one would not match it
    rm -rf .data/worker-*
fi
scripts/kafka.sh up 1
export STREAMLEARN_ID="${STREAMLEARN_ID:-streamlearn-demo}"
cat <<MSG

  streamlearn demo: a worker learns fraud detection from the 'fraud' stream.
    web view       http://127.0.0.1:$port/          (Faust's own pages)
    models (JSON)  http://127.0.0.1:$port/models/
    counters       http://127.0.0.1:$port/stats/
    worker log     this terminal (prefixed 'worker.1'); broker log .cache/kafka/run/broker-0/server.log
  Stop: Ctrl-C (worker and feed), then 'make demo-stop' (broker).

MSG
exec .venv/bin/honcho start -p "$port" worker feed
