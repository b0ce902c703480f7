#!/usr/bin/env bash
# The local stack without Docker: the real Apache Kafka broker (KRaft, from its Maven Central artifacts, run with
# the machine's Java) and a real PostgreSQL server (Debian's package, its own cluster).
#
#   stack/stack.sh up       start what is not running yet, wait until both answer (idempotent);
#                           with PGBOUNCER=1 also Debian's PgBouncer, transaction pooling, in front of PostgreSQL;
#                           with BROKERS=3 a three-node Kafka cluster instead of the single broker (see below)
#   stack/stack.sh down     stop only what `up` started (the single broker or every node of the cluster)
#   stack/stack.sh status   say what runs where
#   stack/stack.sh brokers  one line per broker of the stack: node id, PLAINTEXT host:port, pid (- if stopped);
#                           what the chaos run reads to stop a broker by its node id
#   stack/stack.sh env      the OCPP_* variables (NAME=value, one a line) that reach the stack in plain text;
#       env --secure        … over TLS as the least-privilege writer: SASL_SSL with SCRAM-SHA-512, and
#                           PostgreSQL with sslmode=verify-full, passwords in files
#       env --mtls          … the same with a client certificate instead of SASL (the SSL listener)
#       env --sasl-plaintext  … SCRAM-SHA-512 without TLS to Kafka (PostgreSQL as with --secure)
#       env --analyst       … the read-only analyst's database login (verify-full)
#       env --pgbouncer     … PostgreSQL through PgBouncer (transaction pooling, so no statement cache)
#
# The broker has four listeners on 127.0.0.1: PLAINTEXT on 9092 (for everything else), SASL_SSL with
# SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN on 9093 (users ocpp, ocpp_sha256 and ocpp_plain), SSL with required
# client certificates on 9094, and SASL_PLAINTEXT on 9095; its controller listens on 9098. PostgreSQL has `ssl = on` with a certificate from the
# same local CA, the group roles ocpp_writer and ocpp_reader (sql/queries/roles.sql), and one login in each
# (ocpp_app, ocpp_analyst). PgBouncer, when asked for, listens on 6432.
#
# BROKERS=3 runs a cluster instead (for `make chaos BROKERS=3`): three KRaft nodes, each broker and controller
# (a static quorum of three voters), with replication factor 3 for new topics (default.replication.factor,
# offsets and transaction state) and min.insync.replicas 2, so that any one node may be lost. Node 1 has the
# single broker's ports; node N has each of them plus (N-1) * OCPP_STACK_KAFKA_PORT_STEP (default 10): 9102-9105
# and controller 9108 for node 2, 9112-9115 and 9118 for node 3. Its state is in .stack/kafka-cluster/node-N.
# The single broker and the cluster share ports, so one runs at a time: `up` refuses to start one while the other
# runs. Without BROKERS, `up`, `env`, `status` and `brokers` follow what runs (the cluster if it does, else 1).
#
# State lives in .stack/ (git-ignored): the broker's classpath, data, log and pid file; the CA, the
# certificates and the broker's keystore (tls/); random passwords made at first start (secrets/, root only);
# markers of what `up` started. `up` restarts a broker it started only when the broker's configuration changed
# (listeners, certificates): once after an upgrade of this script, never otherwise. Ports and names can be
# overridden from the environment (see the variables below).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="${OCPP_STACK_DIR:-$root/.stack}"

kafka_host=127.0.0.1
kafka_port="${OCPP_STACK_KAFKA_PORT:-9092}"
kafka_sasl_ssl_port="${OCPP_STACK_KAFKA_SASL_SSL_PORT:-9093}"
kafka_ssl_port="${OCPP_STACK_KAFKA_SSL_PORT:-9094}"
kafka_sasl_plaintext_port="${OCPP_STACK_KAFKA_SASL_PLAINTEXT_PORT:-9095}"
kafka_controller_port="${OCPP_STACK_KAFKA_CONTROLLER_PORT:-9098}"
# One SASL user per mechanism, all with the same password, so that a client that says one mechanism and uses
# another is refused rather than let in: ocpp (SCRAM-SHA-512), ocpp_sha256 (SCRAM-SHA-256), ocpp_plain (PLAIN).
kafka_user=ocpp
kafka_user_sha256=ocpp_sha256
kafka_user_plain=ocpp_plain
kafka_dir="$state/kafka"
kafka_libs="$kafka_dir/libs"
kafka_pid="$kafka_dir/kafka.pid"
kafka_log="$kafka_dir/kafka.log"
kafka_wait_seconds="${OCPP_STACK_KAFKA_WAIT_SECONDS:-90}"
# The cluster (BROKERS=3): node N listens on each of the ports above plus (N-1) * step.
kafka_port_step="${OCPP_STACK_KAFKA_PORT_STEP:-10}"
cluster_size=3
cluster_dir="$state/kafka-cluster"

pg_cluster="${OCPP_STACK_PG_CLUSTER:-ocpp}"
pg_port="${OCPP_STACK_PG_PORT:-5433}"
pg_user=ocpp
pg_password=ocpp
pg_database=ocpp
pg_started_marker="$state/postgres.started"
pg_writer=ocpp_app  # a login in the group role ocpp_writer: what `ocpp-consumer run` connects as
pg_reader=ocpp_analyst  # a login in the group role ocpp_reader

pgbouncer_port="${OCPP_STACK_PGBOUNCER_PORT:-6432}"
pgbouncer_started_marker="$state/pgbouncer.started"

