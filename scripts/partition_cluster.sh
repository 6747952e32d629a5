#!/usr/bin/env bash
# A throwaway 3-node RabbitMQ cluster whose nodes sit in network namespaces of their own, on one
# bridge, so that a node can be cut off while it keeps running, as a real network does it (the
# partition cases of the fault suite, faults/partition.ts). Needs root (ip netns, veth, bridge, tc);
# scripts/cluster.sh is the same cluster on loopback, for the faults that kill or restart a node.
#
#   scripts/partition_cluster.sh [--broker 3.10|4.0|4.3] COMMAND
#
# --broker (env PARTITION_BROKER; the flag wins) picks the RabbitMQ line: the machine's 3.10, or
# the one `scripts/services.sh --broker 4.x` built in its chroot (as root, under RABBITMQ_CHROOTS;
# build it first). Given neither, the line of the cluster that is up (`up` notes it in
# /tmp/productionorder-partition.broker, `down` removes the note), else 3.10; `up` refuses a line
# other than the one up. A 4.x node runs that chroot's binaries in its namespace, with
# its directory inside the chroot (PARTITION_DIR is the path there), the node names bound over the
# chroot's /etc/hosts for that node alone, and the deprecated features services.sh's 4.x nodes
# refuse refused. RabbitMQ 4.3 keeps its metadata (queues, their leaders) in Khepri, a Raft store
# a majority writes without the cut node; 3.10 and 4.0 (unless khepri_db is enabled) in Mnesia.
# One line's cluster at a time: they share the namespaces, the bridge and the addresses.
#
#   up                 namespaces, bridge and links; start r1..r3 and join them (about 30 s)
#   down               stop everything it started and remove every namespace, link, bridge, route
#                      and file it made (also after a failed up; running it twice is fine)
#   cut NODE           cut NODE (r1, r2, r3) off both ways: its link leaves the bridge
#   cut-one-way NODE   NODE can send, not receive: the bridge stops forwarding frames to it
#   degrade NODE [RATE [LATENCY]]
#                      a slow, lossy link: tbf on both ends of NODE's link, RATE (default
#                      256kbit) with a queue bound of LATENCY (default 200ms): what waits longer is
#                      dropped (netem is not available here: see docs/guarantees.md)
#   heal [NODE]        undo cut, cut-one-way and degrade (of NODE, or of every node)
#   recover NODE       wait (up to 90 s) until NODE runs RabbitMQ again after a heal; a boot hung in
#                      global:sync for 30 s is unblocked by disconnecting NODE from its peers, and
#                      said so (RabbitMQ 3.10.8 on Erlang 25: see docs/guarantees.md)
#   link-stats NODE    packets sent and dropped by the tbf of NODE's link: "to N D" and "from N D"
#   leader QUEUE       the node that leads a quorum queue, as the nodes that are not cut off see it
#   rebalance          move quorum queue leaders evenly across the nodes (as scripts/cluster.sh)
#   transfer-leader QUEUE
#                      move a quorum queue's leadership to another node that is not cut off
#   status             the nodes, their faults, and each one's view of the cluster
#   ticktime           the cluster's net_ticktime in seconds, as r1 reports it
#   metadata-store     where the cluster keeps queues and their leaders: khepri or mnesia (r1's word)
#   ctl NODE ARGS...   rabbitmqctl against NODE, from its namespace (`ctl r2 list_queues`, or
#                      `ctl r2 eval 'EXPR.'` to look into a node during a fault)
#   urls               the AMQP URLs of the nodes, comma-separated
#   netns              the services' namespace: run them with `ip netns exec $(... netns) CMD`
#   postgres           HOST:PORT where the services reach PostgreSQL (a forwarder on the bridge)
#   dir                the cluster's directory
#
# Layout (a /24 on a Linux bridge; every node runs its own epmd in its own namespace):
#
#   namespace     address        node       AMQP
#   popt-r1       10.77.0.11     r1@pt1     10.77.0.11:5672
#   popt-r2       10.77.0.12     r2@pt2     10.77.0.12:5672
#   popt-r3       10.77.0.13     r3@pt3     10.77.0.13:5672
#   popt-svc      10.77.0.20     the services
#   (this one)    10.77.0.1      the bridge popt-br; the PostgreSQL forwarder listens here
#
# The node names resolve through /etc/netns/<namespace>/hosts (ip netns exec mounts it over
# /etc/hosts), so the machine's /etc/hosts is never touched. Every address has a permanent
# neighbour entry everywhere, so that no ARP is needed: a node cut one way keeps sending.
#
# The cluster runs with cluster_partition_handling = pause_minority and net_ticktime 10 (env
# PARTITION_NET_TICKTIME; RabbitMQ's default is 60): a node cut off for 20 s is then seen as down
# by the others (after 0.75 to 1.25 times net_ticktime: 7.5-12.5 s) and pauses itself, as it would
# in a longer outage. On 3.10 the majority serves a queue the cut node led only once it takes that
# node for down, so this setting bounds how soon the flow resumes after a cut (docs/guarantees.md,
# "Network partitions"). Env: PARTITION_DIR (default /tmp/productionorder-partition),
# PARTITION_POSTGRES (host:port the forwarder reaches, default 127.0.0.1:5432).
set -euo pipefail
# shellcheck source=scripts/_cluster_node.sh
source "$(dirname "${BASH_SOURCE[0]}")/_cluster_node.sh"

