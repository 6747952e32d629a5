#!/usr/bin/env bash
# Makes sure the local services the tests and the demo need are up, and says what it started:
#
#   RabbitMQ on 127.0.0.1:5672 (Debian's rabbitmq-server; installed if missing, started if
#     stopped), with the management plugin (the doctor's checks) and the delayed-message plugin
#     (the plugin retry backend and the Go services): built by
#     ../shared/rabbitmq/delayed-message-exchange/install.sh, or, where that is absent, from the
#     upstream source at the pinned commit (DELAYED_MESSAGE_REPO, DELAYED_MESSAGE_COMMIT);
#   PostgreSQL on 127.0.0.1:5432 (installed if missing, started if stopped), reachable at
#     POSTGRES_URL (default postgres://postgres:postgres@127.0.0.1:5432/test; on a fresh install
#     the postgres user gets that password and the database test is made);
#   promtool (Debian's prometheus package), which checks and tests the alert rules in prometheus/;
#   Chromium (Debian's chromium package) at /usr/bin/chromium, for the console's browser tests;
#   with --go, the Go toolchain and libraries the interoperability suite builds the Go services
#     with (scripts/go_peer.sh --install).
#
# A service already running as needed is left alone: nothing is stopped or restarted. Installing
# needs root and Debian's apt-get. Only a local broker is managed: with RABBITMQ_URL pointing
# elsewhere, the broker part is skipped.
#
#   scripts/services.sh [--broker-only] [--go]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
broker_only=""
go=""
for arg in "$@"; do
  case "$arg" in
    --broker-only) broker_only=1 ;;
    --go) go=1 ;;
    *) echo "services.sh: unknown option $arg (use --broker-only, --go)" >&2; exit 2 ;;
  esac
done

say() { echo "services: $*" >&2; }
die() { echo "services: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 "$2"); do
    port_open "$1" && return 0
    sleep 1
  done
  return 1
}

apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "cannot install $*: no apt-get here; install it by hand"
  [ "$(id -u)" = 0 ] || die "installing $* needs root (or install it by hand)"
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

local_broker() {
  local url=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672}
  case "$url" in
    *@127.0.0.1:5672* | *@localhost:5672* | *//127.0.0.1:5672* | *//localhost:5672* | \
      *@127.0.0.1 | *@localhost | *@127.0.0.1/* | *@localhost/*) return 0 ;;
    *) return 1 ;;
  esac
}

plugin_enabled() {
  rabbitmq-plugins list -e -m 2>/dev/null | grep -qx "$1"
}

delayed_message_plugin() {
  local name=rabbitmq_delayed_message_exchange
  plugin_enabled "$name" && return 0
  local shared=$root/../shared/rabbitmq/delayed-message-exchange
  if [ -x "$shared/install.sh" ] || [ -f "$shared/install.sh" ]; then
    bash "$shared/install.sh" >/dev/null || die "the delayed-message plugin did not install"
  else
    # No shared copy: the upstream source at the commit made for RabbitMQ 3.10.x, compiled
    # against the installed broker as the shared installer does.
    local repo=${DELAYED_MESSAGE_REPO:-https://github.com/rabbitmq/rabbitmq-delayed-message-exchange}
    local commit=${DELAYED_MESSAGE_COMMIT:-e6c8b16}
    local src=$root/.cache/delayed-message-$commit
    if [ ! -d "$src/src" ]; then
      say "cloning $repo at $commit"
      git clone --quiet --no-checkout "$repo" "$src" && git -C "$src" checkout --quiet "$commit" ||
        die "cannot fetch the delayed-message plugin's source from $repo"
    fi
    local base
    base=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-* | sort -V | tail -n 1)
    local dest=$base/plugins/$name-3.10.2
    mkdir -p "$dest/ebin"
    erlc -o "$dest/ebin" -I "$(ls -d "$base"/plugins/rabbit_common-*)/include" \
      -I "$(ls -d "$base"/plugins/rabbit-[0-9]*)/include" \
      -pa "$(ls -d "$base"/plugins/rabbit_common-*)/ebin" \
      -pa "$(ls -d "$base"/plugins/rabbit-[0-9]*)/ebin" "$src"/src/*.erl ||
      die "cannot compile the delayed-message plugin"
    local modules
    modules=$(cd "$dest/ebin" && ls ./*.beam | sed 's#^\./##; s/\.beam$//' | paste -sd, -)
    printf '{application, %s, [{description, "RabbitMQ Delayed Message Exchange"}, {vsn, "3.10.2"}, {modules, [%s]}, {registered, [rabbit_delayed_message_sup]}, {applications, [kernel, stdlib, rabbit_common, rabbit]}, {mod, {rabbit_delayed_message_app, []}}, {env, []}]}.\n' \
      "$name" "$modules" >"$dest/ebin/$name.app"
    rabbitmq-plugins enable "$name" >/dev/null || die "the delayed-message plugin did not enable"
  fi
  say "enabled the delayed-message plugin ($name)"
}

broker_die() { die "$* (or point the commands at a running broker: RABBITMQ_URL=amqp://user:pass@host:5672)"; }

broker() {
  if ! local_broker; then
    say "RABBITMQ_URL points at another broker: not managing it"
    return 0
  fi
  if ! port_open 5672; then
    command -v rabbitmq-server >/dev/null 2>&1 || (apt_install rabbitmq-server) ||
      broker_die "RabbitMQ is not installed and could not be installed here"
    say "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_port 5672 120 || broker_die "RabbitMQ did not start on 127.0.0.1:5672 (see /var/log/rabbitmq)"
    rabbitmqctl await_startup >/dev/null 2>&1 || true
    say "started RabbitMQ on 127.0.0.1:5672"
  fi
  if ! plugin_enabled rabbitmq_management; then
    rabbitmq-plugins enable rabbitmq_management >/dev/null
    say "enabled the management plugin"
  fi
  wait_port 15672 60 || die "the management API did not start on 15672"
  delayed_message_plugin
}

postgres() {
  if ! port_open 5432; then
    ls /etc/postgresql/*/main >/dev/null 2>&1 || apt_install postgresql
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start ||
      true
    wait_port 5432 60 || die "PostgreSQL did not start on 127.0.0.1:5432"
    say "started PostgreSQL on 127.0.0.1:5432"
  fi
  local url=${POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/test}
  if ! psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    [ -z "${POSTGRES_URL:-}" ] || die "cannot reach PostgreSQL at POSTGRES_URL"
    say "preparing PostgreSQL: password for postgres, database test"
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    su postgres -c "createdb test" 2>/dev/null || true
    psql "$url" -Atqc 'SELECT 1' >/dev/null || die "cannot reach PostgreSQL at $url"
  fi
}

tools() {
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
  # The console's browser tests: Debian's Chromium, driven by playwright-core (CHROMIUM_PATH).
  if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
    say "installed Chromium (the console's browser tests)"
  fi
  return 0
}

broker
[ -n "$broker_only" ] || postgres
[ -n "$broker_only" ] || tools
if [ -n "$go" ]; then
  bash "$here/go_peer.sh" --install >/dev/null
fi
exit 0
