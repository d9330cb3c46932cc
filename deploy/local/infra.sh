#!/usr/bin/env bash
# Local infrastructure without Docker: a real Apache Kafka broker (single-node KRaft, jars from
# Maven Central) and the database (MONGO_URL if set, else mongod on the PATH, else FerretDB v1.24.2
# built from the Go module proxy, on a private PostgreSQL cluster of its own: Debian's postgresql
# package, initdb into var/pg, port PG_PORT, unix socket in var/pg-run).
#
#   deploy/local/infra.sh up|down|status|logs|env
#
# `env` prints `export FERRETDB_POSTGRESQL_URL=...` while that cluster runs (nothing otherwise):
# platformkit/store_prep.py reads it to create the GIN indexes FerretDB's filters need
# (docs/operations.md, "The local store").
#
# Idempotent: `up` on a running stack only checks readiness. Data and logs live under var/ (ignored);
# downloads and builds are cached under $CONGDOAN_CACHE (default ~/.cache/congdoan) so that a fresh
# clone on the same machine starts in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VAR="${CONGDOAN_VAR:-$ROOT/var}"
CACHE="${CONGDOAN_CACHE:-$HOME/.cache/congdoan}"
KAFKA_VERSION="3.9.1"
FERRETDB_VERSION="v1.24.2"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
DB_HOST="${DB_HOST:-127.0.0.1}"
DB_PORT="${DB_PORT:-27017}"
PG_PORT="${PG_PORT:-5433}"
PG_DB="ferretdb"
# The cluster lives in var/ unless the `postgres` user (root's case, below) cannot reach var/, as
# when the checkout is under /root: then in /var/lib/postgresql/congdoan-<hash of var/>.
PG_HOME="$VAR"
if [[ "$(id -u)" == 0 ]] && id postgres >/dev/null 2>&1 && mkdir -p "$VAR" &&
  ! runuser -u postgres -- test -x "$VAR" 2>/dev/null; then
  PG_HOME="/var/lib/postgresql/congdoan-$(printf %s "$VAR" | md5sum | cut -c1-10)"
fi
PG_DATA="$PG_HOME/pg"
PG_RUN="$PG_HOME/pg-run"
PG_LOG="$PG_HOME/log/postgresql.log"
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"
FERRETDB_POOL="${FERRETDB_POOL:-300}"           # FerretDB's PostgreSQL connections (see db_up)
PG_MAX_CONNECTIONS=$((FERRETDB_POOL + 50))      # the pool, plus psql (store_prep) and spare
# memory and checkpoint spacing for a province's store (see pg_up); PG_TUNING="" for the defaults
PG_TUNING="${PG_TUNING--c shared_buffers=1GB -c effective_cache_size=8GB -c maintenance_work_mem=256MB -c max_wal_size=8GB -c min_wal_size=1GB -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9 -c wal_buffers=32MB}"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
FERRETDB_BIN="$CACHE/ferretdb-$FERRETDB_VERSION/ferretdb"

log() { printf '[infra] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port name seconds
  local i
  for ((i = 0; i < $4 * 5; i++)); do
    if port_open "$1" "$2"; then return 0; fi
    sleep 0.2
  done
  log "$3 did not open $1:$2 within $4 s; see $VAR/log/"
  return 1
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

ensure_kafka_libs() {
  if [[ -f "$KAFKA_LIBS/.complete" ]]; then return; fi
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into $KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$ROOT/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime
  touch "$KAFKA_LIBS/.complete"
}

ensure_ferretdb() {
  if [[ -x "$FERRETDB_BIN" ]]; then return; fi
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy (first time only, ~2 min)"
  local work="$CACHE/ferretdb-$FERRETDB_VERSION"
  mkdir -p "$work"
  local dir
  dir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$work/src"
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  # `go install` panics without this file: it is normally written by `go generate` from git.
  echo "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
  (cd "$work/src" && go build -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
}

kafka_up() {
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then log "kafka already listening on $KAFKA_HOST:$KAFKA_PORT"; return; fi
  ensure_kafka_libs
  local dir="$VAR/kafka"
  mkdir -p "$dir/data" "$VAR/log"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=6
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# Views are rebuilt by replaying topics from the beginning: keep events (no time-based deletion).
log.retention.ms=-1
log.retention.bytes=-1
PROPS
  cat >"$dir/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
PROPS
  local cp="$KAFKA_LIBS/*"
  local jvm=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true "-Dlog4j.configuration=file:$dir/log4j.properties")
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    log "formatting KRaft storage"
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid)" \
      -c "$dir/server.properties" --ignore-formatted >"$VAR/log/kafka-format.log" 2>&1
  fi
  log "starting kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT"
  # setsid: its own session and process group, so that a Ctrl-C in the terminal that ran `make up`
  # (or the end of the CI step or shell job that started it) does not take the broker down with it.
  setsid nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$VAR/log/kafka.log" 2>&1 9>&- &
  echo $! >"$VAR/kafka.pid"
  wait_port "$KAFKA_HOST" "$KAFKA_PORT" kafka 90
}