NODES=(r1 r2 r3)
# The line of the cluster that is up, noted by up.
BROKER_NOTE=/tmp/productionorder-partition.broker
UP_BROKER=$(cat "$BROKER_NOTE" 2>/dev/null || true)
BROKER=${PARTITION_BROKER:-${UP_BROKER:-3.10}}
broker_flag partition_cluster.sh "$@"
set -- "${ARGS[@]}"
TICKTIME=${PARTITION_NET_TICKTIME:-10}
POSTGRES=${PARTITION_POSTGRES:-127.0.0.1:5432}
BIN=/usr/lib/rabbitmq/bin
PREFIX=popt
BRIDGE=$PREFIX-br
SUBNET=10.77.0
HOST_IP=$SUBNET.1
SVC_NS=$PREFIX-svc
SVC_IP=$SUBNET.20
AMQP_PORT=5672
PG_PORT=5432
BRIDGE_MAC=02:77:00:00:00:01

die() {
  echo "partition_cluster.sh: $*" >&2
  exit 1
}

# NODE_DIR: the cluster's directory as the nodes see it; DIR: as this script reaches it. CHROOT:
# where a 4.x node's tools run (empty on 3.10).
case "$BROKER" in
  3.10)
    DIR=${PARTITION_DIR:-/tmp/productionorder-partition}
    NODE_DIR=$DIR
    CHROOT=""
    [ -x "$BIN/rabbitmq-server" ] || die "$BIN/rabbitmq-server not found: install rabbitmq-server"
    ;;
  4.0 | 4.3)
    broker_chroot "$BROKER"
    NODE_DIR=${PARTITION_DIR:-/tmp/productionorder-partition}
    DIR=$CHROOT$NODE_DIR
    ;;
  *)
    die "--broker $BROKER: no such broker here (3.10 is the machine's; 4.0 and 4.3 run in a chroot)"
    ;;
esac

index_of() {
  case "$1" in
    r1) echo 1 ;;
    r2) echo 2 ;;
    r3) echo 3 ;;
    *) die "unknown node '$1' (expected r1, r2 or r3)" ;;
  esac
}

ns_of() { echo "$PREFIX-$1"; }
ip_of() { echo "$SUBNET.$((10 + $(index_of "$1")))"; }
host_of() { echo "pt$(index_of "$1")"; }
name_of() { echo "$1@$(host_of "$1")"; }
amqp_address() { echo "$(ip_of "$1"):$AMQP_PORT"; }
# The host's end of a node's link (the node's end is eth0 in its namespace).
link_of() { echo "$PREFIX-$1h"; }
# Every namespace this script makes: the nodes' and the services'.
all_ns() {
  local node
  for node in "${NODES[@]}"; do ns_of "$node"; done
  echo "$SVC_NS"
}