tls_dir="$state/tls"
secrets_dir="$state/secrets"

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# kafka_servers BASE: the bootstrap list of one listener (BASE its single-broker port), every node in a cluster.
kafka_servers() {
  if [ "$brokers" = 1 ]; then echo "$kafka_host:$1"; else node_addresses "$1"; fi
}
kafka_bootstrap() { kafka_servers "$kafka_port"; }  # every broker's PLAINTEXT address
database_url() { echo "postgresql://$pg_user:$pg_password@127.0.0.1:$pg_port/$pg_database"; }
# verify-full: the server's certificate must chain to the stack's CA and name the host connected to.
secure_database_url() {
  echo "postgresql://$1@127.0.0.1:$pg_port/$pg_database?sslmode=verify-full&sslrootcert=$tls_dir/ca.pem"
}

# One `up` or `down` at a time: several test runs may start the stack at once. (What `up` starts in the
# background is given `9>&-`, or it would hold the lock for as long as it runs.)
lock() {
  mkdir -p "$state"
  exec 9>"$state/.lock"
  flock 9
}

# ---------------------------------------------------------------------------------------------- secrets, TLS

# The path of a secret file, made once with random content (no trailing newline), readable by root only.
# `hostile` passwords hold every character that must be percent-encoded in a URL (/ # ? @ % :), so that each
# use of the secured stack also shows that a password is never pasted into a DSN or printed.
secret() {
  local file="$secrets_dir/$1"
  if [ ! -s "$file" ]; then
    command -v openssl >/dev/null || die "openssl is needed to make the stack's secrets: apt-get install openssl"
    mkdir -p "$secrets_dir"
    chmod 700 "$secrets_dir"
    case "$2" in
      hex) (umask 077; printf '%s' "$(openssl rand -hex 16)" >"$file.tmp") ;;
      hostile) (umask 077; printf '%s/#?@%%:%s' "$(openssl rand -hex 6)" "$(openssl rand -hex 6)" >"$file.tmp") ;;
    esac
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

# A CA; a server certificate for 127.0.0.1 and localhost (the broker's and PostgreSQL's); a client certificate
# (the broker's SSL listener requires one). Made once, with openssl; the broker reads a PKCS12 keystore.
tls_up() {
  if [ -s "$tls_dir/ca.pem" ] && [ -s "$tls_dir/server.p12" ] && [ -s "$tls_dir/client.pem" ]; then
    return 0
  fi
  command -v openssl >/dev/null || die "openssl is needed to make the stack's certificates: apt-get install openssl"
  say "making a CA, a server and a client certificate in $tls_dir"
  local password work="$tls_dir.new"
  password=$(cat "$(secret kafka-keystore-password hex)")
  rm -rf "$work"
  mkdir -p "$work"
  (
    set -e
    cd "$work"
    umask 077
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.pem \
      -subj "/CN=ocpp-state local stack CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    issue() {  # issue NAME SUBJECT EXTENSION...
      local name=$1 subject=$2
      shift 2
      openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
      printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" "$@" >"$name.ext"
      openssl x509 -req -sha256 -days 3650 -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    }
    issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth"
    issue client "/CN=ocpp-client" "extendedKeyUsage=clientAuth"
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name server -out server.p12 \
      -passout "pass:$password"
    chmod 644 ca.pem server.pem client.pem
  ) || die "openssl could not make the certificates"
  rm -rf "$tls_dir"
  mv "$work" "$tls_dir"
}

