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
# --broker 4.0 or 4.3 manages, instead of the machine's 3.10, a RabbitMQ 4.x node of Debian's
# (trixie's 4.0.x, sid's 4.3.x) in a chroot that debootstrap builds once, on the first call, under
# RABBITMQ_CHROOTS (default ~/.cache/rabbitmq-chroots/<version>; build log beside it), as
# ../shared/rabbitmq/README.md does by hand. The node has its own ports, node name and epmd, so it
# runs beside the machine's broker:
#
#   version  AMQP  management  node                dist   epmd  delayed-message plugin
#   4.0      5673  15673       rabbit40@localhost  25673  4370  yes
#   4.3      5674  15674       rabbit43@localhost  25674  4371  no (none works on 4.3)
#
# Both deny the deprecated features a client could use (transient non-exclusive queues, global
# QoS, queue master locators): a test of ours that used one fails there.
#
# A running node is left alone (said so when its rabbitmq.conf is older than this script's), a
# stopped one is started, a chroot whose build did not finish is built again (about a minute, with
# Debian's mirror; a call that finds the node running returns at once and needs no root).
# RABBITMQ_URL is not consulted: the flag names the broker. With --broker (3.10 too), the broker's
# URLs are printed on stdout, as lines a caller can export or read:
#
#   RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5673
#   RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:15673
#
# --stop (with --broker 4.0 or 4.3 only) stops that node and does nothing else; the machine's
# broker is never stopped. Without --broker and --broker-only (as `deno task test` runs it), both
# 4.x nodes are started as well: the tests compare the brokers (testing/other_brokers.ts).
#
#   scripts/services.sh [--broker 3.10|4.0|4.3] [--broker-only] [--go]
#   scripts/services.sh --broker 4.0|4.3 --stop
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
broker_only=""
go=""
version=""
stop=""
usage() { echo "services.sh: $* (use --broker 3.10|4.0|4.3, --broker-only, --go, --stop)" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --broker-only) broker_only=1 ;;
    --go) go=1 ;;
    --broker)
      [ $# -ge 2 ] || usage "--broker needs a version: 3.10, 4.0 or 4.3"
      version=$2
      shift
      ;;
    --broker=*) version=${1#--broker=} ;;
    --stop) stop=1 ;;
    *) usage "unknown option $1" ;;
  esac
  shift
done
case "$version" in
  "" | 3.10 | 4.0 | 4.3) ;;
  *) usage "--broker $version: no such broker here (3.10 is the machine's; 4.0 and 4.3 run in a chroot)" ;;
esac
case "$version" in
  4.*) ;;
  *) [ -z "$stop" ] || usage "--stop needs --broker 4.0 or 4.3 (the machine's 3.10 is never stopped)" ;;
esac

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

# shellcheck source=scripts/_apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"
apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "cannot install $*: no apt-get here; install it by hand"
  [ "$(id -u)" = 0 ] || die "installing $* needs root (or install it by hand)"
  if [ -z "$apt_updated" ]; then
    apt_get update -qq
    apt_updated=1
  fi
  say "installing $*"
  apt_get install -y -qq "$@"
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

# RabbitMQ 4.x in a chroot (--broker 4.0 or 4.3).
chroots=${RABBITMQ_CHROOTS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/rabbitmq-chroots}
case "$version" in
  4.0) suite=trixie amqp_port=5673 management_port=15673 node=rabbit40@localhost dist_port=25673 epmd_port=4370 ;;
  4.3) suite=sid amqp_port=5674 management_port=15674 node=rabbit43@localhost dist_port=25674 epmd_port=4371 ;;
esac
# Written last by a build; a chroot without it is built again.
built_mark=.services-built

# A command in the chroot, as the node's CLI tools need it: its epmd, no environment of ours. The
# lock's descriptor is closed, so that a node started here does not hold it.
in_chroot() {
  chroot "$croot" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/rabbitmq LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive ERL_EPMD_PORT="$epmd_port" \
    "$@" 9>&-
}

mounted_under() { awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts; }

mount_proc() {
  [ -n "$(mounted_under "$croot/proc")" ] || mount -t proc proc "$croot/proc" ||
    die "cannot mount /proc in $croot"
}

