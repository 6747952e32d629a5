#!/usr/bin/env bash
# A throwaway PostgreSQL for tests that stop the database for real: its own data folder and port
# on 127.0.0.1, run as the postgres user, trust authentication, database "test". It never touches
# the machine's own cluster.
#
#   scripts/pg_scratch.sh up DIR PORT      initdb (once) and start; prints the URL
#   scripts/pg_scratch.sh stop DIR MODE    pg_ctl stop -m MODE (immediate, fast, smart)
#   scripts/pg_scratch.sh start DIR        start again after a stop
#   scripts/pg_scratch.sh down DIR         stop (immediate) and delete the folder
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "pg_scratch.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
cmd=${1:?usage: pg_scratch.sh up|stop|start|down DIR ...}
dir=${2:?usage: pg_scratch.sh $cmd DIR ...}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

case "$cmd" in
  up)
    port=${3:?usage: pg_scratch.sh up DIR PORT}
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      chown postgres: "$dir" 2>/dev/null || true
      as_postgres "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
      {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = on"
      } >>"$dir/postgresql.conf"
    fi
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atqc \
      "SELECT 1 FROM pg_database WHERE datname = 'test'" postgres | grep -q 1 ||
      as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
    echo "postgres://postgres@127.0.0.1:$port/test"
    ;;
  stop)
    as_postgres "$bin/pg_ctl" -D "$dir" -m "${3:-fast}" -w stop >/dev/null
    ;;
  start)
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    ;;
  down)
    as_postgres "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "pg_scratch.sh: unknown command $cmd (up, stop, start, down)" >&2
    exit 2
    ;;
esac