tls_fingerprint() { cat "$tls_dir/ca.pem" "$tls_dir/server.p12" | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------------------------------------- Kafka

# A broker outlives the shell that started it, so its parent is the init process; until that reaps a broker
# that was killed, kill -0 still finds it, as a zombie. A zombie does not run.
pid_alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
kafka_running() { [ -f "$kafka_pid" ] && pid_alive "$(cat "$kafka_pid")"; }
kafka_answers() { python3 "$root/stack/kafka_ready.py" "$kafka_host" "${2:-$kafka_port}" "${1:-0}" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

kafka_fetch() {
  # Resolve the broker and its runtime dependencies once; the pom pins the version.
  if [ -f "$kafka_libs/.complete" ] && [ "$kafka_libs/.complete" -nt "$root/stack/pom.xml" ]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka broker: apt-get install maven"
  say "fetching the Apache Kafka broker with mvn into $kafka_libs"
  rm -rf "$kafka_libs"
  mkdir -p "$kafka_libs"
  mvn -q -B -f "$root/stack/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$kafka_libs" >"$kafka_dir/mvn.log" 2>&1 \
    || { tail -n 30 "$kafka_dir/mvn.log" >&2; die "mvn could not resolve the Kafka broker (log: $kafka_dir/mvn.log)"; }
  touch "$kafka_libs/.complete"
}

kafka_java() {
  command -v java >/dev/null || die "Java 17 or newer is needed to run the Kafka broker: apt-get install openjdk-17-jre-headless"
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [ "${major%%.*}" -ge 17 ] 2>/dev/null || die "Java $major found, the Kafka 4 broker needs 17 or newer: apt-get install openjdk-17-jre-headless"
}

# kafka_config NODE: the server.properties of the single broker (NODE 0) or of node NODE of the cluster. The
# single broker's text must not change: `up` restarts a running broker whose configuration text changed.
kafka_config() {
  local node=$1 h=$kafka_host keystore_password scram_jaas plain_jaas title id quorum data n voters=""
  local p=$kafka_port sp=$kafka_sasl_ssl_port tp=$kafka_ssl_port pp=$kafka_sasl_plaintext_port cp=$kafka_controller_port
  keystore_password=$(cat "$(secret kafka-keystore-password hex)")
  scram_jaas="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  plain_jaas="org.apache.kafka.common.security.plain.PlainLoginModule required user_$kafka_user_plain=\"$(cat "$(secret kafka-password hex)")\";"
  if [ "$node" = 0 ]; then
    title="a single-node KRaft server, broker and controller in one process."
    id=1
    quorum="controller.quorum.bootstrap.servers=$h:$cp"
    data="$kafka_dir/data"
  else
    title="node $node of a $cluster_size-node KRaft cluster, each node broker and controller."
    id=$node
    p=$(node_port "$p" "$node") sp=$(node_port "$sp" "$node") tp=$(node_port "$tp" "$node")
    pp=$(node_port "$pp" "$node") cp=$(node_port "$cp" "$node")
    for n in $(seq 1 "$cluster_size"); do
      voters="$voters${voters:+,}$n@$h:$(node_port "$kafka_controller_port" "$n")"
    done
    quorum="controller.quorum.voters=$voters"  # static: the voters are fixed, every node formatted alike
    data="$(node_dir "$node")/data"
  fi
  cat <<EOF
# Written by stack/stack.sh: $title
# TLS material $(tls_fingerprint): new certificates change this line, and so restart the broker.
process.roles=broker,controller
node.id=$id
listeners=PLAINTEXT://$h:$p,SASL_SSL://$h:$sp,SSL://$h:$tp,SASL_PLAINTEXT://$h:$pp,CONTROLLER://$h:$cp
advertised.listeners=PLAINTEXT://$h:$p,SASL_SSL://$h:$sp,SSL://$h:$tp,SASL_PLAINTEXT://$h:$pp
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
$quorum
# SASL: the SCRAM users live in the cluster's metadata (kafka_users below); PLAIN's is listed here.
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram_jaas
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram_jaas
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain_jaas
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram_jaas
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram_jaas
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain_jaas
# TLS: the server certificate on SASL_SSL and SSL; SSL also requires a client certificate from the same CA.
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls_dir/server.p12
ssl.keystore.password=$keystore_password
ssl.key.password=$keystore_password
ssl.truststore.type=PEM
ssl.truststore.location=$tls_dir/ca.pem
listener.name.ssl.ssl.client.auth=required
log.dirs=$data
$(kafka_replication "$node")
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
}

# The single broker keeps one copy of everything. The cluster keeps three, and a write acknowledged by all
# in-sync replicas (acks=all) is on at least two: any one node may be lost without losing it.
kafka_replication() {
  local rf=1 isr=1
  if [ "$1" = 0 ]; then
    echo "num.partitions=1"
  else
    rf=$cluster_size isr=2
    printf '%s\n' "num.partitions=1" "default.replication.factor=$rf" "min.insync.replicas=$isr"
  fi
  printf '%s\n' "offsets.topic.replication.factor=$rf" "offsets.topic.num.partitions=10" \
    "transaction.state.log.replication.factor=$rf" "transaction.state.log.min.isr=$isr" \
    "share.coordinator.state.topic.replication.factor=$rf" "share.coordinator.state.topic.min.isr=$isr"
}

kafka_cluster_id() { sed -n 's/^cluster.id=//p' "${1:-$kafka_dir/data}/meta.properties" 2>/dev/null; }

# The SCRAM users of the SASL listeners, set through the plain listener once per cluster and password.
# kafka_users [BOOTSTRAP DIR DATA]: the single broker's by default; the cluster's through its node 1.
kafka_users() {
  local bootstrap=${1:-$kafka_host:$kafka_port} dir=${2:-$kafka_dir} data=${3:-$kafka_dir/data} password marker want
  password=$(cat "$(secret kafka-password hex)")
  marker="$dir/scram-users"
  want="$(kafka_cluster_id "$data") $kafka_user $kafka_user_sha256 $(printf '%s' "$password" | sha256sum | cut -c1-16)"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
    return 0
  fi
  say "kafka: setting the SCRAM credentials of users '$kafka_user' (SHA-512) and '$kafka_user_sha256' (SHA-256)"
  local user mechanism
  for user in "$kafka_user:SCRAM-SHA-512" "$kafka_user_sha256:SCRAM-SHA-256"; do
    mechanism=${user#*:}
    java -cp "$kafka_libs/*" -Xmx256m -Dlog4j2.configurationFile="$root/stack/log4j2.xml" \
        -Dkafka.logs.dir="$dir/tools" kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" \
        --alter --entity-type users --entity-name "${user%%:*}" --add-config "$mechanism=[password=$password]" \
        >"$dir/configs.log" 2>&1 \
      || kafka_fail "could not set the $mechanism credentials of ${user%%:*} (log: $dir/configs.log)"
  done
  echo "$want" >"$marker"
}

kafka_listeners_wait() {  # kafka_listeners_wait [NODE]: the single broker's secured listeners, or a node's
  local port node=${1:-1}
  for port in "$kafka_sasl_ssl_port" "$kafka_ssl_port" "$kafka_sasl_plaintext_port"; do
    port=$(node_port "$port" "$node")
    for _ in $(seq 1 60); do
      port_open "$kafka_host" "$port" && continue 2
      sleep 0.5
    done
    if [ -n "${1:-}" ]; then kafka_fail "nothing listens on $kafka_host:$port" "$(node_dir "$node")"; fi
    kafka_fail "nothing listens on $kafka_host:$port"
  done
}

kafka_up() {
  mkdir -p "$kafka_dir"
  tls_up
  kafka_config 0 >"$kafka_dir/server.properties.next"
  if kafka_running; then
    if cmp -s "$kafka_dir/server.properties.next" "$kafka_dir/server.properties"; then
      rm -f "$kafka_dir/server.properties.next"
      say "kafka already running (pid $(cat "$kafka_pid")) on $(kafka_bootstrap)"
      kafka_answers "$kafka_wait_seconds" || kafka_fail "the running broker does not answer"
      kafka_listeners_wait
      kafka_users
      return 0
    fi
    say "kafka's configuration changed (listeners or certificates): restarting the broker, once"
    kafka_down
  elif kafka_answers 0; then
    rm -f "$kafka_dir/server.properties.next"
    say "a Kafka broker not started by this checkout already answers on $(kafka_bootstrap); using it" \
        "(its secured listeners, if any, are not this stack's)"
    return 0
  fi
  kafka_java
  kafka_fetch
  mv "$kafka_dir/server.properties.next" "$kafka_dir/server.properties"
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
                   -Dkafka.logs.dir="$kafka_dir" -Dlog4j2.configurationFile="$root/stack/log4j2.xml")
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    say "formatting KRaft storage in $kafka_dir/data"
    local cluster_id
    cluster_id=$(java -cp "$kafka_libs/*" "${java_opts[@]}" kafka.tools.StorageTool random-uuid)
    java -cp "$kafka_libs/*" "${java_opts[@]}" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$kafka_dir/server.properties" --standalone >>"$kafka_log" 2>&1 \
      || kafka_fail "formatting the storage failed"
  fi
  say "starting kafka on $(kafka_bootstrap)"
  nohup java -cp "$kafka_libs/*" "${java_opts[@]}" kafka.Kafka "$kafka_dir/server.properties" \
      >>"$kafka_dir/kafka.out" 2>&1 </dev/null 9>&- &
  echo $! >"$kafka_pid"
  kafka_answers "$kafka_wait_seconds" || kafka_fail "no answer to a metadata request within ${kafka_wait_seconds}s"
  kafka_listeners_wait
  kafka_users
  say "kafka ready on $(kafka_bootstrap); SASL_SSL on $kafka_sasl_ssl_port, SSL (client certificates) on" \
      "$kafka_ssl_port, SASL_PLAINTEXT on $kafka_sasl_plaintext_port"
}

kafka_fail() {  # kafka_fail MESSAGE [DIR]: DIR is the broker's directory whose log to show (the single one's)
  local dir=${2:-$kafka_dir}
  printf 'stack: error: kafka: %s\n--- last lines of %s ---\n' "$1" "$dir/kafka.log" >&2
  tail -n 40 "$dir/kafka.log" >&2 2>/dev/null || true
  tail -n 20 "$dir/kafka.out" >&2 2>/dev/null || true
  exit 1
}

kafka_down() {
  if ! kafka_running; then
    rm -f "$kafka_pid"
    say "kafka: not started by this checkout, nothing to stop"
    return 0
  fi
  local pid
  pid=$(cat "$kafka_pid")
  say "stopping kafka (pid $pid)"
  stop_pids "$pid"
  rm -f "$kafka_pid"
  say "kafka stopped"
}

# ---------------------------------------------------------------------------------------------- Kafka cluster

node_port() { echo $(( $1 + ($2 - 1) * kafka_port_step )); }  # node_port BASE NODE: node 1 has the base ports
node_addresses() {  # node_addresses BASE: host:port of every node for one listener, comma-separated
  local n out=""
  for n in $(seq 1 "$cluster_size"); do out="$out${out:+,}$kafka_host:$(node_port "$1" "$n")"; done
  echo "$out"
}
node_dir() { echo "$cluster_dir/node-$1"; }
node_pid() { cat "$(node_dir "$1")/kafka.pid" 2>/dev/null; }
node_running() { local pid; pid=$(node_pid "$1") && [ -n "$pid" ] && pid_alive "$pid"; }
cluster_running() {
  local n
  for n in $(seq 1 "$cluster_size"); do node_running "$n" && return 0; done
  return 1
}

# Exit 0 once the broker on PORT lists every node of the cluster in its metadata: each has registered with the
# controller quorum and is unfenced, so a client of any of them sees the whole cluster.
cluster_answers() {  # cluster_answers PORT WAIT_SECONDS
  PYTHONPATH="$root/stack" python3 - "$kafka_host" "$1" "$2" "$cluster_size" <<'PY' 2>/dev/null
import sys, time
from kafka_ready import broker_count
host, port, wait, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + wait
while True:
    try:
        if broker_count(host, port) >= size:
            sys.exit(0)
    except Exception:
        pass
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.5)
PY
}

# The cluster's id: the one its nodes were formatted with, else a new one. All nodes must share it.
cluster_id() {
  local n id
  for n in $(seq 1 "$cluster_size"); do
    id=$(kafka_cluster_id "$(node_dir "$n")/data")
    if [ -n "$id" ]; then echo "$id"; return 0; fi
  done
  if [ ! -s "$cluster_dir/cluster.id" ]; then
    java -cp "$kafka_libs/*" -Xmx256m kafka.tools.StorageTool random-uuid >"$cluster_dir/cluster.id"
  fi
  cat "$cluster_dir/cluster.id"
}

node_start() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mv "$dir/server.properties.next" "$dir/server.properties"
  # Three JVMs on a small machine: a modest heap each (the single broker's is up to 1 GiB).
  local java_opts=(-Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true
                   -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$root/stack/log4j2.xml")
  if [ ! -f "$dir/data/meta.properties" ]; then
    say "formatting KRaft storage of node $n in $dir/data"
    java -cp "$kafka_libs/*" "${java_opts[@]}" kafka.tools.StorageTool format \
        -t "$(cluster_id)" -c "$dir/server.properties" >>"$dir/kafka.log" 2>&1 \
      || kafka_fail "formatting the storage of node $n failed" "$dir"
  fi
  say "starting kafka node $n on $kafka_host:$(node_port "$kafka_port" "$n")"
  nohup java -cp "$kafka_libs/*" "${java_opts[@]}" kafka.Kafka "$dir/server.properties" \
      >>"$dir/kafka.out" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/kafka.pid"
}

# Start every node that does not run (or whose configuration changed), then wait until each lists all three.
# Idempotent like kafka_up: the chaos run calls it to bring back the one node it stopped.
cluster_up() {
  mkdir -p "$cluster_dir"
  tls_up
  local n dir starting=()
  for n in $(seq 1 "$cluster_size"); do
    dir=$(node_dir "$n")
    mkdir -p "$dir"
    kafka_config "$n" >"$dir/server.properties.next"
    if node_running "$n"; then
      if cmp -s "$dir/server.properties.next" "$dir/server.properties"; then
        rm -f "$dir/server.properties.next"
        continue
      fi
      say "kafka node $n: configuration changed (listeners or certificates); restarting it, once"
      node_down "$n"
    elif kafka_answers 0 "$(node_port "$kafka_port" "$n")"; then
      die "a Kafka broker not started by this stack answers on $kafka_host:$(node_port "$kafka_port" "$n")," \
          "a port of cluster node $n: stop it, or move the cluster" \
          "(OCPP_STACK_KAFKA_*_PORT, OCPP_STACK_KAFKA_PORT_STEP)"
    fi
    starting+=("$n")
  done
  if [ ${#starting[@]} -gt 0 ]; then
    kafka_java
    kafka_fetch
    for n in "${starting[@]}"; do node_start "$n"; done
  fi
  for n in $(seq 1 "$cluster_size"); do
    cluster_answers "$(node_port "$kafka_port" "$n")" "$kafka_wait_seconds" \
      || kafka_fail "node $n does not list all $cluster_size brokers within ${kafka_wait_seconds}s" "$(node_dir "$n")"
    kafka_listeners_wait "$n"
  done
  kafka_users "$kafka_host:$kafka_port" "$cluster_dir" "$(node_dir 1)/data"
  say "kafka cluster ready: $cluster_size nodes on $(node_addresses "$kafka_port"); SASL_SSL on" \
      "$(node_addresses "$kafka_sasl_ssl_port"), SSL on $(node_addresses "$kafka_ssl_port"), SASL_PLAINTEXT on" \
      "$(node_addresses "$kafka_sasl_plaintext_port")"
}

# Stop the given pids with SIGTERM (a controlled shutdown: leadership moves first), all at once, so that the
# controller quorum is still there while each node leaves; SIGKILL whatever still runs after 60 s.
stop_pids() {
  local pid left
  kill "$@" 2>/dev/null || true
  for _ in $(seq 1 120); do
    left=()
    for pid in "$@"; do pid_alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && return 0
    sleep 0.5
  done
  say "pid(s) ${left[*]} did not stop within 60s after SIGTERM; killing them"
  kill -9 "${left[@]}" 2>/dev/null || true
}

node_down() {
  local pid
  pid=$(node_pid "$1")
  say "stopping kafka node $1 (pid $pid)"
  stop_pids "$pid"
  rm -f "$(node_dir "$1")/kafka.pid"
}

cluster_down() {
  local n pids=() nodes=()
  for n in $(seq 1 "$cluster_size"); do
    if node_running "$n"; then pids+=("$(node_pid "$n")"); nodes+=("$n"); fi
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  say "stopping kafka cluster node(s) ${nodes[*]} (pids ${pids[*]})"
  stop_pids "${pids[@]}"
  for n in "${nodes[@]}"; do rm -f "$(node_dir "$n")/kafka.pid"; done
  say "kafka cluster stopped"
}

# ---------------------------------------------------------------------------------------------- PostgreSQL

pg_version() {
  # The newest PostgreSQL server installed from Debian's packages.
  ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1
}

apt_install() {
  say "installing $1 with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$1" >/dev/null
}

pg_install() {
  if [ -n "$(pg_version)" ] && [ -x "/usr/lib/postgresql/$(pg_version)/bin/postgres" ] && command -v pg_ctlcluster >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null \
    || die "PostgreSQL server is not installed and there is no apt-get; install PostgreSQL or set OCPP_DATABASE_URL"
  [ "$(id -u)" = 0 ] || die "PostgreSQL server is not installed; as root run: apt-get install postgresql"
  apt_install postgresql
}

# From / so that the postgres user is not refused the caller's working directory (a private temp dir in CI).
pg_as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_psql() { pg_as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" "$@"; }

pg_online() { pg_lsclusters -h | awk -v v="$1" -v c="$pg_cluster" '$1==v && $2==c {print $4}' | grep -qx online; }

# ssl = on with the stack's server certificate, copied where the postgres user may read it. Prints "changed"
# when it changed anything: a running cluster then needs a reload (which keeps its connections).
pg_tls() {
  local version=$1 conf="/etc/postgresql/$1/$pg_cluster" changed=0 settings
  if ! cmp -s "$tls_dir/server.pem" "$conf/ocpp-stack-server.crt" \
      || ! cmp -s "$tls_dir/server.key" "$conf/ocpp-stack-server.key"; then
    install -o postgres -g postgres -m 0644 "$tls_dir/server.pem" "$conf/ocpp-stack-server.crt"
    install -o postgres -g postgres -m 0600 "$tls_dir/server.key" "$conf/ocpp-stack-server.key"
    changed=1
  fi
  settings=$(pg_settings "$version" <<EOF
ssl on
ssl_cert_file $conf/ocpp-stack-server.crt
ssl_key_file $conf/ocpp-stack-server.key
EOF
)
  if [ $changed = 1 ] || [ "$settings" = changed ]; then echo changed; fi
}

# pg_settings VERSION: set the cluster's settings read as "name value" lines from stdin; prints "changed" when it
# changed any (a running cluster then needs a reload or a restart, as the setting asks).
pg_settings() {
  local version=$1 changed=0 name value
  while read -r name value; do
    if [ "$(pg_conftool -s "$version" "$pg_cluster" show "$name" 2>/dev/null)" != "$value" ]; then
      pg_conftool "$version" "$pg_cluster" set "$name" "$value" >/dev/null
      changed=1
    fi
  done
  if [ $changed = 1 ]; then echo changed; fi
}

# The group roles (sql/queries/roles.sql, as `python -m consumer.roles` prints them) and a login in each, with
# random passwords. Migration 0004 grants the groups their privileges in every database it migrates.
pg_roles() {
  local writer_password reader_password
  writer_password=$(cat "$(secret postgres-writer-password hostile)")
  reader_password=$(cat "$(secret postgres-reader-password hostile)")
  awk '/^-- name: create_group_roles/ {on = 1; next} /^-- name:/ {on = 0} on' "$root/sql/queries/roles.sql" \
    | pg_psql -d postgres
  pg_psql -d postgres -v writer="$pg_writer" -v reader="$pg_reader" -v writer_password="$writer_password" \
      -v reader_password="$reader_password" <<'SQL'
SET client_min_messages = warning;
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'writer') AS make_writer,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') AS make_reader \gset
\if :make_writer
CREATE ROLE :"writer" LOGIN;
\endif
\if :make_reader
CREATE ROLE :"reader" LOGIN;
\endif
GRANT ocpp_writer TO :"writer";
GRANT ocpp_reader TO :"reader";
ALTER ROLE :"writer" PASSWORD :'writer_password';
ALTER ROLE :"reader" PASSWORD :'reader_password';
SQL
}

# Server settings for a write-heavy service, as an operator would set them (README, "Operations"): Debian's
# defaults (128 MB shared buffers, a checkpoint per 1 GB of WAL, WAL without compression) are sized for a small
# shared machine, and at a million charge points the database outgrows them: the writer evicted dirty pages
# itself and wrote a full page image after every checkpoint (BENCHMARKS.md, "Fleet scale"). Prints "changed"
# when it changed any: they take effect at the next (re)start.
pg_server_settings() {
  pg_settings "$1" <<EOF
shared_buffers 2GB
max_wal_size 8GB
checkpoint_timeout 15min
wal_compression lz4
EOF
}

pg_up() {
  pg_install
  tls_up
  local version
  version=$(pg_version)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version $pg_cluster"; then
    say "creating PostgreSQL $version cluster '$pg_cluster' on port $pg_port"
    pg_createcluster "$version" "$pg_cluster" --port "$pg_port" >/dev/null \
      -- --auth-local=peer --auth-host=scram-sha-256
    # Room for several consumer replicas and test pools at once.
    pg_conftool "$version" "$pg_cluster" set max_connections 300
  fi
  local tls tuned
  tls=$(pg_tls "$version")
  tuned=$(pg_server_settings "$version")
  if pg_online "$version"; then
    say "postgres cluster $version/$pg_cluster already running on port $pg_port"
    if [ "$tuned" = changed ]; then
      say "postgres: server settings changed (shared_buffers needs a restart); restarting"
      pg_ctlcluster "$version" "$pg_cluster" restart 9>&-
    elif [ "$tls" = changed ]; then
      say "postgres: TLS certificate or settings changed; reloading (connections stay)"
      pg_ctlcluster "$version" "$pg_cluster" reload 9>&-
    fi
  else
    say "starting postgres cluster $version/$pg_cluster"
    pg_ctlcluster "$version" "$pg_cluster" start 9>&-
    mkdir -p "$state"
    touch "$pg_started_marker"
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 0.5
  done
  pg_isready -q -h 127.0.0.1 -p "$pg_port" || die "postgres does not accept connections on port $pg_port"
  pg_psql -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$pg_user') THEN
    CREATE ROLE $pg_user LOGIN CREATEDB PASSWORD '$pg_password';
  END IF;
END
\$\$;
SQL
  if [ "$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$pg_database'")" != 1 ]; then
    pg_psql -d postgres -c "CREATE DATABASE $pg_database OWNER $pg_user"
  fi
  pg_roles
  say "postgres ready: $(database_url) (TLS on; logins $pg_writer in ocpp_writer, $pg_reader in ocpp_reader)"
}

pg_down() {
  local version
  version=$(pg_version)
  if [ -f "$pg_started_marker" ] && [ -n "$version" ]; then
    say "stopping postgres cluster $version/$pg_cluster"
    pg_ctlcluster "$version" "$pg_cluster" stop -m fast || true
    rm -f "$pg_started_marker"
  else
    say "postgres: not started by this checkout, nothing to stop"
  fi
}

# ---------------------------------------------------------------------------------------------- PgBouncer

# PgBouncer runs as the postgres user, so its files live where that user may read them whatever the
# checkout's permissions: under the postgres user's home, one directory per port.
pgbouncer_dir() { echo "$(getent passwd postgres | cut -d: -f6)/ocpp-stack/pgbouncer-$pgbouncer_port"; }
pgbouncer_running() { local pid="$(pgbouncer_dir)/pgbouncer.pid"; [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; }

pgbouncer_install() {
  [ -x /usr/sbin/pgbouncer ] && return 0
  command -v apt-get >/dev/null || die "PgBouncer is not installed and there is no apt-get; install pgbouncer"
  [ "$(id -u)" = 0 ] || die "PgBouncer is not installed; as root run: apt-get install pgbouncer"
  apt_install pgbouncer
  # Only the program is wanted: not the system service the package starts where systemd runs.
  if command -v systemctl >/dev/null && systemctl is-active --quiet pgbouncer 2>/dev/null; then
    systemctl disable --now pgbouncer >/dev/null 2>&1 || true
  fi
}

pgbouncer_config() {
  local dir=$1
  cat <<EOF
; Written by stack/stack.sh: PgBouncer in transaction pooling mode in front of the stack's PostgreSQL, as in
; front of a managed one. Any database name is passed through. Clients must not use named prepared statements
; (OCPP_DATABASE_STATEMENT_CACHE_SIZE=0); server_round_robin spreads transactions over the server connections,
; so that a client that does use them fails at once rather than by chance.
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgbouncer_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
server_round_robin = 1
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
}

pgbouncer_up() {
  pgbouncer_install
  local dir
  dir=$(pgbouncer_dir)
  mkdir -p "$dir"
  chown postgres:postgres "$dir" "$(dirname "$dir")"
  chmod 700 "$dir"
  pgbouncer_config "$dir" >"$dir/pgbouncer.ini.next"
  (umask 077; printf '"%s" "%s"\n' "$pg_user" "$pg_password" "$pg_writer" \
     "$(cat "$(secret postgres-writer-password hostile)")" >"$dir/userlist.txt.next")
  chown postgres:postgres "$dir/pgbouncer.ini.next" "$dir/userlist.txt.next"
  if pgbouncer_running; then
    if cmp -s "$dir/pgbouncer.ini.next" "$dir/pgbouncer.ini" && cmp -s "$dir/userlist.txt.next" "$dir/userlist.txt"; then
      rm -f "$dir/pgbouncer.ini.next" "$dir/userlist.txt.next"
      say "pgbouncer already running on 127.0.0.1:$pgbouncer_port"
      return 0
    fi
    mv "$dir/pgbouncer.ini.next" "$dir/pgbouncer.ini"
    mv "$dir/userlist.txt.next" "$dir/userlist.txt"
    say "pgbouncer: configuration changed; reloading"
    kill -HUP "$(cat "$dir/pgbouncer.pid")"
    return 0
  fi
  mv "$dir/pgbouncer.ini.next" "$dir/pgbouncer.ini"
  mv "$dir/userlist.txt.next" "$dir/userlist.txt"
  say "starting pgbouncer (transaction pooling) on 127.0.0.1:$pgbouncer_port in front of port $pg_port"
  pg_as_postgres /usr/sbin/pgbouncer -q -d "$dir/pgbouncer.ini" 9>&- \
    || { tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null; die "pgbouncer did not start (log: $dir/pgbouncer.log)"; }
  touch "$pgbouncer_started_marker"
  for _ in $(seq 1 40); do
    pg_isready -q -h 127.0.0.1 -p "$pgbouncer_port" && { say "pgbouncer ready on 127.0.0.1:$pgbouncer_port"; return 0; }
    sleep 0.25
  done
  die "pgbouncer does not accept connections on port $pgbouncer_port (log: $dir/pgbouncer.log)"
}

pgbouncer_down() {
  if [ -f "$pgbouncer_started_marker" ] && pgbouncer_running; then
    say "stopping pgbouncer"
    kill "$(cat "$(pgbouncer_dir)/pgbouncer.pid")" || true
  fi
  rm -f "$pgbouncer_started_marker"
}

# ---------------------------------------------------------------------------------------------- env

secured_stack_present() {
  [ -s "$tls_dir/ca.pem" ] && [ -s "$tls_dir/client.pem" ] && [ -s "$secrets_dir/kafka-password" ] \
    && [ -s "$secrets_dir/postgres-writer-password" ] && [ -s "$secrets_dir/postgres-reader-password" ] \
    || die "the stack's certificates and passwords are not made yet (in $state): run \`make up\`"
}

env_database_writer() {
  echo "OCPP_DATABASE_URL=$(secure_database_url "$pg_writer")"
  echo "OCPP_DATABASE_PASSWORD_FILE=$secrets_dir/postgres-writer-password"
}

env_kafka_sasl() {
  echo "OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_servers "$1")"
  echo "OCPP_KAFKA_SECURITY_PROTOCOL=$2"
  echo "OCPP_KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
  echo "OCPP_KAFKA_SASL_USERNAME=$kafka_user"
  echo "OCPP_KAFKA_SASL_PASSWORD_FILE=$secrets_dir/kafka-password"
}

print_env() {
  case "${1:-}" in
    "")
      echo "OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap)"
      echo "OCPP_DATABASE_URL=$(database_url)" ;;
    --secure)
      secured_stack_present
      env_kafka_sasl "$kafka_sasl_ssl_port" SASL_SSL
      echo "OCPP_KAFKA_SSL_CAFILE=$tls_dir/ca.pem"
      env_database_writer ;;
    --mtls)
      secured_stack_present
      echo "OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_servers "$kafka_ssl_port")"
      echo "OCPP_KAFKA_SECURITY_PROTOCOL=SSL"
      echo "OCPP_KAFKA_SSL_CAFILE=$tls_dir/ca.pem"
      echo "OCPP_KAFKA_SSL_CERTFILE=$tls_dir/client.pem"
      echo "OCPP_KAFKA_SSL_KEYFILE=$tls_dir/client.key"
      env_database_writer ;;
    --sasl-plaintext)
      secured_stack_present
      env_kafka_sasl "$kafka_sasl_plaintext_port" SASL_PLAINTEXT
      env_database_writer ;;
    --analyst)
      secured_stack_present
      echo "OCPP_DATABASE_URL=$(secure_database_url "$pg_reader")"
      echo "OCPP_DATABASE_PASSWORD_FILE=$secrets_dir/postgres-reader-password" ;;
    --pgbouncer)
      pg_isready -q -h 127.0.0.1 -p "$pgbouncer_port" 2>/dev/null \
        || die "no PgBouncer answers on 127.0.0.1:$pgbouncer_port: run \`make up PGBOUNCER=1\`"
      echo "OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap)"
      echo "OCPP_DATABASE_URL=postgresql://$pg_user:$pg_password@127.0.0.1:$pgbouncer_port/$pg_database"
      echo "OCPP_DATABASE_STATEMENT_CACHE_SIZE=0" ;;
    *) echo "usage: $0 env [--secure|--mtls|--sasl-plaintext|--analyst|--pgbouncer]" >&2; exit 2 ;;
  esac
}