pg_bin() { # the newest PostgreSQL server of Debian's packages (initdb and pg_ctl are not on the PATH)
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [[ -z "$d" ]]; then log "PostgreSQL is missing: run deploy/local/prereqs.sh up (Debian's postgresql)"; return 1; fi
  echo "$d"
}

# initdb and postgres refuse to run as root: as root the cluster belongs to the `postgres` system
# user that Debian's package creates; as anyone else it belongs to that user.
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_ready() { [[ -S "$PG_RUN/.s.PGSQL.$PG_PORT" ]] && port_open 127.0.0.1 "$PG_PORT"; }

pg_up() {
  if pg_ready; then log "postgresql already listening on 127.0.0.1:$PG_PORT"; return; fi
  local bin; bin="$(pg_bin)"
  mkdir -p "$PG_DATA" "$PG_RUN" "$(dirname "$PG_LOG")" "$VAR/log"
  touch "$PG_LOG"
  [[ "$PG_LOG" == "$VAR/log/postgresql.log" ]] || ln -sfn "$PG_LOG" "$VAR/log/postgresql.log"
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$PG_DATA" "$PG_RUN" "$PG_LOG"
    chmod 700 "$PG_DATA"
  fi
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initdb into $PG_DATA"
    # trust: the cluster listens on loopback and on a socket inside var/ only, for this checkout.
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1
  fi
  log "starting postgresql on 127.0.0.1:$PG_PORT"
  # plan_cache_mode: FerretDB sends `_jsonb->$1 @> $2` as a prepared statement; its generic plan never
  # uses the GIN expression indexes, a plan made with the values does (store_prep.py also sets it
  # per database, for a PostgreSQL this script did not start).
  # The rest: sized for a province's store (docs/operations.md "The local store"). Durability is
  # PostgreSQL's default (fsync, synchronous_commit on); only memory and checkpoint spacing change:
  # with the defaults (128 MB of buffers, a checkpoint per GB of WAL) the rebuild's 11.8M inserts
  # forced a checkpoint every ~26 s and the log warned 124 times that they came too often.
  # pg_ctl detaches the server into its own session (a Ctrl-C of `make up` does not reach it).
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
    -o "-p $PG_PORT -k $PG_RUN -c listen_addresses=127.0.0.1 -c plan_cache_mode=force_custom_plan -c max_connections=$PG_MAX_CONNECTIONS $PG_TUNING" >/dev/null 9>&-
  if ! as_pg "$bin/psql" -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    as_pg "$bin/psql" -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
  fi
  as_pg "$bin/psql" -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres -qc \
    "ALTER DATABASE $PG_DB SET plan_cache_mode = force_custom_plan" >/dev/null
}

pg_down() {
  if [[ ! -f "$PG_DATA/postmaster.pid" ]]; then return; fi
  log "stopping postgresql"
  as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null || true
}

db_mode() {
  if [[ -n "${MONGO_URL:-}" ]]; then echo external
  elif command -v mongod >/dev/null 2>&1; then echo mongod
  else echo ferretdb; fi
}

