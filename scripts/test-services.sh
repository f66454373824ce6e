#!/usr/bin/env bash
# Make sure the services the test suite talks to are reachable:
#   Redis   on 127.0.0.1:6379  (tests read REDIS_URL,      default redis://127.0.0.1:6379)
#   a Redis Cluster of 3 masters and 3 replicas on 127.0.0.1:7000-7005
#                              (tests read TEST_REDIS_CLUSTER_NODES, default 127.0.0.1:7000,…,127.0.0.1:7005)
#   MariaDB on 127.0.0.1:3306  (tests read TEST_MYSQL_URL, default mysql://root@127.0.0.1:3306)
# A service that already answers is left alone. Otherwise it is installed from
# Debian's packages (we run as root on Debian/Ubuntu) and started in the background.
# Then the tools some tests run, installed the same way when missing: Chromium (the
# snippet's browser tests), the PHP CLI (the Perfex module's token signer), nginx (the
# load-balancer test runs deploy/nginx.conf in front of several instances), promtool (the
# alert rules' and dashboard's test) and wrk (the benchmarks' load generator, whose driver
# test/bench runs).
# Prints one line per service; exports nothing. Arguments name a subset, e.g. `redis mariadb`
# (services: redis cluster mariadb chromium php nginx promtool wrk).
#
# Overrides (for trying the script against a scratch instance; the defaults are what tests use):
#   CAT_TEST_REDIS_HOST/PORT/DIR/LOG, CAT_TEST_MYSQL_HOST/PORT/DATADIR/SOCKET,
#   CAT_TEST_CLUSTER_HOST, CAT_TEST_CLUSTER_PORT (the first of six consecutive ports),
#   CAT_TEST_CLUSTER_DIR (one subdirectory per node), CAT_TEST_CLUSTER_TIMEOUT_S
set -euo pipefail

REDIS_HOST="${CAT_TEST_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${CAT_TEST_REDIS_PORT:-6379}"
REDIS_DIR="${CAT_TEST_REDIS_DIR:-/var/lib/redis}"
REDIS_LOG="${CAT_TEST_REDIS_LOG:-/var/log/redis/ci.log}"

CLUSTER_HOST="${CAT_TEST_CLUSTER_HOST:-127.0.0.1}"
CLUSTER_PORT="${CAT_TEST_CLUSTER_PORT:-7000}"
CLUSTER_DIR="${CAT_TEST_CLUSTER_DIR:-/var/lib/redis-cluster}"
CLUSTER_TIMEOUT_S="${CAT_TEST_CLUSTER_TIMEOUT_S:-60}"

MYSQL_HOST="${CAT_TEST_MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${CAT_TEST_MYSQL_PORT:-3306}"
MYSQL_DATADIR="${CAT_TEST_MYSQL_DATADIR:-/var/lib/mysql}"
MYSQL_SOCKET="${CAT_TEST_MYSQL_SOCKET:-/run/mysqld/mysqld.sock}"
MYSQL_RUNDIR="$(dirname "$MYSQL_SOCKET")"
MYSQL_PIDFILE="$MYSQL_RUNDIR/mysqld.pid"

log() { printf '%s\n' "$*"; }
die() { printf 'test-services: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
# A fresh Debian/Ubuntu machine may be running apt itself (unattended-upgrades after boot):
# wait up to 10 minutes for its lock instead of failing at once.
APT_LOCK_WAIT=(-o DPkg::Lock::Timeout=600)
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  if [[ $APT_UPDATED -eq 0 ]]; then
    apt-get "${APT_LOCK_WAIT[@]}" update -qq </dev/null >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get "${APT_LOCK_WAIT[@]}" install -y -qq "$@" </dev/null >/dev/null \
    || die "apt-get install $* failed"
}