# ---------------------------------------------------------------------------------------------- commands

status() {
  local n
  if [ "$brokers" != 1 ]; then
    for n in $(seq 1 "$cluster_size"); do
      if node_running "$n"; then
        say "kafka node $n: running (pid $(node_pid "$n")) on $kafka_host:$(node_port "$kafka_port" "$n");" \
            "SASL_SSL on $(node_port "$kafka_sasl_ssl_port" "$n"), SSL on $(node_port "$kafka_ssl_port" "$n")," \
            "SASL_PLAINTEXT on $(node_port "$kafka_sasl_plaintext_port" "$n"); log $(node_dir "$n")/kafka.log"
      else
        say "kafka node $n: not running (port $(node_port "$kafka_port" "$n"))"
      fi
    done
  elif kafka_running; then
    say "kafka: running (pid $(cat "$kafka_pid")) on $(kafka_bootstrap); SASL_SSL on $kafka_sasl_ssl_port," \
        "SSL on $kafka_ssl_port, SASL_PLAINTEXT on $kafka_sasl_plaintext_port; log $kafka_log"
  elif kafka_answers 0; then
    say "kafka: a broker not started by this checkout answers on $(kafka_bootstrap)"
  else
    say "kafka: not running"
  fi
  local version
  version=$(pg_version)
  if [ -n "$version" ] && pg_isready -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; then
    say "postgres: running, cluster $version/$pg_cluster on port $pg_port: $(database_url)"
  else
    say "postgres: not running"
  fi
  if pg_isready -q -h 127.0.0.1 -p "$pgbouncer_port" 2>/dev/null; then
    say "pgbouncer: running on 127.0.0.1:$pgbouncer_port (transaction pooling)"
  fi
}

