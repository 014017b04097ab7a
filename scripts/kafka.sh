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
# Each broker's log: $KAFKA_HOME/run/broker-N/server.log. `up` refuses a port it cannot bind (one
# listened on, or held by a connection: keep KAFKA_PORT below the kernel's ephemeral range), and a
# broker that exits during start-up is reported with the first error line of its log. A run dir's
# cluster keeps the ports it was started on ($KAFKA_RUN/port): `up` with another KAFKA_PORT while
# it runs is refused, and `status` reports its own ports.
#
# Secured broker: KAFKA_SECURITY=sasl_ssl (default plaintext: the cluster above) makes `up` start ONE
# broker (KRaft, combined broker/controller; `up 3` is refused) with authentication and ACLs:
#   - SASL_SSL with SCRAM-SHA-512 on KAFKA_PORT (clients and the broker itself), and SSL with mutual
#     TLS on KAFKA_PORT+50 (a client certificate's CN is its user: CN=streamlearn is
#     User:streamlearn); the controller listener stays PLAINTEXT on loopback (KAFKA_PORT+100);
#   - in $KAFKA_RUN/security/: a CA (ca.pem), the broker's certificate (localhost, 127.0.0.1) and a
#     client certificate CN=streamlearn (client.pem, client-key.pem: PKCS#8), made with openssl,
#     valid 30 days, remade when one expires within a day; admin.properties (a Kafka tool's
#     --command-config as admin);
#   - SCRAM users admin (super user), streamlearn (the app) and intruder (valid, no ACL at all:
#     for tests of a refused principal); their passwords in $KAFKA_RUN/security/<user>.password,
#     made once per run dir and kept across `down`/`up` (the rest of the run dir is made afresh);
#   - ACLs for User:streamlearn (StandardAuthorizer, allow.everyone.if.no.acl.found=false):
#     KAFKA_APP_ID (default streamlearn): topics prefixed `<id>-` and groups prefixed `<id>`;
#     KAFKA_APP_TOPICS_IN (default events,labels) and KAFKA_APP_TOPICS_OUT (default
#     predictions,events-dlq,labels-dlq): those topics. KAFKA_ACL_PREFIX (e.g. it-), when set,
#     replaces all of these by every topic and group whose name starts with the prefix;
#   - $KAFKA_RUN/client.env (SASL_SSL as streamlearn) and $KAFKA_RUN/client-mtls.env (mutual TLS):
#     the STREAMLEARN_* settings that connect a worker or the replay command.
# `status`, `down`, `kill` and `start` read the mode from $KAFKA_RUN; only `up` reads KAFKA_SECURITY.
# `up` is ready once the ACLs are in (KAFKA_START_TIMEOUT applies to the port, then to the ACLs).
# Needs openssl besides Java (the key and trust stores are PEM files: no keytool needed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$root/.cache/kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
lib="$KAFKA_HOME/lib"
run="${KAFKA_RUN:-$KAFKA_HOME/run}"
KAFKA_SECURITY="${KAFKA_SECURITY:-plaintext}"
KAFKA_APP_ID="${KAFKA_APP_ID:-streamlearn}"
KAFKA_APP_TOPICS_IN="${KAFKA_APP_TOPICS_IN:-events,labels}"
KAFKA_APP_TOPICS_OUT="${KAFKA_APP_TOPICS_OUT:-predictions,events-dlq,labels-dlq}"
KAFKA_ACL_PREFIX="${KAFKA_ACL_PREFIX:-}"
SCRAM_USERS=(admin streamlearn intruder)

