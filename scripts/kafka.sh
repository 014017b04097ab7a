#!/usr/bin/env bash
# Local Apache Kafka (KRaft) for development, tests and the demo.
#
#   scripts/kafka.sh up [BROKERS]   start 1 (default) or 3 brokers on loopback; no-op if running
#   scripts/kafka.sh down           stop them cleanly (SIGTERM, then wait)
#   scripts/kafka.sh status         exit 0 when every broker of the cluster answers
#   scripts/kafka.sh fetch          only resolve the jars (once)
#   scripts/kafka.sh kill N         SIGKILL broker N (fault tests)
#   scripts/kafka.sh start N        start broker N again after a kill
#
# Environment: KAFKA_PORT (first broker's client port, default 9092; broker i listens on
# KAFKA_PORT+i), KAFKA_HOME (cache + data + logs, default .cache/kafka in the repository),
# KAFKA_RUN (data, logs and pids of this cluster, default $KAFKA_HOME/run: use another one to run a
# second cluster beside the first), KAFKA_START_TIMEOUT (seconds, default 60).
# Jars come from Maven Central through Maven (scripts/kafka/pom.xml) once, into $KAFKA_HOME/lib.
# Each broker's log: $KAFKA_HOME/run/broker-N/server.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$root/.cache/kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
lib="$KAFKA_HOME/lib"
run="${KAFKA_RUN:-$KAFKA_HOME/run}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_tools() {
    command -v java >/dev/null 2>&1 || die "Java 17 or newer is required (no 'java' on PATH); install e.g. openjdk-17-jre-headless"
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
    [[ "${v%%.*}" =~ ^[0-9]+$ ]] && (( ${v%%.*} >= 17 )) || die "Java 17 or newer is required; found java $v"
    if [[ ! -f "$lib/.complete" ]]; then
        command -v mvn >/dev/null 2>&1 || die "Maven is required once to fetch Kafka's jars (no 'mvn' on PATH); install e.g. the 'maven' package"
    fi
}

fetch_jars() {
    [[ -f "$lib/.complete" ]] && return 0
    echo "kafka.sh: resolving Apache Kafka from Maven Central into $lib (once)"
    mkdir -p "$lib"
    mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$lib" -DincludeScope=runtime >"$KAFKA_HOME/maven.log" 2>&1 \
        || die "Maven could not resolve Kafka's jars; see $KAFKA_HOME/maven.log"
    touch "$lib/.complete"
}

# The cluster size in use is remembered so that `status`, `down` and a second `up` agree.
cluster_size() { cat "$run/brokers" 2>/dev/null || echo 0; }
port_of() { echo $((KAFKA_PORT + $1)); }
ctrl_port_of() { echo $((KAFKA_PORT + 100 + $1)); }
pid_of() { cat "$run/broker-$1/pid" 2>/dev/null || true; }
# (a pid file left by a broker that died may name another process by now: check it is ours)
alive() {
    local p
    p="$(pid_of "$1")"
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "broker-$1/server.properties"
}
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$(port_of "$1")") 2>/dev/null; }

write_config() {
    local i=$1 n=$2
    local dir="$run/broker-$i" voters="" j rf isr
    for ((j = 0; j < n; j++)); do voters+="${voters:+,}$j@127.0.0.1:$(ctrl_port_of "$j")"; done
    if ((n >= 3)); then rf=3; isr=2; else rf=1; isr=1; fi
    mkdir -p "$dir"
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(port_of "$i"),CONTROLLER://127.0.0.1:$(ctrl_port_of "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port_of "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
group.initial.rebalance.delay.ms=0
# a killed broker is fenced (its partitions get new leaders) after 3 s instead of Kafka's 9 s
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
auto.create.topics.enable=true
log.retention.hours=-1
PROPS
    cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
PROPS
}

start_broker() {
    local i=$1
    local dir="$run/broker-$i"
    alive "$i" && return 0
    nohup java -Xmx512m -Xms128m -XX:+UseG1GC \
        -Dlog4j.configuration="file:$dir/log4j.properties" \
        -cp "$lib/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
    echo $! >"$dir/pid"
}

wait_up() {
    local n=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT)) i ok
    while ((SECONDS < deadline)); do
        ok=1
        for ((i = 0; i < n; i++)); do
            alive "$i" || die "broker $i exited during start-up; see $run/broker-$i/server.log and stdout.log"
            answers "$i" || ok=0
        done
        ((ok)) && return 0
        sleep 0.5
    done
    die "brokers did not answer within ${KAFKA_START_TIMEOUT}s; see $run/broker-*/server.log"
}

cmd_up() {
    local n="${1:-${BROKERS:-1}}" i cur
    [[ "$n" == 1 || "$n" == 3 ]] || die "BROKERS must be 1 or 3 (got $n)"
    cur="$(cluster_size)"
    if ((cur > 0)); then
        local running=0
        for ((i = 0; i < cur; i++)); do alive "$i" && running=$((running + 1)); done
        if ((running == cur)) && ((cur == n)); then
            wait_up "$cur"; echo "kafka.sh: already running ($cur broker(s), bootstrap 127.0.0.1:$KAFKA_PORT)"; return 0
        fi
        ((running > 0)) && die "a $cur-broker cluster is running; run 'scripts/kafka.sh down' first"
    fi
    need_tools
    fetch_jars
    # A fresh cluster each `up`: the data of a stopped cluster belongs to a different KRaft id.
    rm -rf "$run"; mkdir -p "$run"; echo "$n" >"$run/brokers"
    local cid
    cid="$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    for ((i = 0; i < n; i++)); do
        write_config "$i" "$n"
        java -cp "$lib/*" -Dlog4j.configuration="file:$run/broker-$i/log4j.properties" \
            kafka.tools.StorageTool format -t "$cid" -c "$run/broker-$i/server.properties" \
            >"$run/broker-$i/format.log" 2>&1 || die "formatting KRaft storage failed; see $run/broker-$i/format.log"
    done
    for ((i = 0; i < n; i++)); do start_broker "$i"; done
    wait_up "$n"
    echo "kafka.sh: $n broker(s) up, bootstrap 127.0.0.1:$KAFKA_PORT; logs in $run/broker-*/server.log"
}

cmd_down() {
    local n i p deadline
    n="$(cluster_size)"
    for ((i = 0; i < n; i++)); do alive "$i" && kill -TERM "$(pid_of "$i")"; done
    deadline=$((SECONDS + 30))
    for ((i = 0; i < n; i++)); do
        while alive "$i" && ((SECONDS < deadline)); do sleep 0.2; done
        if alive "$i"; then p="$(pid_of "$i")"; kill -KILL "$p" 2>/dev/null || true; fi
    done
    echo "kafka.sh: stopped"
}

cmd_status() {
    local n i
    n="$(cluster_size)"
    ((n > 0)) || { echo "kafka.sh: not running"; return 1; }
    for ((i = 0; i < n; i++)); do
        alive "$i" && answers "$i" || { echo "kafka.sh: broker $i is down"; return 1; }
    done
    echo "kafka.sh: $n broker(s) up, bootstrap 127.0.0.1:$KAFKA_PORT"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    fetch) need_tools; fetch_jars ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kill) alive "$2" && kill -KILL "$(pid_of "$2")"; echo "kafka.sh: broker $2 killed" ;;
    start) start_broker "$2"; echo "kafka.sh: broker $2 starting" ;;
    *) echo "usage: $0 up [1|3] | down | status | fetch | kill N | start N" >&2; exit 2 ;;
esac