# brokers: 1 or 3, from BROKERS; unset, what runs from this state directory (the cluster if any node does).
brokers_mode() {
  case "${BROKERS:-}" in
    "") if cluster_running; then echo "$cluster_size"; else echo 1; fi ;;
    1|"$cluster_size") echo "$BROKERS" ;;
    *) die "BROKERS=$BROKERS: the stack runs 1 broker or a cluster of $cluster_size" ;;
  esac
}

# One line per broker: node id, PLAINTEXT host:port, pid of the process this stack started (- when it is not
# running). The chaos run stops brokers by these pids, found by the node ids that metadata names.
list_brokers() {
  local n pid
  if [ "$brokers" = 1 ]; then
    if kafka_running; then pid=$(cat "$kafka_pid"); else pid=-; fi
    echo "1 $kafka_host:$kafka_port $pid"
    return 0
  fi
  for n in $(seq 1 "$cluster_size"); do
    if node_running "$n"; then pid=$(node_pid "$n"); else pid=-; fi
    echo "$n $kafka_host:$(node_port "$kafka_port" "$n") $pid"
  done
}

brokers=$(brokers_mode)

case "${1:-}" in
  up) lock
      # The single broker and node 1 of the cluster share ports: one runs at a time.
      if [ "$brokers" = 1 ] && cluster_running; then
        die "this stack's $cluster_size-node Kafka cluster runs on the single broker's ports: run \`make down\`" \
            "first, or \`make up BROKERS=$cluster_size\` to keep it"
      fi
      if [ "$brokers" != 1 ] && kafka_running; then
        die "the single broker of this stack runs (pid $(cat "$kafka_pid")) on the cluster's ports: run" \
            "\`make down\` first, then \`make up BROKERS=$cluster_size\`"
      fi
      pg_up
      if [ "$brokers" = 1 ]; then kafka_up; else cluster_up; fi
      if [ "${PGBOUNCER:-0}" = 1 ]; then pgbouncer_up; fi
      say "export OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap) OCPP_DATABASE_URL=$(database_url)"
      say "secured: \`bash stack/stack.sh env --secure\` (or --mtls, --sasl-plaintext, --analyst, --pgbouncer)" ;;
  down) lock
        pgbouncer_down
        if cluster_running; then
          cluster_down
          if kafka_running; then kafka_down; fi
        else
          kafka_down
        fi
        pg_down ;;
  status) status ;;
  brokers) list_brokers ;;
  env) print_env "${2:-}" ;;
  *) echo "usage: [BROKERS=1|3] $0 up|down|status|brokers|env" \
          "[--secure|--mtls|--sasl-plaintext|--analyst|--pgbouncer]" >&2
     exit 2 ;;
esac