die() { echo "kafka.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/services.sh
source "$here/services.sh"

need_tools() { need_java_and_maven "$lib/.complete" "Kafka's jars"; }

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
ephemeral_range() { tr -s '\t ' '-' </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo "32768-60999"; }
# Every port the cluster of `up N` will bind: refused with the port named before anything starts.
check_ports() {
    local n=$1 mode=$2 i p ports=()
    [[ "$KAFKA_PORT" =~ ^[0-9]+$ ]] && ((KAFKA_PORT >= 1024 && KAFKA_PORT + 102 <= 65535)) ||
        die "KAFKA_PORT must be a port number from 1024 to 65433 (the cluster also takes +50, +100..+102), got '$KAFKA_PORT'"
    for ((i = 0; i < n; i++)); do ports+=("$(port_of "$i")" "$(ctrl_port_of "$i")"); done
    [[ "$mode" == plaintext ]] || ports+=("$(mtls_port)")
    p="$(first_port_in_use "${ports[@]}")"
    [[ -z "$p" ]] || die "port $p is in use by another process (the cluster needs ${ports[*]}):" \
        "choose another KAFKA_PORT, below the kernel's ephemeral port range $(ephemeral_range)," \
        "where outgoing connections take ports at random"
}
# Why broker N stopped during start-up: the first ERROR/FATAL line of its logs, if any.
exit_reason() { first_error "$run/broker-$1/server.log" "$run/broker-$1/stdout.log"; }
# (the secured broker answers on its mutual-TLS port too; a TCP connect is the check either way)
answers() { port_answers "$(port_of "$1")" && { ! secured || port_answers "$(mtls_port)"; }; }

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

# ---- secured broker (KAFKA_SECURITY=sasl_ssl) ----------------------------------------------------
# "$run/mode" holds sasl_ssl while the run dir is a secured broker's; a plain `up` leaves no such file.
run_mode() { cat "$run/mode" 2>/dev/null || echo plaintext; }
# "$run/port" holds the KAFKA_PORT the run dir's cluster was started on (its ports, not the caller's)
run_port() { cat "$run/port" 2>/dev/null || echo "$KAFKA_PORT"; }
secured() { [[ "$(run_mode)" == sasl_ssl ]]; }
mtls_port() { echo $((KAFKA_PORT + 50)); }
sec_dir() { echo "$run/security"; }
password() { head -n 1 "$(sec_dir)/$1.password"; }
jaas() { echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$(password "$1")\";"; }

need_openssl() {
    command -v openssl >/dev/null 2>&1 ||
        die "KAFKA_SECURITY=sasl_ssl needs openssl (certificates, passwords); install e.g. the 'openssl' package"
}

# Each user's password: made once per run dir, then kept (a restart formats the data afresh with
# the same credentials, so clients' settings stay valid).
make_passwords() (
    umask 077
    local u sec
    sec="$(sec_dir)"
    for u in "${SCRAM_USERS[@]}"; do
        [[ -s "$sec/$u.password" ]] || openssl rand -hex 16 >"$sec/$u.password" ||
            die "openssl rand failed"
    done
)

tls_valid() {
    local f sec
    sec="$(sec_dir)"
    for f in ca broker client; do
        [[ -s "$sec/$f.pem" && -s "$sec/$f-key.pem" ]] || return 1
        openssl x509 -checkend 86400 -noout -in "$sec/$f.pem" >/dev/null 2>&1 || return 1
    done
    [[ -s "$sec/broker-keystore.pem" ]]
}

# sign_leaf NAME SUBJECT EXTENSIONS...: NAME-key.pem (RSA 2048, PKCS#8) and NAME.pem signed by the CA
sign_leaf() {
    local name=$1 subj=$2
    shift 2
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name-key.pem" &&
        openssl req -new -key "$name-key.pem" -subj "$subj" -out "$name.csr" &&
        printf '%s\n' "$@" >"$name.ext" &&
        openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -set_serial "0x$(openssl rand -hex 8)" \
            -days 30 -sha256 -extfile "$name.ext" -out "$name.pem" &&
        rm -f "$name.csr" "$name.ext"
}

# A CA, the broker's certificate (host names localhost and 127.0.0.1, which aiokafka checks) and the
# client certificate CN=streamlearn; kept while valid for another day. The broker's PEM key store is
# its PKCS#8 key, certificate and the CA in one file (a `BEGIN RSA PRIVATE KEY` key is refused).
make_tls() (
    umask 077
    tls_valid && exit 0
    cd "$(sec_dir)"
    {
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca-key.pem &&
            openssl req -x509 -new -key ca-key.pem -sha256 -days 30 -subj "/CN=streamlearn local CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -out ca.pem &&
            sign_leaf broker "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1" \
                "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth,clientAuth" &&
            sign_leaf client "/CN=streamlearn" "basicConstraints=CA:FALSE" \
                "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth" &&
            cat broker-key.pem broker.pem ca.pem >broker-keystore.pem
    } >openssl.log 2>&1 || die "making the certificates failed; see $(sec_dir)/openssl.log"
    chmod 644 ca.pem broker.pem client.pem
)

# The plain broker's configuration with its listeners replaced and the security settings added.
secure_config() {
    local dir="$run/broker-0" sec
    sec="$(sec_dir)"
    chmod 600 "$dir/server.properties" # (the admin's password is in it)
    sed -i \
        -e "s|^listeners=.*|listeners=SASL_SSL://127.0.0.1:$(port_of 0),SSL://127.0.0.1:$(mtls_port),CONTROLLER://127.0.0.1:$(ctrl_port_of 0)|" \
        -e "s|^advertised.listeners=.*|advertised.listeners=SASL_SSL://127.0.0.1:$(port_of 0),SSL://127.0.0.1:$(mtls_port)|" \
        -e "s|^inter.broker.listener.name=.*|inter.broker.listener.name=SASL_SSL|" \
        -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT|" \
        "$dir/server.properties"
    cat >>"$dir/server.properties" <<PROPS
# secured (KAFKA_SECURITY=sasl_ssl): SCRAM over TLS for clients and the broker itself, mutual TLS
# on the SSL listener; the controller listener stays PLAINTEXT (its principal is User:ANONYMOUS)
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(jaas admin)
ssl.keystore.type=PEM
ssl.keystore.location=$sec/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$sec/ca.pem
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
PROPS
}

write_client_files() (
    umask 077
    local sec
    sec="$(sec_dir)"
    cat >"$sec/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(jaas admin)
ssl.truststore.type=PEM
ssl.truststore.location=$sec/ca.pem
PROPS
    cat >"$run/client.env" <<ENV
STREAMLEARN_BROKER=kafka://127.0.0.1:$(port_of 0)
STREAMLEARN_SECURITY_PROTOCOL=SASL_SSL
STREAMLEARN_SASL_MECHANISM=SCRAM-SHA-512
STREAMLEARN_SASL_USERNAME=streamlearn
STREAMLEARN_SASL_PASSWORD_FILE=$sec/streamlearn.password
STREAMLEARN_SSL_CAFILE=$sec/ca.pem
ENV
    cat >"$run/client-mtls.env" <<ENV
STREAMLEARN_BROKER=kafka://127.0.0.1:$(mtls_port)
STREAMLEARN_SECURITY_PROTOCOL=SSL
STREAMLEARN_SSL_CAFILE=$sec/ca.pem
STREAMLEARN_SSL_CERTFILE=$sec/client.pem
STREAMLEARN_SSL_KEYFILE=$sec/client-key.pem
ENV
    cat >"$run/tools-log4j.properties" <<PROPS
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
)

# acl_add LOG PATTERN-TYPE OPERATIONS RESOURCE-OPTIONS...: allow User:streamlearn, as admin over
# SASL_SSL (kafka.admin.AclCommand: one JVM of a few seconds per call, so `acl_grants` runs them
# side by side; C1 only and the serial GC cut a short-lived JVM's CPU time by ~40 %; the admin
# client waits up to its default 60 s for a busy broker; adding an existing ACL again is no error)
acl_add() {
    local log=$1 pattern=$2 ops=$3 op args=()
    shift 3
    for op in ${ops//,/ }; do args+=(--operation "$op"); done
    java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx128m \
        -cp "$lib/*" -Dlog4j.configuration="file:$run/tools-log4j.properties" kafka.admin.AclCommand \
        --bootstrap-server "127.0.0.1:$(port_of 0)" --command-config "$(sec_dir)/admin.properties" \
        --add --allow-principal User:streamlearn --resource-pattern-type "$pattern" "${args[@]}" "$@" \
        >>"$log" 2>&1
}

topic_opts() { local t; for t in ${1//,/ }; do printf -- '--topic\n%s\n' "$t"; done; }

# The grants (docs/secured-cluster-broker-notes.md has them as a table). Input topics get WRITE too:
# the replay command (client.env, as User:streamlearn) produces into them.
acl_grants() {
    local -a tin tout pids=()
    local p rc=0 logs="$run/acls"
    if [[ -n "$KAFKA_ACL_PREFIX" ]]; then
        acl_add "$logs/topics.log" prefixed Create,Describe,Read,Write,DescribeConfigs --topic "$KAFKA_ACL_PREFIX" &
        pids+=($!)
        acl_add "$logs/groups.log" prefixed Read,Describe --group "$KAFKA_ACL_PREFIX" &
        pids+=($!)
    else
        mapfile -t tin < <(topic_opts "$KAFKA_APP_TOPICS_IN")
        mapfile -t tout < <(topic_opts "$KAFKA_APP_TOPICS_OUT")
        acl_add "$logs/app-topics.log" prefixed Create,Describe,Read,Write,DescribeConfigs --topic "$KAFKA_APP_ID-" &
        pids+=($!)
        if ((${#tin[@]})); then
            acl_add "$logs/input-topics.log" literal Create,Describe,Read,Write,DescribeConfigs "${tin[@]}" &
            pids+=($!)
        fi
        if ((${#tout[@]})); then
            acl_add "$logs/output-topics.log" literal Create,Describe,Write,DescribeConfigs "${tout[@]}" &
            pids+=($!)
        fi
        acl_add "$logs/groups.log" prefixed Read,Describe --group "$KAFKA_APP_ID" &
        pids+=($!)
    fi
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return "$rc"
}

# The port opens before the broker serves authenticated requests: retry until the ACLs are in.
create_acls() {
    local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    mkdir -p "$run/acls"
    until acl_grants; do
        alive 0 || die "the broker exited during start-up$(exit_reason 0); see $run/broker-0/server.log and stdout.log"
        ((SECONDS < deadline)) || die "could not create the ACLs within ${KAFKA_START_TIMEOUT}s; see $run/acls/*.log"
        sleep 1
    done
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
            alive "$i" || die "broker $i exited during start-up$(exit_reason "$i"); see $run/broker-$i/server.log and stdout.log"
            answers "$i" || ok=0
        done
        ((ok)) && return 0
        sleep 0.5
    done
    die "brokers did not answer within ${KAFKA_START_TIMEOUT}s; see $run/broker-*/server.log"
}

secured_banner() {
    echo "kafka.sh: $1 (1 broker): SASL_SSL 127.0.0.1:$(port_of 0) ($run/client.env)," \
        "mutual TLS 127.0.0.1:$(mtls_port) ($run/client-mtls.env); log in $run/broker-0/server.log"
}

cmd_up() {
    local n="${1:-${BROKERS:-1}}" i cur mode
    [[ "$n" == 1 || "$n" == 3 ]] || die "BROKERS must be 1 or 3 (got $n)"
    mode="$(tr '[:upper:]' '[:lower:]' <<<"$KAFKA_SECURITY")"
    [[ "$mode" == plaintext || "$mode" == sasl_ssl ]] ||
        die "KAFKA_SECURITY must be plaintext or sasl_ssl (got $KAFKA_SECURITY)"
    [[ "$mode" == plaintext || "$n" == 1 ]] ||
        die "KAFKA_SECURITY=sasl_ssl runs a single broker only (asked for $n); use 'up 1' (make: BROKERS=1)"
    cur="$(cluster_size)"
    if ((cur > 0)); then
        local running=0
        for ((i = 0; i < cur; i++)); do alive "$i" && running=$((running + 1)); done
        if ((running > 0)) && [[ "$(run_mode)" != "$mode" ]]; then
            die "a $(run_mode) cluster is running from $run; run 'scripts/kafka.sh down' first"
        fi
        if ((running > 0)) && [[ "$(run_port)" != "$KAFKA_PORT" ]]; then
            die "a cluster is running from $run on port $(run_port), not KAFKA_PORT=$KAFKA_PORT;" \
                "run 'scripts/kafka.sh down' first, or give the second cluster a folder of its own (KAFKA_RUN)"
        fi
        if ((running == cur)) && ((cur == n)); then
            wait_up "$cur"
            if secured; then secured_banner "already running"; else
                echo "kafka.sh: already running ($cur broker(s), bootstrap 127.0.0.1:$KAFKA_PORT)"; fi
            return 0
        fi
        ((running > 0)) && die "a $cur-broker cluster is running; run 'scripts/kafka.sh down' first"
    fi
    need_tools
    [[ "$mode" == plaintext ]] || need_openssl
    check_ports "$n" "$mode"
    fetch_jars
    # A fresh cluster each `up`: the data of a stopped cluster belongs to a different KRaft id.
    # (A secured broker's security/ is kept: the same passwords and certificates after a restart.)
    if [[ "$mode" == plaintext ]]; then
        rm -rf "$run"; mkdir -p "$run"
    else
        mkdir -p "$run/security"; chmod 700 "$run/security"
        run="$(cd "$run" && pwd)" # (absolute: the paths go into client.env)
        find "$run" -mindepth 1 -maxdepth 1 ! -name security -exec rm -rf {} +
        echo "$mode" >"$run/mode"
        make_passwords
        make_tls
        write_client_files
    fi
    echo "$n" >"$run/brokers"
    echo "$KAFKA_PORT" >"$run/port"
    local cid scram=()
    if secured; then
        for i in "${SCRAM_USERS[@]}"; do scram+=(--add-scram "SCRAM-SHA-512=[name=$i,password=$(password "$i")]"); done
    fi
    cid="$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    for ((i = 0; i < n; i++)); do
        write_config "$i" "$n"
        if secured; then secure_config; fi
        java -cp "$lib/*" -Dlog4j.configuration="file:$run/broker-$i/log4j.properties" \
            kafka.tools.StorageTool format -t "$cid" -c "$run/broker-$i/server.properties" ${scram[@]+"${scram[@]}"} \
            >"$run/broker-$i/format.log" 2>&1 || die "formatting KRaft storage failed; see $run/broker-$i/format.log"
    done
    for ((i = 0; i < n; i++)); do start_broker "$i"; done
    wait_up "$n"
    if secured; then
        create_acls
        secured_banner "up"
        return 0
    fi
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
    KAFKA_PORT="$(run_port)" # (the ports it was started on)
    for ((i = 0; i < n; i++)); do
        alive "$i" && answers "$i" || { echo "kafka.sh: broker $i is down"; return 1; }
    done
    if secured; then secured_banner "up"; return 0; fi
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
