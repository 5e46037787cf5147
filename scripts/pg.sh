#!/usr/bin/env bash
# pg.sh start|stop DIR PORT — a throwaway PostgreSQL cluster under DIR on
# 127.0.0.1:PORT, owned by the postgres user (initdb refuses root). Installs
# Debian's postgresql when it is missing. Idempotent: a running cluster is reused.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data dir}; port=${3:?port}
find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  return 1
}
if ! bin=$(find_bin); then
  echo "pg.sh: installing PostgreSQL from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  bin=$(find_bin)
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
case "$cmd" in
start)
  if [ ! -f "$dir/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync >/dev/null
  fi
  if as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then exit 0; fi
  as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: pg.sh start|stop DIR PORT" >&2; exit 2 ;;
esac
