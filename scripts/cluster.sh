#!/usr/bin/env bash
# A throwaway 3-node RabbitMQ cluster on loopback, for the fault-injection tests and for trying
# quorum queues by hand. Each node runs the broker's own scripts with the cluster's HOME (Erlang
# cookie), config, data and log directories, so no other broker here is touched.
#
#   scripts/cluster.sh [--broker 3.10|4.0|4.3] COMMAND
#
#   up             start r1..r3@localhost and join them (about 20 s)
#   down           stop every node and delete the cluster's directory
#   kill NODE      kill -9 a node (r1, r2 or r3) and wait until it is gone
#   start NODE     start a stopped or killed node again; it rejoins
#   restart NODE   stop_app then start_app (a clean broker restart)
#   status         the nodes, and which are running
#   leader QUEUE   the node that leads a quorum queue (on the default vhost)
#   urls           the AMQP URLs of the nodes, comma-separated
#   tls-url        r1's amqps:// URL, client certificate required (CA, cert, key in DIR/tls)
#   dir            the cluster's directory (DIR), as this machine sees it
#   alarm NODE on|off   raise or clear a memory alarm (blocks publishers)
#   rebalance      move quorum queue leaders evenly across the running nodes
#
# --broker (env CLUSTER_BROKER; the flag wins) picks the RabbitMQ line, 3.10 by default:
#
#   broker  binaries         directory (DIR)                       AMQP, TLS        epmd
#   3.10    the machine's    /tmp/productionorder-cluster          5701-5703, 5711  4369
#   4.0     the 4.0 chroot   <chroot>/tmp/productionorder-cluster  5721-5723, 5731  4370
#   4.3     the 4.3 chroot   <chroot>/tmp/productionorder-cluster  5741-5743, 5751  4371
#
# A 4.x cluster runs, as root, in the chroot that `scripts/services.sh --broker 4.x` builds (under
# RABBITMQ_CHROOTS, default ~/.cache/rabbitmq-chroots/<version>: build it first), on the epmd of
# services.sh's node there (the node names differ), and refuses the deprecated features
# services.sh's 4.x nodes refuse (transient non-exclusive queues, global QoS, queue master
# locators). No node has a plugin enabled (no management, no delayed-message exchange): the
# services run on the ttl retry backend. The lines' clusters can run side by side.
#
# Env: CLUSTER_DIR (3.10 only: the directory; on 4.x the path inside the chroot, default
# /tmp/productionorder-cluster), CLUSTER_PORT (r1's AMQP port: r2 and r3 take the next two, Erlang
# distribution PORT+20000.., r1's TLS listener PORT+10).
set -euo pipefail
# shellcheck source=scripts/_cluster_node.sh
source "$(dirname "${BASH_SOURCE[0]}")/_cluster_node.sh"

NODES=(r1 r2 r3)
BROKER=${CLUSTER_BROKER:-3.10}
broker_flag cluster.sh "$@"
set -- "${ARGS[@]}"

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

BIN=/usr/lib/rabbitmq/bin
case "$BROKER" in
  3.10)
    DIR=${CLUSTER_DIR:-/tmp/productionorder-cluster}
    PORT=${CLUSTER_PORT:-5701}
    # The nodes see the same paths as this script, and need nothing else.
    NODE_DIR=$DIR
    LAUNCH=()
    [ -x "$BIN/rabbitmq-server" ] || die "$BIN/rabbitmq-server not found: install rabbitmq-server"
    ;;
  4.0 | 4.3)
    broker_chroot "$BROKER"
    # The paths the nodes see are inside the chroot; this script reaches them under $CHROOT.
    NODE_DIR=${CLUSTER_DIR:-/tmp/productionorder-cluster}
    DIR=$CHROOT$NODE_DIR
    case "$BROKER" in
      4.0) PORT=${CLUSTER_PORT:-5721} epmd_port=4370 ;;
      4.3) PORT=${CLUSTER_PORT:-5741} epmd_port=4371 ;;
    esac
    # As services.sh runs its node's tools: in the chroot, with no environment of ours.
    LAUNCH=(chroot "$CHROOT" /usr/bin/env -i
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
      ERL_EPMD_PORT="$epmd_port")
    ;;
  *)
    die "--broker $BROKER: no such broker here (3.10 is the machine's; 4.0 and 4.3 run in a chroot)"
    ;;
esac

index_of() {
  case "$1" in
    r1) echo 0 ;;
    r2) echo 1 ;;
    r3) echo 2 ;;
    *) die "unknown node '$1' (expected r1, r2 or r3)" ;;
  esac
}

amqp_port() { echo $((PORT + $(index_of "$1"))); }