# tcp_open HOST PORT: true if something accepts a TCP connection there.
tcp_open() {
  # shellcheck disable=SC2016  # $1/$2 expand in the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

# ---------------------------------------------------------------- Redis

redis_ok() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
  else
    # No client: speak the protocol by hand, falling back to "the port is open".
    # shellcheck disable=SC2016  # $1/$2/$line expand in the inner bash
    timeout 3 bash -c '
      exec 3<>"/dev/tcp/$1/$2" || exit 1
      printf "PING\r\n" >&3
      IFS= read -r -t 2 line <&3 || exit 0
      [[ $line == +PONG* ]]' _ "$REDIS_HOST" "$REDIS_PORT" >/dev/null 2>&1
  fi
}

has_ipv6_loopback() {
  [[ -r /proc/net/if_inet6 ]] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6
}

redis_start() {
  mkdir -p "$REDIS_DIR" "$(dirname "$REDIS_LOG")"
  local -a common=(--daemonize yes --port "$REDIS_PORT" --save "" --appendonly no
                   --dir "$REDIS_DIR" --logfile "$REDIS_LOG")
  if has_ipv6_loopback && redis-server "${common[@]}" --bind 127.0.0.1 -::1 >/dev/null 2>&1; then
    return 0
  fi
  # No ::1 here (or this redis refused it): loopback IPv4 only.
  redis-server "${common[@]}" --bind 127.0.0.1 >/dev/null 2>&1
}

ensure_redis() {
  if redis_ok; then
    log "redis: already running on $REDIS_HOST:$REDIS_PORT"
    return 0
  fi
  local did="started"
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    did="installed and started"
    # The package's own scripts may have started it already.
    if redis_ok; then
      log "redis: installed (already answering on $REDIS_HOST:$REDIS_PORT)"
      return 0
    fi
  fi
  redis_start || die "redis: redis-server failed to start (see $REDIS_LOG)"
  local i
  for ((i = 0; i < 30; i++)); do
    if redis_ok; then
      log "redis: $did on $REDIS_HOST:$REDIS_PORT"
      return 0
    fi
    sleep 1
  done
  die "redis: no PONG from $REDIS_HOST:$REDIS_PORT after 30 s (see $REDIS_LOG)"
}

# ---------------------------------------------------------------- Redis Cluster

# Six nodes on consecutive ports from CLUSTER_PORT: `redis-cli --cluster create` makes the
# first three masters and gives each a replica.
CLUSTER_NODES=6
cluster_ports() {
  local i
  for ((i = 0; i < CLUSTER_NODES; i++)); do printf '%s\n' "$((CLUSTER_PORT + i))"; done
}
CLUSTER_RANGE="$CLUSTER_HOST:$CLUSTER_PORT-$((CLUSTER_PORT + CLUSTER_NODES - 1))"

# cluster_cli PORT ARGS…: one command to one node, never hanging.
cluster_cli() {
  local port="$1"
  shift
  timeout 5 redis-cli -h "$CLUSTER_HOST" -p "$port" "$@" 2>/dev/null
}

cluster_node_up() {
  [[ "$(cluster_cli "$1" ping)" == PONG ]]
}

# cluster_info_field PORT FIELD: a field of CLUSTER INFO (e.g. cluster_state), CR stripped.
cluster_info_field() {
  cluster_cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}

# The addresses a node knows (CLUSTER NODES, `host:port` without the bus port), sorted.
cluster_known_addresses() {
  cluster_cli "$1" cluster nodes | awk '{ split($2, a, "@"); print a[1] }' | sort
}

# Healthy: every node answers and says the cluster is ok, with all 16384 slots served by 3 masters.
cluster_healthy() {
  local port
  for port in $(cluster_ports); do
    [[ "$(cluster_info_field "$port" cluster_state)" == ok ]] || return 1
    [[ "$(cluster_info_field "$port" cluster_slots_ok)" == 16384 ]] || return 1
    [[ "$(cluster_info_field "$port" cluster_size)" == 3 ]] || return 1
  done
}