need_root() {
  [ "$(id -u)" = 0 ] || die "network namespaces need root"
  command -v ip >/dev/null && command -v bridge >/dev/null && command -v tc >/dev/null ||
    die "ip, bridge and tc (iproute2) are needed"
}

in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# A command of as_node or ctl that must not wait for good on a node that does not answer (a CLI
# tool talks to a node cut off or paused only until its own timeouts, which can take minutes).
CTL_TIMEOUT=()

# Runs one of the package's scripts as node $1, in its namespace, with the cluster's environment.
# ip netns exec gives the command a mount namespace of its own (and mounts the namespace's hosts
# file over /etc/hosts): on 4.x the same file is bound over the chroot's, there and only there, and
# the tool runs in the chroot with no environment of ours.
as_node() {
  local node=$1 tool=$2
  shift 2
  local NODE_ENV ns
  ns=$(ns_of "$node")
  node_env "$NODE_DIR" "$node"
  local command=(env "${NODE_ENV[@]}" RABBITMQ_NODE_PORT=$AMQP_PORT "$BIN/$tool" "$@")
  if [ -z "$CHROOT" ]; then
    "${CTL_TIMEOUT[@]}" ip netns exec "$ns" "${command[@]}"
  else
    # shellcheck disable=SC2016 # expanded by the inner shell
    "${CTL_TIMEOUT[@]}" ip netns exec "$ns" bash -c \
      'mount --bind "$1" "$2/etc/hosts" && root=$2 && shift 2 && exec chroot "$root" "$@"' \
      as_node "/etc/netns/$ns/hosts" "$CHROOT" /usr/bin/env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      "${command[@]}"
  fi
}

mac_of_ns() { in_ns "$1" cat /sys/class/net/eth0/address; }

network_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  # A bridge takes the lowest MAC address of its links unless given one: a node's link leaving it
  # (cut) could change the bridge's address, and every namespace's permanent entry for it would
  # then point nowhere: the services would lose PostgreSQL (behind the bridge's address) along
  # with the node. A fixed, locally administered address does not move.
  ip link set "$BRIDGE" address "$BRIDGE_MAC"
  ip addr replace "$HOST_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local node ns link address
  for ns in $(all_ns); do
    ip netns list | grep -qw "$ns" || ip netns add "$ns"
    in_ns "$ns" ip link set lo up
  done
  for node in "${NODES[@]}" svc; do
    if [ "$node" = svc ]; then
      ns=$SVC_NS link=$PREFIX-svch address=$SVC_IP
    else
      ns=$(ns_of "$node") link=$(link_of "$node") address=$(ip_of "$node")
    fi
    if ! ip link show "$link" >/dev/null 2>&1; then
      ip link add "$link" type veth peer name eth0 netns "$ns"
    fi
    ip link set "$link" master "$BRIDGE" up
    in_ns "$ns" ip addr replace "$address/24" dev eth0
    in_ns "$ns" ip link set eth0 up
  done
  # Permanent neighbour entries everywhere: a node cut one way must keep sending, and it could not
  # once its ARP entries expired (the answers would not reach it).
  local -A macs=([$HOST_IP]=$(cat "/sys/class/net/$BRIDGE/address") [$SVC_IP]=$(mac_of_ns "$SVC_NS"))
  for node in "${NODES[@]}"; do macs[$(ip_of "$node")]=$(mac_of_ns "$(ns_of "$node")"); done
  local target
  for target in "${!macs[@]}"; do
    [ "$target" = "$HOST_IP" ] ||
      ip neigh replace "$target" lladdr "${macs[$target]}" dev "$BRIDGE" nud permanent
    for ns in $(all_ns); do
      in_ns "$ns" ip neigh replace "$target" lladdr "${macs[$target]}" dev eth0 nud permanent
    done
  done
  # The node names, in every namespace (ip netns exec mounts these over /etc/hosts).
  for ns in $(all_ns); do
    mkdir -p "/etc/netns/$ns"
    {
      echo "127.0.0.1 localhost"
      for node in "${NODES[@]}"; do echo "$(ip_of "$node") $(host_of "$node")"; done
    } >"/etc/netns/$ns/hosts"
  done
}

