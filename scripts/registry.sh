#!/usr/bin/env bash
# Local schema registry (Apicurio Registry, Confluent-compatible API) for development and tests.
#
#   scripts/registry.sh up       start it on loopback; no-op if it runs; prints the Confluent API's URL
#   scripts/registry.sh down     stop it (SIGTERM, then wait; SIGKILL after 30 s)
#   scripts/registry.sh status   exit 0 when it runs and its Confluent API answers
#   scripts/registry.sh fetch    only fetch and unpack the registry (once)
#
# Environment: REGISTRY_PORT (HTTP port, default 8081), REGISTRY_MANAGEMENT_PORT (Quarkus's
# management port; default REGISTRY_PORT+1, off Quarkus's default 9000: 3.0.9 serves its health
# checks on the HTTP port and binds no management port, but a build that does stays off 9000), REGISTRY_HOME (cache + run dir, default .cache/registry in the repository), REGISTRY_RUN (pid
# and log of this registry, default $REGISTRY_HOME/run: another one runs a second registry beside
# the first), REGISTRY_START_TIMEOUT (seconds, default 60), REGISTRY_COMPATIBILITY (the global
# compatibility level set after start-up, default BACKWARD, Confluent's default; Apicurio's own is
# NONE), REGISTRY_DATA (unset by default: in memory; a directory: the registry keeps its data in an
# H2 file database there, $REGISTRY_DATA/registry.mv.db, so that `down` then `up` keeps every
# schema and id, as a real registry's restart does).
#
# Apicurio Registry io.apicurio:apicurio-registry-app:3.0.9 (the tar.gz:all artifact, ~109 MB,
# 360 jars) comes from Maven Central through Maven once, unpacked into $REGISTRY_HOME/app. It runs
# on Java 17 (3.3.x would need Java 21) with in-memory storage (H2): every `up` is an empty
# registry, ids start at 1; with REGISTRY_DATA, H2 in a file (apicurio.datasource.url
# jdbc:h2:file:...): `up` again has what the last one had. Its Confluent API:
# http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7.
# Log: $REGISTRY_RUN/registry.log. `up` refuses a port it cannot bind, and a registry that exits
# during start-up is reported with the first error line of its log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
REGISTRY_HOME="${REGISTRY_HOME:-$root/.cache/registry}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
REGISTRY_MANAGEMENT_PORT="${REGISTRY_MANAGEMENT_PORT:-$((REGISTRY_PORT + 1))}"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-60}"
REGISTRY_COMPATIBILITY="${REGISTRY_COMPATIBILITY:-BACKWARD}"
VERSION=3.0.9
ARTIFACT="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all"
app="$REGISTRY_HOME/app"
jar="$app/apicurio-registry-app-$VERSION-runner.jar"
run="${REGISTRY_RUN:-$REGISTRY_HOME/run}"
data="${REGISTRY_DATA:-}"
api="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"

die() { echo "registry.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/services.sh
source "$here/services.sh"

need_tools() {
    need_java_and_maven "$app/.complete" "the registry"
    command -v curl >/dev/null 2>&1 || die "curl is required (readiness checks); install e.g. the 'curl' package"
}

# Maven puts the artifact in its local repository and copies it here; it is unpacked and the
# archive removed (the unpacked folder is what runs).
fetch() {
    [[ -f "$app/.complete" ]] && return 0
    echo "registry.sh: fetching Apicurio Registry $VERSION from Maven Central into $app (once)"
    rm -rf "$app" "$REGISTRY_HOME/download"
    mkdir -p "$REGISTRY_HOME/download"
    mvn -q -B dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$REGISTRY_HOME/download" \
        >"$REGISTRY_HOME/maven.log" 2>&1 ||
        die "Maven could not fetch $ARTIFACT; see $REGISTRY_HOME/maven.log"
    mkdir -p "$app"
    tar -xzf "$REGISTRY_HOME/download/apicurio-registry-app-$VERSION-all.tar.gz" -C "$app" ||
        die "could not unpack the registry into $app"
    [[ -f "$jar" ]] || die "the unpacked registry has no $(basename "$jar")"
    rm -rf "$REGISTRY_HOME/download"
    touch "$app/.complete"
}

pid_of() { cat "$run/pid" 2>/dev/null || true; }
# (a pid file left by a registry that died may name another process by now: check it is ours)
alive() {
    local p
    p="$(pid_of)"
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-Dstreamlearn.registry.run=$run "
}
# The Confluent API answers (any HTTP status but a connection failure or a 5xx counts as no).
answers() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$api/subjects" 2>/dev/null)" || return 1
    [[ "$code" == 200 ]]
}
# Quarkus's readiness check: on the HTTP port (3.0.9 is built without the separate management
# interface), else on the management port (a build with it)
ready() {
    local port
    for port in "$REGISTRY_PORT" "$REGISTRY_MANAGEMENT_PORT"; do
        curl -s -o /dev/null --fail --max-time 2 "http://127.0.0.1:$port/health/ready" 2>/dev/null && return 0
    done
    return 1
}