db_up() {
  local mode; mode="$(db_mode)"
  if [[ "$mode" == external ]]; then log "using MONGO_URL (external database)"; return; fi
  if [[ "$mode" == ferretdb ]]; then pg_up; fi
  if port_open "$DB_HOST" "$DB_PORT"; then log "database already listening on $DB_HOST:$DB_PORT"; return; fi
  mkdir -p "$VAR/log" "$VAR/db"
  if [[ "$mode" == mongod ]]; then
    log "starting mongod on $DB_HOST:$DB_PORT"
    setsid nohup mongod --bind_ip "$DB_HOST" --port "$DB_PORT" --dbpath "$VAR/db" >>"$VAR/log/db.log" 2>&1 9>&- &
  else
    ensure_ferretdb
    log "starting FerretDB $FERRETDB_VERSION (PostgreSQL) on $DB_HOST:$DB_PORT"
    # pool_max_conns: FerretDB holds one connection per statement of a bulk command until the command
    # ends, and waits for the pool without a timeout: commands that together need more connections
    # than the pool deadlock it for good (ping hangs too). The platform sends at most 40 statements
    # per command (platformkit.mongo.bounded_bulk_write), but several processes send at once (the
    # projector, a rebuild, the relays, the tests' own): with 60, a bulk-loading benchmark and the
    # projector test hung it (2 x 40 > 60). 300 leaves room for 7 concurrent full bulks; PostgreSQL
    # gets max_connections above it (pg_up).
    setsid nohup "$FERRETDB_BIN" --handler=postgresql --postgresql-url="$PG_URL?pool_max_conns=$FERRETDB_POOL" \
      --listen-addr="$DB_HOST:$DB_PORT" --state-dir="$VAR/db" --debug-addr=- --telemetry=disable --log-level=warn \
      >>"$VAR/log/db.log" 2>&1 9>&- &
  fi
  echo $! >"$VAR/db.pid"
  wait_port "$DB_HOST" "$DB_PORT" database 60
}

stop_pid() { # pidfile name
  if pid_alive "$1"; then
    local pid; pid="$(cat "$1")"
    log "stopping $2 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

status() {
  local k=down d=down p=down
  port_open "$KAFKA_HOST" "$KAFKA_PORT" && k=up
  if [[ "$(db_mode)" == external ]]; then d="external ($MONGO_URL)"
  elif port_open "$DB_HOST" "$DB_PORT"; then d="up ($(db_mode))"; fi
  printf 'kafka       %-6s %s:%s\n' "$k" "$KAFKA_HOST" "$KAFKA_PORT"
  printf 'database    %-6s %s:%s\n' "$d" "$DB_HOST" "$DB_PORT"
  if [[ "$(db_mode)" == ferretdb ]]; then
    pg_ready && p=up
    printf 'postgresql  %-6s 127.0.0.1:%s (%s)\n' "$p" "$PG_PORT" "$PG_DATA"
    [[ "$p" == up ]] || return 1
  fi
  [[ "$k" == up && "$d" != down ]]
}

print_env() {
  if [[ "$(db_mode)" == ferretdb ]] && pg_ready; then
    printf 'export FERRETDB_POSTGRESQL_URL=%q\n' "$PG_URL"
  fi
}

lock() { # one `up` or `down` at a time: two brokers on one data folder corrupt it
  mkdir -p "$VAR"
  exec 9>"$VAR/infra.lock"
  flock 9
}

case "${1:-}" in
  up) lock; kafka_up; db_up; status ;;
  down) lock; stop_pid "$VAR/kafka.pid" kafka; stop_pid "$VAR/db.pid" database; pg_down ;;
  status) status ;;
  logs) tail -n "${2:-50}" "$VAR"/log/*.log ;;
  env) print_env ;;
  prepare) ensure_kafka_libs; [[ "$(db_mode)" == ferretdb ]] && ensure_ferretdb; true ;;
  *) echo "usage: $0 up|down|status|logs [lines]|env|prepare" >&2; exit 2 ;;
esac