# Ours: every node knows exactly the six nodes of this script's ports, and nothing else
# (a node that is still joining, or a nodes.conf of another cluster, is not ours).
cluster_is_ours() {
  local expected port
  expected="$(for port in $(cluster_ports); do printf '%s:%s\n' "$CLUSTER_HOST" "$port"; done | sort)"
  for port in $(cluster_ports); do
    [[ "$(cluster_known_addresses "$port")" == "$expected" ]] || return 1
  done
}

# Fresh: every node knows only itself and serves no slot (started, never joined).
cluster_is_fresh() {
  local port
  for port in $(cluster_ports); do
    [[ "$(cluster_info_field "$port" cluster_known_nodes)" == 1 ]] || return 1
    [[ "$(cluster_info_field "$port" cluster_slots_assigned)" == 0 ]] || return 1
    [[ "$(cluster_cli "$port" dbsize)" == 0 ]] || return 1
  done
}

# Persistence off: the cluster is for tests; nodes.conf (the membership) is all a node keeps.
# Replicas sync at once (no diskless-sync delay), so a test's manual failover finds them in sync;
# DEBUG (SLEEP) is allowed from loopback, for tests that freeze a node.
cluster_node_start() {
  local port="$1" dir="$CLUSTER_DIR/$1"
  mkdir -p "$dir"
  redis-server --port "$port" --bind "$CLUSTER_HOST" --daemonize yes \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
    --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
    --repl-diskless-sync-delay 0 --enable-debug-command local >/dev/null 2>&1 \
    || die "redis-cluster: redis-server failed to start on $CLUSTER_HOST:$port (see $dir/redis.log)"
}

cluster_node_stop() {
  local port="$1" i
  cluster_cli "$port" shutdown nosave >/dev/null || true
  for ((i = 0; i < 20; i++)); do
    tcp_open "$CLUSTER_HOST" "$port" || return 0
    sleep 0.5
  done
  die "redis-cluster: the node on $CLUSTER_HOST:$port does not shut down"
}

# Starts every node that does not answer; fails when a port is taken by something that is not Redis.
cluster_start_missing() {
  local port i started=0
  for port in $(cluster_ports); do
    cluster_node_up "$port" && continue
    tcp_open "$CLUSTER_HOST" "$port" && die "redis-cluster: $CLUSTER_HOST:$port is taken by something that does not answer PING"
    cluster_node_start "$port"
    started=$((started + 1))
  done
  for port in $(cluster_ports); do
    for ((i = 0; i < 30; i++)); do
      cluster_node_up "$port" && break
      sleep 0.5
    done
    cluster_node_up "$port" || die "redis-cluster: no PONG from $CLUSTER_HOST:$port after 15 s (see $CLUSTER_DIR/$port/redis.log)"
  done
  echo "$started"
}

# Stops every node, deletes its directory (nodes.conf with it) and starts it empty.
cluster_wipe() {
  local port
  for port in $(cluster_ports); do
    cluster_node_stop "$port"
    rm -rf "${CLUSTER_DIR:?}/$port"
  done
  cluster_start_missing >/dev/null
}

cluster_create() {
  local port log="$CLUSTER_DIR/create.log"
  local -a nodes=()
  for port in $(cluster_ports); do nodes+=("$CLUSTER_HOST:$port"); done
  timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes </dev/null >"$log" 2>&1 \
    || die "redis-cluster: redis-cli --cluster create failed (see $log)"
}

# cluster_wait_ok SECONDS: true once every node says cluster_state:ok with every slot served.
cluster_wait_ok() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    cluster_healthy && return 0
    sleep 0.5
  done
  return 1
}

