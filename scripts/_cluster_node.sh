# shellcheck shell=bash
# A node of the throwaway 3-node RabbitMQ clusters, however it is reached: its files, the
# environment the package's scripts run it with, its start-up, what it answers. Sourced by
# scripts/cluster.sh (nodes on loopback) and scripts/partition_cluster.sh (nodes in network
# namespaces), which define what differs:
#
#   NODES                    the nodes (r1 r2 r3)
#   DIR                      the cluster's directory, as the sourcing script sees it
#   die MESSAGE              print MESSAGE and exit
#   name_of NODE             NODE's Erlang name (r1@localhost, r1@pt1)
#   amqp_address NODE        HOST:PORT where NODE listens for AMQP clients
#   as_node NODE TOOL ARGS   run one of the package's scripts as NODE (with node_env)

# broker_flag SCRIPT ARGS...: sets BROKER from ARGS' leading `--broker V` or `--broker=V` (the last
# one wins; without one BROKER is left as it is) and ARGS to what follows them. SCRIPT names the
# script in the message of a `--broker` without a version (exit 2).
broker_flag() {
  local script=$1
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --broker)
        [ $# -ge 2 ] || { echo "$script: --broker needs a version: 3.10, 4.0 or 4.3" >&2; exit 2; }
        BROKER=$2
        shift 2
        ;;
      --broker=*)
        BROKER=${1#--broker=}
        shift
        ;;
      *) break ;;
    esac
  done
  ARGS=("$@")
}

# The chroot where `scripts/services.sh --broker VERSION` built RabbitMQ VERSION (4.0, 4.3), checked:
# it must be built (its tools under BIN), and this must run as root. Sets CHROOT.
broker_chroot() {
  local version=$1 chroots
  chroots=${RABBITMQ_CHROOTS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/rabbitmq-chroots}
  CHROOT=$chroots/$version
  [ -f "$CHROOT/.services-built" ] && [ -x "$CHROOT$BIN/rabbitmq-server" ] ||
    die "no RabbitMQ $version in $CHROOT: build it with scripts/services.sh --broker $version"
  [ "$(id -u)" = 0 ] || die "a RabbitMQ $version cluster runs in a chroot: that needs root"
}

# A 4.x node in its chroot needs the chroot's /proc (services.sh mounts it, and it stays mounted).
mount_chroot_proc() {
  awk -v d="$CHROOT/proc" '$2 == d { found = 1 } END { exit !found }' /proc/mounts ||
    mount -t proc proc "$CHROOT/proc" || die "cannot mount /proc in $CHROOT"
}

# The lines of a 4.x node's rabbitmq.conf that refuse the deprecated features services.sh's 4.x
# nodes refuse (transient non-exclusive queues, global QoS, queue master locators).
refused_deprecated_features() {
  printf 'deprecated_features.permit.%s = false\n' transient_nonexcl_queues global_qos \
    queue_master_locator
}

# The Erlang cookie every node reads from its HOME (DIR), made once.
make_cookie() {
  [ -f "$DIR/.erlang.cookie" ] && return 0
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/.erlang.cookie"
  chmod 400 "$DIR/.erlang.cookie"
}

# NODE's directories (Mnesia, logs) and its plugins file, which enables none.
node_files() {
  local node=$1
  mkdir -p "$DIR/$node/mnesia" "$DIR/$node/log"
  echo '[].' >"$DIR/$node/enabled_plugins"
}

# node_env HOME NODE: sets NODE_ENV (declare it local first) to the env assignments that make the
# package's scripts run as NODE, with the cluster's files under HOME, the directory as the node
# sees it (DIR, or its path inside a chroot).
node_env() {
  local d=$1 node=$2
  NODE_ENV=(HOME="$d"
    RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
    RABBITMQ_NODENAME="$(name_of "$node")"
    RABBITMQ_CONFIG_FILE="$d/$node/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/$node/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$d/$node/mnesia"
    RABBITMQ_LOG_BASE="$d/$node/log"
    RABBITMQ_PID_FILE="$d/$node/pid")
}

ctl() {
  local node=$1
  shift
  as_node "$node" rabbitmqctl -n "$(name_of "$node")" "$@"
}

pid_of() {
  local file="$DIR/$1/pid"
  [ -s "$file" ] && cat "$file"
}

running() {
  local pid
  pid=$(pid_of "$1") || return 1
  kill -0 "$pid" 2>/dev/null
}

# Starts NODE detached (its output in DIR/NODE/log/start.out) and waits until it has booted.
boot_node() {
  local node=$1
  rm -f "$DIR/$node/pid"
  as_node "$node" rabbitmq-server -detached >>"$DIR/$node/log/start.out" 2>&1 ||
    die "$node did not start (see $DIR/$node/log)"
  # await_startup needs the pid file, which the node writes a moment after it is launched.
  local _
  for _ in $(seq 1 300); do
    [ -s "$DIR/$node/pid" ] && break
    sleep 0.1
  done
  ctl "$node" await_startup --timeout 120 >/dev/null ||
    die "$node did not finish booting (see $DIR/$node/log)"
}

# The node (r1, r2 or r3) that NODE sees leading the quorum queue QUEUE (on the default vhost);
# fails if NODE knows no such queue.
queue_leader_on() {
  local node=$1 queue=$2
  ctl "$node" list_queues name leader --no-table-headers --quiet 2>/dev/null |
    awk -v q="$queue" '$1 == q { sub(/@.*/, "", $2); print $2; found = 1 } END { exit !found }'
}

# The AMQP URLs of the nodes, comma-separated.
urls() {
  local node list=()
  for node in "${NODES[@]}"; do list+=("amqp://guest:guest@$(amqp_address "$node")"); done
  (
    IFS=,
    echo "${list[*]}"
  )
}