chroot_build() {
  local log=$chroots/$version.build.log
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  local dmx=$root/../shared/rabbitmq/delayed-message-exchange
  [ "$version" != 4.0 ] || [ -f "$dmx/install.sh" ] ||
    die "no $dmx/install.sh: the delayed-message plugin for 4.0 is built from it"
  if [ -e "$croot" ]; then
    say "$croot is not a finished build: building it again"
    local m
    for m in $(mounted_under "$croot" | sort -r); do umount "$m" || umount -l "$m" || true; done
    [ -z "$(mounted_under "$croot")" ] || die "cannot unmount what is mounted under $croot"
    rm -rf --one-file-system "$croot"
  fi
  say "building RabbitMQ $version (Debian $suite) in $croot: about a minute (log: $log)"
  local started=$SECONDS
  mkdir -p "$croot"
  : >"$log"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$croot" >>"$log" 2>&1 ||
    die "debootstrap $suite failed (see $log)"
  mount_proc
  printf '#!/bin/sh\nexit 101\n' >"$croot/usr/sbin/policy-rc.d"
  chmod +x "$croot/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$croot/etc/resolv.conf" 2>/dev/null || true
  local apt=(apt-get -o Acquire::Check-Valid-Until=false -q)
  { in_chroot "${apt[@]}" update && in_chroot "${apt[@]}" install -y rabbitmq-server erlang-dev; } \
    >>"$log" 2>&1 || die "apt-get in the chroot failed (see $log)"
  local installed
  installed=$(in_chroot dpkg-query -W -f='${Version}' rabbitmq-server)
  case "$installed" in
    "$version".*) ;;
    *) die "Debian $suite has rabbitmq-server $installed, not $version.x" ;;
  esac
  node_conf >"$croot/etc/rabbitmq/rabbitmq.conf"
  printf 'NODENAME=%s\nDIST_PORT=%s\n' "$node" "$dist_port" >"$croot/etc/rabbitmq/rabbitmq-env.conf"
  in_chroot rabbitmq-plugins enable --offline rabbitmq_management >>"$log" 2>&1 ||
    die "the management plugin did not enable (see $log)"
  if [ "$version" = 4.0 ]; then
    cp -r "$dmx" "$croot/opt/dmx"
    in_chroot bash /opt/dmx/install.sh --offline >>"$log" 2>&1 ||
      die "the delayed-message plugin did not build (see $log)"
  else
    say "no delayed-message plugin on 4.3 (the node would not boot with it): the plugin retry" \
      "backend and the Go services' delayed exchange are not there"
  fi
  echo "$installed" >"$croot/$built_mark"
  say "built RabbitMQ $installed in $croot in $((SECONDS - started)) s"
}

# The node's rabbitmq.conf: its ports, and every deprecated feature a client could use denied
# (transient non-exclusive queues, global QoS, queue master locators; 4.3 denies the last two
# already), so that the suite run on it shows none of ours uses one. The management plugin's own
# statistics (management_metrics_collection) stay: the doctor's consumer check reads them.
node_conf() {
  printf 'listeners.tcp.default = %s\nmanagement.tcp.port = %s\n' "$amqp_port" "$management_port"
  printf 'deprecated_features.permit.%s = false\n' transient_nonexcl_queues global_qos \
    queue_master_locator
}

broker4_stop() {
  croot=$chroots/$version
  if ! port_open "$amqp_port"; then
    say "RabbitMQ $version is not running"
    return 0
  fi
  say "stopping RabbitMQ $version ($node)"
  in_chroot rabbitmqctl stop >/dev/null || die "RabbitMQ $version did not stop"
}

broker4() {
  # Running: nothing to do (not even root is needed), but say so if it runs on an older
  # rabbitmq.conf than this script writes (a restart applies it: --stop, then start).
  if port_open "$amqp_port" && port_open "$management_port"; then
    local conf=$chroots/$version/etc/rabbitmq/rabbitmq.conf
    [ ! -r "$conf" ] || [ "$(cat "$conf")" = "$(node_conf)" ] ||
      say "RabbitMQ $version runs on an older $conf: restart it (--broker $version --stop, then" \
        "--broker $version) to apply the new one"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "RabbitMQ $version runs in a chroot: that needs root"
  mkdir -p "$chroots"
  chroots=$(cd "$chroots" && pwd -P)
  croot=$chroots/$version
  # One call at a time builds or starts a version's node.
  exec 9>"$chroots/$version.lock"
  flock 9
  if ! port_open "$amqp_port"; then
    [ -f "$croot/$built_mark" ] || chroot_build
    node_conf >"$croot/etc/rabbitmq/rabbitmq.conf"
    mount_proc
    say "starting RabbitMQ $version ($node)"
    in_chroot rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_port "$amqp_port" 120 ||
      die "RabbitMQ $version did not start on 127.0.0.1:$amqp_port (see $croot/var/log/rabbitmq)"
    in_chroot rabbitmqctl await_startup >/dev/null 2>&1 || true
    say "started RabbitMQ $version on 127.0.0.1:$amqp_port"
  fi
  wait_port "$management_port" 60 || die "the management API did not start on $management_port"
  exec 9>&-
}

if [ -n "$stop" ]; then
  broker4_stop
  exit 0
fi
case "$version" in
  4.*) broker4 ;;
  *) broker ;;
esac
# The test suite's other brokers (testing/other_brokers.ts): with no --broker and not
# --broker-only, the 4.0 and 4.3 nodes are started beside the machine's broker too.
# Both at once: a first build of each is mostly a wait on Debian's mirror (about a minute each).
if [ -z "$version" ] && [ -z "$broker_only" ]; then
  bash "$0" --broker 4.0 --broker-only >/dev/null &
  started40=$!
  bash "$0" --broker 4.3 --broker-only >/dev/null &
  started43=$!
  if ! wait "$started40"; then
    kill "$started43" 2>/dev/null || true
    die "RabbitMQ 4.0 did not start (its error above)"
  fi
  wait "$started43" || die "RabbitMQ 4.3 did not start (its error above)"
fi
[ -n "$broker_only" ] || postgres
[ -n "$broker_only" ] || tools
if [ -n "$go" ]; then
  bash "$here/go_peer.sh" --install >/dev/null
fi
case "$version" in
  4.*) echo "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$amqp_port"
    echo "RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$management_port" ;;
  3.10) if local_broker; then
      echo "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672"
      echo "RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:15672"
    fi ;;
esac
exit 0