# PostgreSQL listens on the machine's loopback, which no namespace reaches: a forwarder on the
# bridge's address passes the services' connections on to it.
postgres_forwarder() {
  local pid_file=$DIR/postgres-forwarder.pid
  if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then return 0; fi
  command -v socat >/dev/null || die "socat is needed for the PostgreSQL forwarder"
  setsid socat "TCP-LISTEN:$PG_PORT,bind=$HOST_IP,fork,reuseaddr" "TCP:$POSTGRES" \
    </dev/null >>"$DIR/postgres-forwarder.log" 2>&1 &
  echo $! >"$pid_file"
  local _
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/$HOST_IP/$PG_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  die "the PostgreSQL forwarder does not listen on $HOST_IP:$PG_PORT"
}

prepare() {
  mkdir -p "$DIR/state"
  make_cookie
  : >"$DIR/rabbitmq-env.conf"
  # As scripts/cluster.sh: a dead letter whose confirm was lost is sent again after 5 s (not 3 min).
  cat >"$DIR/advanced.config" <<EOF
[{kernel, [{net_ticktime, $TICKTIME}]},
 {rabbit, [{dead_letter_worker_publisher_confirm_timeout, 5000}]}].
EOF
  local node
  for node in "${NODES[@]}"; do
    node_files "$node"
    cat >"$DIR/$node/rabbitmq.conf" <<EOF
listeners.tcp.default = $AMQP_PORT
loopback_users = none
cluster_partition_handling = pause_minority
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 50MB
EOF
    [ -z "$CHROOT" ] || refused_deprecated_features >>"$DIR/$node/rabbitmq.conf"
  done
}

start_node() {
  local node=$1
  running "$node" && return 0
  boot_node "$node"
}

up() {
  need_root
  [ -z "$UP_BROKER" ] || [ "$UP_BROKER" = "$BROKER" ] ||
    die "a RabbitMQ $UP_BROKER cluster is up: take it down first (scripts/partition_cluster.sh down)"
  # An up that fails half way leaves nothing behind.
  trap 'echo "partition_cluster.sh: up failed: removing what it made" >&2; down >/dev/null 2>&1' EXIT
  echo "$BROKER" >"$BROKER_NOTE"
  prepare
  network_up
  postgres_forwarder
  # Once, before the nodes start side by side.
  [ -z "$CHROOT" ] || mount_chroot_proc
  local node pids=() pid
  for node in "${NODES[@]}"; do
    start_node "$node" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a node did not start"; done
  for node in r2 r3; do
    if ! ctl "$node" cluster_status --formatter json 2>/dev/null | grep -q 'r1@pt1'; then
      {
        ctl "$node" stop_app
        ctl "$node" join_cluster r1@pt1
        ctl "$node" start_app
      } >>"$DIR/$node/log/start.out" 2>&1 || die "$node did not join r1 (see $DIR/$node/log)"
    fi
  done
  trap - EXIT
  echo "cluster up: $(urls)"
}

down() {
  need_root
  local node ns pid
  heal_all 2>/dev/null || true
  for node in "${NODES[@]}"; do
    ip netns list | grep -qw "$(ns_of "$node")" || continue
    running "$node" && { ctl "$node" stop >/dev/null 2>&1 || true; }
  done
  # Whatever still runs in a namespace of ours (epmd, a node that did not stop, services) is ours.
  for ns in $(all_ns); do
    ip netns list | grep -qw "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  done
  if [ -s "$DIR/postgres-forwarder.pid" ]; then
    kill "$(cat "$DIR/postgres-forwarder.pid")" 2>/dev/null || true
  fi
  for ns in $(all_ns); do
    ip netns list | grep -qw "$ns" && ip netns del "$ns"
    rm -rf "/etc/netns/$ns"
  done
  rmdir /etc/netns 2>/dev/null || true
  for node in "${NODES[@]}" svc; do ip link del "$PREFIX-${node}h" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$DIR"
  rm -f "$BROKER_NOTE"
  echo "cluster down"
}