ensure_cluster() {
  if cluster_healthy; then
    log "redis-cluster: already running on $CLUSTER_RANGE"
    return 0
  fi
  local did="" started
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
    did="installed, "
  fi
  mkdir -p "$CLUSTER_DIR"
  started="$(cluster_start_missing)"
  if cluster_is_fresh; then
    cluster_create
    did+="created"
  elif cluster_is_ours; then
    # Nodes that were down rejoin from their nodes.conf; a replica may be promoted meanwhile.
    if cluster_wait_ok 30; then
      log "redis-cluster: ${did}restarted $started node(s) on $CLUSTER_RANGE"
      return 0
    fi
    cluster_wipe
    cluster_create
    did+="recreated (it did not recover)"
  else
    # Leftovers of another cluster, or a half-made one: start over.
    cluster_wipe
    cluster_create
    did+="recreated (its nodes belonged to another or an unfinished cluster)"
  fi
  cluster_wait_ok "$CLUSTER_TIMEOUT_S" \
    || die "redis-cluster: not every node on $CLUSTER_RANGE says cluster_state:ok after $CLUSTER_TIMEOUT_S s (see $CLUSTER_DIR/*/redis.log)"
  log "redis-cluster: $did on $CLUSTER_RANGE (3 masters, 3 replicas)"
}

# ---------------------------------------------------------------- MariaDB

mysql_client() {
  if command -v mariadb >/dev/null 2>&1; then echo mariadb
  elif command -v mysql >/dev/null 2>&1; then echo mysql
  else return 1
  fi
}

# The exact login the tests make: root, empty password, over TCP. --no-defaults
# so that no ~/.my.cnf password makes this pass while the tests would fail.
mysql_login_ok() {
  local client
  client="$(mysql_client)" || return 1
  env -u MYSQL_PWD timeout 10 "$client" --no-defaults --protocol=TCP -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
    -uroot --connect-timeout=3 -e 'select 1' </dev/null >/dev/null 2>&1
}

mysql_answering() {
  tcp_open "$MYSQL_HOST" "$MYSQL_PORT"
}

mysql_start() {
  mkdir -p "$MYSQL_RUNDIR"
  chown mysql:mysql "$MYSQL_RUNDIR"
  if [[ ! -d "$MYSQL_DATADIR/mysql" ]]; then
    local installdb
    installdb="$(command -v mariadb-install-db || command -v mysql_install_db)" \
      || die "mariadb: mariadb-install-db not found"
    "$installdb" --user=mysql --datadir="$MYSQL_DATADIR" </dev/null >/dev/null 2>&1 \
      || die "mariadb: $installdb failed for $MYSQL_DATADIR"
  fi
  # --oknodo: a mariadbd that already wrote this pid file counts as started.
  start-stop-daemon --start --oknodo --background --quiet \
    --pidfile "$MYSQL_PIDFILE" --exec /usr/sbin/mariadbd -- \
    --user=mysql --datadir="$MYSQL_DATADIR" --socket="$MYSQL_SOCKET" \
    --pid-file="$MYSQL_PIDFILE" --port="$MYSQL_PORT" --bind-address="$MYSQL_HOST" \
    </dev/null >/dev/null 2>&1 || die "mariadb: start-stop-daemon could not start /usr/sbin/mariadbd"
}

# Debian's root@localhost logs in by unix_socket only; give root an empty
# password over TCP too, through the socket (we are root, so unix_socket lets us in).
mysql_allow_root_tcp() {
  local client
  client="$(mysql_client)" || die "mariadb: no mariadb/mysql client to fix root's login with"
  timeout 30 "$client" --no-defaults --protocol=SOCKET -S "$MYSQL_SOCKET" -uroot </dev/null >/dev/null 2>&1 -e "
    ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
    ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
    ALTER USER 'root'@'::1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
    CREATE DATABASE IF NOT EXISTS test;
    FLUSH PRIVILEGES;" \
    || die "mariadb: could not give root an empty-password TCP login via $MYSQL_SOCKET"
}

