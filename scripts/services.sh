# What scripts/kafka.sh and scripts/registry.sh share (sourced by both, after each defines `die`,
# which prefixes its own name): the tools a local Java service needs, the check of the ports it
# will bind, and the reason it stopped during start-up.

# Java 17 or newer on PATH; and Maven, when `fetched` (the marker of a completed fetch) is absent:
# it is needed once, to fetch `what` from Maven Central.
need_java_and_maven() {
    local fetched=$1 what=$2 v
    command -v java >/dev/null 2>&1 || die "Java 17 or newer is required (no 'java' on PATH); install e.g. openjdk-17-jre-headless"
    v="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
    [[ "${v%%.*}" =~ ^[0-9]+$ ]] && (( ${v%%.*} >= 17 )) || die "Java 17 or newer is required; found java $v"
    if [[ ! -f "$fetched" ]]; then
        command -v mvn >/dev/null 2>&1 || die "Maven is required once to fetch $what (no 'mvn' on PATH); install e.g. the 'maven' package"
    fi
}

port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The first of the given ports a service could not bind now: one something listens on, or one a
# connection of another process holds as its own end (which happens to ports in the kernel's
# ephemeral range). The check binds each as the services do (SO_REUSEADDR, so the closing sockets
# of one just stopped are no obstacle); without python3 it only asks whether something answers.
first_port_in_use() {
    local p
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$@" <<'PY'
import socket
import sys

for port in sys.argv[1:]:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", int(port)))
        except (OSError, OverflowError):
            print(port)
            break
PY
        (($? == 0)) || die "could not check the ports with python3"
    else
        for p in "$@"; do port_answers "$p" && { echo "$p"; break; }; done
    fi
    return 0
}

# ": <the first ERROR/FATAL/Exception line of the given logs>", or nothing: why a service stopped.
first_error() {
    local line
    line="$(grep -h -m 1 -E 'ERROR|FATAL|Exception' "$@" 2>/dev/null | head -n 1 | cut -c 1-300)"
    [[ -n "$line" ]] && echo ": $line"
    return 0
}