cut() {
  local node=$1
  ip link set "$(link_of "$node")" nomaster
  touch "$DIR/state/$node.cut"
  echo "$node cut off"
}

# The bridge stops sending frames to the node's port: it learns no address there, floods nothing
# there, and forgets the node's address. Frames from the node still go everywhere.
cut_one_way() {
  local node=$1 link mac
  link=$(link_of "$node")
  mac=$(mac_of_ns "$(ns_of "$node")")
  bridge link set dev "$link" learning off flood off mcast_flood off bcast_flood off
  bridge fdb del "$mac" dev "$link" master 2>/dev/null || true
  touch "$DIR/state/$node.one-way"
  echo "$node cut off one way: it sends, it does not receive"
}

degrade() {
  local node=$1 rate=${2:-256kbit} latency=${3:-200ms}
  local spec=(root tbf rate "$rate" burst 4kb latency "$latency")
  tc qdisc replace dev "$(link_of "$node")" "${spec[@]}"
  in_ns "$(ns_of "$node")" tc qdisc replace dev eth0 "${spec[@]}"
  touch "$DIR/state/$node.degraded"
  echo "$node degraded: tbf rate $rate, latency bound $latency, both ways"
}

heal() {
  local node=$1 link
  link=$(link_of "$node")
  ip link show "$link" >/dev/null 2>&1 || return 0
  ip link set "$link" master "$BRIDGE"
  bridge link set dev "$link" learning on flood on mcast_flood on bcast_flood on
  tc qdisc del dev "$link" root 2>/dev/null || true
  in_ns "$(ns_of "$node")" tc qdisc del dev eth0 root 2>/dev/null || true
  rm -f "$DIR/state/$node".*
  echo "$node healed"
}

heal_all() {
  local node
  for node in "${NODES[@]}"; do heal "$node"; done
}

rabbit_running() {
  local CTL_TIMEOUT=(timeout 20)
  [ "$(ctl "$1" eval 'rabbit:is_running().' 2>/dev/null)" = true ]
}

recover() {
  local node=$1 started=$SECONDS remedied=""
  until rabbit_running "$node"; do
    if [ $((SECONDS - started)) -ge 30 ] && [ -z "$remedied" ]; then
      # RabbitMQ 3.10.8 on Erlang 25: the paused node's boot can wait in global:sync for good
      # after the partition heals (its peers' global thinks they synced already); RabbitMQ's own
      # "global hang workaround" does not always help. A new connection makes global sync again.
      ctl "$node" eval '[erlang:disconnect_node(N) || N <- nodes()].' >/dev/null 2>&1 || true
      remedied=1
    fi
    [ $((SECONDS - started)) -lt 90 ] || die "$node does not run RabbitMQ 90 s after the heal"
    sleep 1
  done
  if [ -n "$remedied" ]; then
    echo "$node running after $((SECONDS - started)) s; its boot hung in global:sync: disconnected it from its peers"
  else
    echo "$node running after $((SECONDS - started)) s"
  fi
}

# tc's counters of the node's link, both ends: "to SENT DROPPED" (towards the node, the bridge's
# end) and "from SENT DROPPED" (from the node, its own end).
link_stats() {
  local node=$1
  tc -s qdisc show dev "$(link_of "$node")" |
    sed -n 's/.*Sent [0-9]* bytes \([0-9]*\) pkt (dropped \([0-9]*\),.*/to \1 \2/p' | head -n 1
  in_ns "$(ns_of "$node")" tc -s qdisc show dev eth0 |
    sed -n 's/.*Sent [0-9]* bytes \([0-9]*\) pkt (dropped \([0-9]*\),.*/from \1 \2/p' | head -n 1
}

faults_of() {
  local node=$1 file list=()
  for file in "$DIR/state/$node".*; do [ -e "$file" ] && list+=("${file##*.}"); done
  echo "${list[*]:-}"
}