ensure_mariadb() {
  if mysql_login_ok; then
    log "mariadb: already running on $MYSQL_HOST:$MYSQL_PORT"
    return 0
  fi
  local did
  if mysql_answering; then
    did="already running"
  else
    did="started"
    if ! command -v mariadbd >/dev/null 2>&1 && [[ ! -x /usr/sbin/mariadbd ]]; then
      apt_install mariadb-server mariadb-client
      did="installed and started"
    fi
    if ! mysql_answering; then
      mysql_start
      local i
      for ((i = 0; i < 60; i++)); do
        mysql_answering && break
        sleep 1
      done
      mysql_answering || die "mariadb: nothing answers on $MYSQL_HOST:$MYSQL_PORT after 60 s"
    fi
  fi
  if mysql_login_ok; then
    log "mariadb: $did on $MYSQL_HOST:$MYSQL_PORT"
    return 0
  fi
  # The socket can lag the TCP port by a moment.
  local j
  for ((j = 0; j < 10; j++)); do
    [[ -S "$MYSQL_SOCKET" ]] && break
    sleep 1
  done
  mysql_allow_root_tcp
  mysql_login_ok || die "mariadb: root still cannot log in over TCP with an empty password"
  log "mariadb: $did on $MYSQL_HOST:$MYSQL_PORT; enabled root login over TCP with an empty password"
}

# The snippet's browser tests drive Debian's Chromium with playwright-core (no browser download).
ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    log "chromium: already installed"
    return 0
  fi
  apt_install chromium
  [[ -x /usr/bin/chromium ]] || die "chromium: /usr/bin/chromium missing after install"
  log "chromium: installed"
}

# The Perfex module's tests run its PHP token signer with the PHP CLI (test/perfex/).
ensure_php() {
  if command -v php >/dev/null 2>&1; then
    log "php: already installed"
    return 0
  fi
  apt_install php-cli
  command -v php >/dev/null 2>&1 || die "php: php missing after installing php-cli"
  log "php: installed"
}

# test/deploy/ runs Debian's nginx binary as a child process with a config of its own. The
# package's own service (its default site on port 80) is not needed: where the install
# started it, it is stopped again.
ensure_nginx() {
  if [[ -x /usr/sbin/nginx ]]; then
    log "nginx: already installed"
    return 0
  fi
  apt_install nginx
  [[ -x /usr/sbin/nginx ]] || die "nginx: /usr/sbin/nginx missing after install"
  if [[ -s /run/nginx.pid ]]; then
    /usr/sbin/nginx -s quit >/dev/null 2>&1 || true
  fi
  log "nginx: installed"
}

# test/deploy/prometheus.test.ts checks the shipped alert rules and dashboard with promtool,
# from Debian's prometheus package. The package's own server is not needed: where the install
# started it, it is stopped again.
ensure_promtool() {
  if [[ -x /usr/bin/promtool ]]; then
    log "promtool: already installed"
    return 0
  fi
  apt_install --no-install-recommends prometheus
  [[ -x /usr/bin/promtool ]] || die "promtool: /usr/bin/promtool missing after installing prometheus"
  if pgrep -x prometheus >/dev/null 2>&1; then
    (service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
  fi
  log "promtool: installed"
}

# The heartbeat benchmarks load the server with wrk in a process of its own (bench/heartbeat.lua).
ensure_wrk() {
  if command -v wrk >/dev/null 2>&1; then
    log "wrk: already installed"
    return 0
  fi
  apt_install wrk
  command -v wrk >/dev/null 2>&1 || die "wrk: wrk missing after install"
  log "wrk: installed"
}

# With arguments, only those: `scripts/test-services.sh redis mariadb wrk` (the benchmarks).
if [[ $# -eq 0 ]]; then
  set -- redis cluster mariadb chromium php nginx promtool wrk
fi
for service in "$@"; do
  case "$service" in
    redis | cluster | mariadb | chromium | php | nginx | promtool | wrk) "ensure_$service" ;;
    *) die "unknown service $service (known: redis cluster mariadb chromium php nginx promtool wrk)" ;;
  esac
done
