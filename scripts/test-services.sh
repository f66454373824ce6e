#!/usr/bin/env bash
# Make sure the services the test suite talks to are reachable:
#   Redis   on 127.0.0.1:6379  (tests read REDIS_URL,      default redis://127.0.0.1:6379)
#   MariaDB on 127.0.0.1:3306  (tests read TEST_MYSQL_URL, default mysql://root@127.0.0.1:3306)
# A service that already answers is left alone. Otherwise it is installed from
# Debian's packages (we run as root on Debian/Ubuntu) and started in the background.
# Then the tools some tests run, installed the same way when missing: Chromium (the
# snippet's browser tests), the PHP CLI (the Perfex module's token signer) and wrk (the
# benchmarks' load generator, whose driver test/bench runs).
# Prints one line per service; exports nothing. Arguments name a subset, e.g. `redis mariadb`.
#
# Overrides (for trying the script against a scratch instance; the defaults are what tests use):
#   CAT_TEST_REDIS_HOST/PORT/DIR/LOG, CAT_TEST_MYSQL_HOST/PORT/DATADIR/SOCKET
set -euo pipefail

REDIS_HOST="${CAT_TEST_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${CAT_TEST_REDIS_PORT:-6379}"
REDIS_DIR="${CAT_TEST_REDIS_DIR:-/var/lib/redis}"
REDIS_LOG="${CAT_TEST_REDIS_LOG:-/var/log/redis/ci.log}"

MYSQL_HOST="${CAT_TEST_MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${CAT_TEST_MYSQL_PORT:-3306}"
MYSQL_DATADIR="${CAT_TEST_MYSQL_DATADIR:-/var/lib/mysql}"
MYSQL_SOCKET="${CAT_TEST_MYSQL_SOCKET:-/run/mysqld/mysqld.sock}"
MYSQL_RUNDIR="$(dirname "$MYSQL_SOCKET")"
MYSQL_PIDFILE="$MYSQL_RUNDIR/mysqld.pid"

log() { printf '%s\n' "$*"; }
die() { printf 'test-services: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  if [[ $APT_UPDATED -eq 0 ]]; then
    apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >/dev/null \
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
  set -- redis mariadb chromium php wrk
fi
for service in "$@"; do
  case "$service" in
    redis | mariadb | chromium | php | wrk) "ensure_$service" ;;
    *) die "unknown service $service (known: redis mariadb chromium php wrk)" ;;
  esac
done