leader() {
  local queue=$1 node ordered=() CTL_TIMEOUT=(timeout 20)
  # The nodes not cut off first: a node on the minority side answers from its own stale view.
  for node in "${NODES[@]}"; do [ -z "$(faults_of "$node")" ] && ordered+=("$node"); done
  for node in "${NODES[@]}"; do [ -n "$(faults_of "$node")" ] && ordered+=("$node"); done
  for node in "${ordered[@]}"; do
    running "$node" || continue
    queue_leader_on "$node" "$queue" && return 0
  done
  die "no running node knows a quorum queue named $queue"
}

transfer_leader() {
  local queue=$1 from to="" node
  from=$(leader "$queue")
  for node in "${NODES[@]}"; do
    if [ "$node" != "$from" ] && [ -z "$(faults_of "$node")" ] && running "$node"; then
      to=$node
      break
    fi
  done
  [ -n "$to" ] || die "no node to move $queue's leader to"
  # The queue's Ra name from its record (3.10 and 4.x name it differently).
  local CTL_TIMEOUT=(timeout 30)
  ctl "$from" eval "{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"$queue\">>)),
    {Name, _} = amqqueue:get_pid(Q),
    ra:transfer_leadership({Name, '$(name_of "$from")'}, {Name, '$(name_of "$to")'})." >/dev/null ||
    die "cannot move $queue's leader from $from to $to"
  echo "$queue: leader moved from $from to $to"
}

status() {
  local node faults CTL_TIMEOUT=(timeout 15)
  for node in "${NODES[@]}"; do
    faults=$(faults_of "$node")
    if running "$node"; then
      echo "$node@$(host_of "$node")  running  amqp://$(amqp_address "$node")  ${faults:-connected}"
      ctl "$node" cluster_status --formatter json 2>/dev/null |
        sed -n 's/.*"running_nodes":\(\[[^]]*\]\).*/  sees running: \1/p' || true
    else
      echo "$node@$(host_of "$node")  stopped"
    fi
  done
}

node_arg() {
  index_of "${1:?$2 needs a node: r1, r2 or r3}" >/dev/null
  [ -d "$DIR/state" ] || die "the cluster is not up (scripts/partition_cluster.sh up)"
  echo "$1"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  cut) need_root && cut "$(node_arg "${2:-}" cut)" ;;
  cut-one-way) need_root && cut_one_way "$(node_arg "${2:-}" cut-one-way)" ;;
  degrade) need_root && degrade "$(node_arg "${2:-}" degrade)" "${3:-256kbit}" "${4:-200ms}" ;;
  heal)
    need_root
    if [ -n "${2:-}" ]; then heal "$(node_arg "$2" heal)"; else heal_all; fi
    ;;
  recover) recover "$(node_arg "${2:-}" recover)" ;;
  link-stats) need_root && link_stats "$(node_arg "${2:-}" link-stats)" ;;
  leader) leader "${2:?leader needs a queue name}" ;;
  transfer-leader) transfer_leader "${2:?transfer-leader needs a queue name}" ;;
  rebalance)
    for node in "${NODES[@]}"; do
      [ -z "$(faults_of "$node")" ] && running "$node" || continue
      as_node "$node" rabbitmq-queues -n "$node@$(host_of "$node")" rebalance quorum >/dev/null
      echo "quorum leaders rebalanced"
      exit 0
    done
    die "no node is running"
    ;;
  status) status ;;
  ticktime)
    CTL_TIMEOUT=(timeout 20)
    ctl r1 eval 'net_kernel:get_net_ticktime().'
    ;;
  metadata-store)
    # 3.10 has no Khepri at all.
    CTL_TIMEOUT=(timeout 20)
    if [ "$BROKER" = 3.10 ]; then
      echo mnesia
    else
      ctl r1 eval 'case rabbit_khepri:is_enabled() of true -> khepri; false -> mnesia end.'
    fi
    ;;
  ctl)
    node=$(node_arg "${2:-}" ctl)
    shift 2
    ctl "$node" "$@"
    ;;
  urls) urls ;;
  netns) echo "$SVC_NS" ;;
  postgres) echo "$HOST_IP:$PG_PORT" ;;
  dir) echo "$DIR" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