name_of() { echo "$1@localhost"; }
amqp_address() { echo "127.0.0.1:$(amqp_port "$1")"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Runs one of the package's scripts as node $1, with the cluster's own environment.
as_node() {
  local node=$1 tool=$2
  shift 2
  local i NODE_ENV
  i=$(index_of "$node")
  node_env "$NODE_DIR" "$node"
  "${LAUNCH[@]}" env "${NODE_ENV[@]}" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$((PORT + i)) \
    RABBITMQ_DIST_PORT=$((PORT + 20000 + i)) \
    "$BIN/$tool" "$@"
}

# A throwaway CA, a server certificate for localhost and a client certificate, for amqps://.
make_certificates() {
  local tls="$DIR/tls"
  [ -f "$tls/client.pem" ] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the TLS listener"
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=productionorder test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
    for name in server client; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$name.key" -out "$name.csr" 2>/dev/null
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile server.ext -out "$name.pem" 2>/dev/null
    done
    chmod 644 ./*.pem ./*.key
  )
}

prepare() {
  mkdir -p "$DIR"
  make_certificates
  make_cookie
  printf 'ERL_EPMD_ADDRESS=127.0.0.1\n' >"$DIR/rabbitmq-env.conf"
  # At-least-once dead-lettering re-sends a dead letter whose confirm was lost (its target's
  # leader died) only after this timeout: 3 minutes by default, 5 s here.
  printf '[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 5000}]}].\n' \
    >"$DIR/advanced.config"
  local node
  for node in "${NODES[@]}"; do
    node_files "$node"
    cat >"$DIR/$node/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$node")
loopback_users = none
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 50MB
EOF
    if [ "$node" = r1 ]; then
      cat >>"$DIR/$node/rabbitmq.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$((PORT + 10))
ssl_options.cacertfile = $NODE_DIR/tls/ca.pem
ssl_options.certfile = $NODE_DIR/tls/server.pem
ssl_options.keyfile = $NODE_DIR/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
EOF
    fi
    if [ "$BROKER" != 3.10 ]; then
      # As scripts/services.sh's 4.x nodes: a deprecated feature a client uses is refused.
      refused_deprecated_features >>"$DIR/$node/rabbitmq.conf"
    fi
  done
}

start_node() {
  local node=$1
  running "$node" && return 0
  [ "$BROKER" = 3.10 ] || mount_chroot_proc
  boot_node "$node"
}

up() {
  prepare
  local node
  for node in "${NODES[@]}"; do
    port_open "$(amqp_port "$node")" && ! running "$node" &&
      die "port $(amqp_port "$node") is taken by something else; set CLUSTER_PORT"
  done
  # Boot all three at once (the slow part), then join r2 and r3 to r1.
  local pids=()
  for node in "${NODES[@]}"; do
    start_node "$node" &
    pids+=($!)
  done
  local pid
  for pid in "${pids[@]}"; do wait "$pid"; done
  for node in r2 r3; do
    if ! ctl "$node" cluster_status --formatter json 2>/dev/null | grep -q 'r1@localhost'; then
      ctl "$node" stop_app >/dev/null
      ctl "$node" join_cluster r1@localhost >/dev/null
      ctl "$node" start_app >/dev/null
    fi
  done
  echo "cluster up: $(urls)"
}

down() {
  local node
  for node in "${NODES[@]}"; do
    if running "$node"; then
      ctl "$node" stop >/dev/null 2>&1 || kill -9 "$(pid_of "$node")" 2>/dev/null || true
    fi
  done
  for node in "${NODES[@]}"; do
    local pid
    pid=$(pid_of "$node") || continue
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  done
  rm -rf "$DIR"
  echo "cluster down"
}

kill_node() {
  local node=$1 pid
  pid=$(pid_of "$node") || die "$node has no pid file: is it running?"
  kill -9 "$pid" 2>/dev/null || true
  # A killed node lingers for a moment (its port and Erlang name): wait until both are free.
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null && ! port_open "$(amqp_port "$node")"; then
      echo "$node killed"
      return 0
    fi
    sleep 0.1
  done
  die "$node (pid $pid) did not go away"
}

status() {
  local node
  for node in "${NODES[@]}"; do
    if running "$node"; then
      echo "$node@localhost  running  amqp://$(amqp_address "$node")"
    else
      echo "$node@localhost  stopped"
    fi
  done
}

leader() {
  local queue=$1 node
  for node in "${NODES[@]}"; do
    running "$node" || continue
    queue_leader_on "$node" "$queue" && return 0
  done
  die "no running node knows a quorum queue named $queue"
}

alarm() {
  local node=$1 state=$2
  case "$state" in
    on) ctl "$node" eval "rabbit_alarm:set_alarm({{resource_limit, memory, '$node@localhost'}, []})." >/dev/null ;;
    off) ctl "$node" eval "rabbit_alarm:clear_alarm({resource_limit, memory, '$node@localhost'})." >/dev/null ;;
    *) die "alarm takes on or off, got '$state'" ;;
  esac
  echo "memory alarm $state on $node"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kill) kill_node "${2:?kill needs a node: r1, r2 or r3}" ;;
  start)
    start_node "${2:?start needs a node: r1, r2 or r3}"
    echo "${2} started"
    ;;
  restart)
    ctl "${2:?restart needs a node}" stop_app >/dev/null
    ctl "$2" start_app >/dev/null
    echo "${2} restarted"
    ;;
  status) status ;;
  leader) leader "${2:?leader needs a queue name}" ;;
  urls) urls ;;
  rebalance)
    for node in "${NODES[@]}"; do
      running "$node" || continue
      as_node "$node" rabbitmq-queues -n "$node@localhost" rebalance quorum >/dev/null
      echo "quorum leaders rebalanced"
      exit 0
    done
    die "no node is running"
    ;;
  tls-url) echo "amqps://guest:guest@localhost:$((PORT + 10))" ;;
  dir) echo "$DIR" ;;
  alarm) alarm "${2:?alarm needs a node}" "${3:?alarm needs on or off}" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