check_ports() {
    local p
    for p in "$REGISTRY_PORT" "$REGISTRY_MANAGEMENT_PORT"; do
        [[ "$p" =~ ^[0-9]+$ ]] && ((p >= 1024 && p <= 65535)) ||
            die "REGISTRY_PORT and REGISTRY_MANAGEMENT_PORT must be port numbers from 1024 to 65535, got '$p'"
    done
    ((REGISTRY_PORT != REGISTRY_MANAGEMENT_PORT)) || die "REGISTRY_MANAGEMENT_PORT must differ from REGISTRY_PORT"
    p="$(first_port_in_use "$REGISTRY_PORT" "$REGISTRY_MANAGEMENT_PORT")"
    [[ -z "$p" ]] || die "port $p is in use by another process (the registry needs $REGISTRY_PORT and" \
        "$REGISTRY_MANAGEMENT_PORT): choose another REGISTRY_PORT (or REGISTRY_MANAGEMENT_PORT)"
}

exit_reason() { first_error "$run/registry.log"; }

set_compatibility() {
    local body
    body="$(curl -s --fail --max-time 10 -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        --data "{\"compatibility\": \"$REGISTRY_COMPATIBILITY\"}" "$api/config" 2>&1)" ||
        die "could not set the global compatibility to $REGISTRY_COMPATIBILITY: $body"
}

cmd_up() {
    [[ "$REGISTRY_COMPATIBILITY" =~ ^(NONE|BACKWARD|BACKWARD_TRANSITIVE|FORWARD|FORWARD_TRANSITIVE|FULL|FULL_TRANSITIVE)$ ]] ||
        die "REGISTRY_COMPATIBILITY must be NONE, BACKWARD(_TRANSITIVE), FORWARD(_TRANSITIVE) or FULL(_TRANSITIVE), got '$REGISTRY_COMPATIBILITY'"
    if alive; then
        wait_up
        echo "registry.sh: already running, $api"
        return 0
    fi
    need_tools
    check_ports
    fetch
    mkdir -p "$run"
    run="$(cd "$run" && pwd)" # (absolute: it marks the process, see alive)
    rm -f "$run/pid" "$run/registry.log"
    # in memory (Apicurio's default), or an H2 file database in $REGISTRY_DATA (absolute: the
    # registry runs in $run)
    local storage=() where="in memory"
    if [[ -n "$data" ]]; then
        mkdir -p "$data"
        data="$(cd "$data" && pwd)"
        storage=("-Dapicurio.datasource.url=jdbc:h2:file:$data/registry")
        where="data in $data"
    fi
    # (cd: Quarkus may write files into its working directory)
    (
        cd "$run"
        nohup java -Xmx512m -Xms64m -XX:+UseSerialGC \
            "-Dstreamlearn.registry.run=$run" \
            -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
            -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
            -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 "${storage[@]}" \
            -jar "$jar" >"$run/registry.log" 2>&1 &
        echo $! >"$run/pid"
    )
    wait_up
    set_compatibility
    echo "registry.sh: up, $api (compatibility $REGISTRY_COMPATIBILITY, $where); log in $run/registry.log"
}

wait_up() {
    local deadline=$((SECONDS + REGISTRY_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive || die "the registry exited during start-up$(exit_reason); see $run/registry.log"
        ready && answers && return 0
        sleep 0.3
    done
    die "the registry did not answer on $api within ${REGISTRY_START_TIMEOUT}s; see $run/registry.log"
}

cmd_down() {
    local deadline p
    if alive; then
        p="$(pid_of)"
        kill -TERM "$p"
        deadline=$((SECONDS + 30))
        while alive && ((SECONDS < deadline)); do sleep 0.1; done
        alive && kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$run/pid"
    echo "registry.sh: stopped"
}

cmd_status() {
    alive || { echo "registry.sh: not running"; return 1; }
    answers || { echo "registry.sh: running (pid $(pid_of)) but $api does not answer"; return 1; }
    echo "registry.sh: up, $api"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    fetch) need_tools; fetch ;;
    *) echo "usage: $0 up | down | status | fetch" >&2; exit 2 ;;
esac
