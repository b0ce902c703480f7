#!/usr/bin/env bash
# The local stack without Docker: the real Apache Kafka broker (KRaft, single node, from its Maven Central
# artifacts, run with the machine's Java) and a real PostgreSQL server (Debian's package, its own cluster).
#
#   stack/stack.sh up       start what is not running yet, wait until both answer (idempotent)
#   stack/stack.sh down     stop only what `up` started
#   stack/stack.sh status   say what runs where
#
# State lives in .stack/ (git-ignored): the broker's classpath, data, log and pid file, and markers of what
# `up` started. Ports and names can be overridden from the environment (see the variables below).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="${OCPP_STACK_DIR:-$root/.stack}"

kafka_host=127.0.0.1
kafka_port="${OCPP_STACK_KAFKA_PORT:-9092}"
kafka_controller_port="${OCPP_STACK_KAFKA_CONTROLLER_PORT:-9093}"
kafka_dir="$state/kafka"
kafka_libs="$kafka_dir/libs"
kafka_pid="$kafka_dir/kafka.pid"
kafka_log="$kafka_dir/kafka.log"
kafka_wait_seconds="${OCPP_STACK_KAFKA_WAIT_SECONDS:-90}"

pg_cluster="${OCPP_STACK_PG_CLUSTER:-ocpp}"
pg_port="${OCPP_STACK_PG_PORT:-5433}"
pg_user=ocpp
pg_password=ocpp
pg_database=ocpp
pg_started_marker="$state/postgres.started"

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

kafka_bootstrap() { echo "$kafka_host:$kafka_port"; }
database_url() { echo "postgresql://$pg_user:$pg_password@127.0.0.1:$pg_port/$pg_database"; }

# ---------------------------------------------------------------------------------------------- Kafka

kafka_running() { [ -f "$kafka_pid" ] && kill -0 "$(cat "$kafka_pid")" 2>/dev/null; }
kafka_answers() { python3 "$root/stack/kafka_ready.py" "$kafka_host" "$kafka_port" "${1:-0}" 2>/dev/null; }

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

kafka_config() {
  cat >"$kafka_dir/server.properties" <<EOF
# Written by stack/stack.sh: a single-node KRaft server, broker and controller in one process.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$kafka_host:$kafka_port,CONTROLLER://$kafka_host:$kafka_controller_port
advertised.listeners=PLAINTEXT://$kafka_host:$kafka_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=$kafka_host:$kafka_controller_port
log.dirs=$kafka_dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
}

kafka_up() {
  if kafka_running; then
    say "kafka already running (pid $(cat "$kafka_pid")) on $(kafka_bootstrap)"
    kafka_answers "$kafka_wait_seconds" || kafka_fail "the running broker does not answer"
    return 0
  fi
  if kafka_answers 0; then
    say "a Kafka broker not started by this checkout already answers on $(kafka_bootstrap); using it"
    return 0
  fi
  kafka_java
  mkdir -p "$kafka_dir"
  kafka_fetch
  kafka_config
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
      >>"$kafka_dir/kafka.out" 2>&1 </dev/null &
  echo $! >"$kafka_pid"
  kafka_answers "$kafka_wait_seconds" || kafka_fail "no answer to a metadata request within ${kafka_wait_seconds}s"
  say "kafka ready on $(kafka_bootstrap)"
}

kafka_fail() {
  printf 'stack: error: kafka: %s\n--- last lines of %s ---\n' "$1" "$kafka_log" >&2
  tail -n 40 "$kafka_log" >&2 2>/dev/null || true
  tail -n 20 "$kafka_dir/kafka.out" >&2 2>/dev/null || true
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
  kill "$pid"
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$kafka_pid"; say "kafka stopped"; return 0; }
    sleep 0.5
  done
  say "kafka did not stop within 60s after SIGTERM; killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$kafka_pid"
}

# ---------------------------------------------------------------------------------------------- PostgreSQL

pg_version() {
  # The newest PostgreSQL server installed from Debian's packages.
  ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1
}

pg_install() {
  if [ -n "$(pg_version)" ] && [ -x "/usr/lib/postgresql/$(pg_version)/bin/postgres" ] && command -v pg_ctlcluster >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null \
    || die "PostgreSQL server is not installed and there is no apt-get; install PostgreSQL or set OCPP_DATABASE_URL"
  [ "$(id -u)" = 0 ] || die "PostgreSQL server is not installed; as root run: apt-get install postgresql"
  say "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
}

# From / so that the postgres user is not refused the caller's working directory (a private temp dir in CI).
pg_as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_psql() { pg_as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" "$@"; }

pg_up() {
  pg_install
  local version
  version=$(pg_version)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version $pg_cluster"; then
    say "creating PostgreSQL $version cluster '$pg_cluster' on port $pg_port"
    pg_createcluster "$version" "$pg_cluster" --port "$pg_port" >/dev/null \
      -- --auth-local=peer --auth-host=scram-sha-256
    # Room for several consumer replicas and test pools at once.
    pg_conftool "$version" "$pg_cluster" set max_connections 300
  fi
  if pg_lsclusters -h | awk -v v="$version" -v c="$pg_cluster" '$1==v && $2==c {print $4}' | grep -qx online; then
    say "postgres cluster $version/$pg_cluster already running on port $pg_port"
  else
    say "starting postgres cluster $version/$pg_cluster"
    pg_ctlcluster "$version" "$pg_cluster" start
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
  say "postgres ready: $(database_url)"
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

# ---------------------------------------------------------------------------------------------- commands

status() {
  if kafka_running; then
    say "kafka: running (pid $(cat "$kafka_pid")) on $(kafka_bootstrap), log $kafka_log"
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
}

case "${1:-}" in
  up) pg_up; kafka_up
      say "export OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap) OCPP_DATABASE_URL=$(database_url)" ;;
  down) kafka_down; pg_down ;;
  status) status ;;
  env) echo "OCPP_KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap)"; echo "OCPP_DATABASE_URL=$(database_url)" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
