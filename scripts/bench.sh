#!/usr/bin/env bash
# bench.sh — `make bench`: generate an accounts CSV file and import it three
# ways into equivalent typed tables (primary key on account_id) on one
# dedicated PostgreSQL cluster, then print rows/s and peak RSS of each and the
# ratios of Intake's throughput to the two psql baselines:
#   copy         psql \copy straight into the typed table (the floor)
#   copy+upsert  psql \copy into a staging table, then INSERT … ON CONFLICT DO UPDATE
#   intake       the all-in-one binary (embedded NATS, API, fetcher, mapper,
#                loader), a job created and run with intakectl
# Then it measures the mapping engine alone (cmd/intake-mapbench): the same
# rows written as a spreadsheet export writes them (MM/dd/yyyy dates, $1,234.56
# currency, 31,902 numbers), parsed and mapped on one core, against plain
# encoding/csv reading of that file.
# Last, it measures the scheduler (cmd/intake-schedbench): bin/intake scheduler
# and bin/intake api as separate processes on a nats-server, 10,000 enabled
# jobs ticking every minute; it prints tick lateness and the scheduler's RSS.
# See docs/benchmark.md for what is measured and how to read it.
#
# Usage: scripts/bench.sh [all|scheduler]
#   all        (the default, `make bench`) everything above
#   scheduler  only the scheduler benchmark (its own PostgreSQL database on
#              the same cluster; no CSV file, no import, no mapper)
#
# Environment:
#   BENCH_ROWS=1000000    rows in the generated file (e.g. BENCH_ROWS=50000 make bench)
#   BENCH_PG_PORT=5441    port of the benchmark's PostgreSQL cluster (.bench/pg)
#   BENCH_KEEP_PG=0       1 leaves the cluster running afterwards (to inspect the tables)
#   BENCH_SKIP_INTAKE=0   1 runs only the two psql paths (no ratios are printed)
#   BENCH_SKIP_MAPBENCH=0 1 skips the mapper benchmark
#   BENCH_SCHED_JOBS=10000 enabled jobs of the scheduler benchmark
#   BENCH_SKIP_SCHED=0    1 skips the scheduler benchmark
#   BENCH_FETCH_SIZES=200MB,2GB  file sizes of the fetch benchmark (cmd/intake-fetchbench)
#   BENCH_SKIP_FETCH=0    1 skips the fetch benchmark
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-all}
case "$mode" in
all) ;;
scheduler) BENCH_SKIP_INTAKE=1 BENCH_SKIP_MAPBENCH=1 BENCH_SKIP_SCHED=0 ;;
*) echo "usage: scripts/bench.sh [all|scheduler]" >&2; exit 2 ;;
esac
rows=${BENCH_ROWS:-1000000}
port=${BENCH_PG_PORT:-5441}
keep_pg=${BENCH_KEEP_PG:-0}
skip_intake=${BENCH_SKIP_INTAKE:-0}
skip_mapbench=${BENCH_SKIP_MAPBENCH:-0}
sched_jobs=${BENCH_SCHED_JOBS:-10000}
skip_sched=${BENCH_SKIP_SCHED:-0}
bench=$root/.bench
pgdir=$bench/pg
csv=$bench/accounts.csv
bin=$root/bin
base_url="postgres://postgres@127.0.0.1:$port"

die() { echo "bench: FAIL: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[[ $rows =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROWS must be a positive integer, got '$rows'"
[[ $port =~ ^[1-9][0-9]*$ ]] || die "BENCH_PG_PORT must be a port number, got '$port'"
[[ $sched_jobs =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCHED_JOBS must be a positive integer, got '$sched_jobs'"

# ---- tools -------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
  log "installing GNU time (peak RSS is read from /usr/bin/time -v)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null
fi
for tool in psql createdb dropdb go python3 bc pgrep; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

mkdir -p "$bench" "$bin"
if [ "$mode" = scheduler ]; then
  targets=()
elif [ "$skip_intake" = 1 ]; then
  targets=(./intake-benchgen)
else
  targets=(./intake ./intakectl ./intake-benchgen)
fi
if [ "$skip_mapbench" != 1 ]; then targets+=(./intake-mapbench); fi
if [ "$skip_sched" != 1 ]; then
  if [ "$skip_intake" = 1 ]; then targets+=(./intake); fi
  targets+=(./intake-schedbench)
fi
log "building ${targets[*]} into bin/"
(cd cmd && go build -o "$bin/" "${targets[@]}") || die "build failed"
if [ "$skip_sched" != 1 ]; then
  # The scheduler benchmark runs a real nats-server (the all-in-one binary
  # would add the API's memory to the scheduler's); the cmd module requires it.
  log "building nats-server into bin/"
  (cd cmd && go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2) || die "build of nats-server failed"
fi

# ---- cleanup -----------------------------------------------------------------
intake_time_pid=   # the /usr/bin/time process that runs bin/intake
sched_pid=         # bin/intake-schedbench (it stops its own servers)
cleanup() {
  local rc=$?
  if [ -n "$sched_pid" ] && kill -0 "$sched_pid" 2>/dev/null; then
    kill -TERM "$sched_pid" 2>/dev/null || true
    wait "$sched_pid" 2>/dev/null || true
  fi
  if [ -n "$intake_time_pid" ] && kill -0 "$intake_time_pid" 2>/dev/null; then
    local child
    child=$(pgrep -P "$intake_time_pid" || true)
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
    wait "$intake_time_pid" 2>/dev/null || true
  fi
  if [ "$keep_pg" != 1 ]; then
    scripts/pg.sh stop "$pgdir" "$port" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PostgreSQL and the file -------------------------------------------------
log "starting PostgreSQL in .bench/pg on 127.0.0.1:$port (fsync=off, synchronous_commit=off, full_page_writes=off)"
scripts/pg.sh start "$pgdir" "$port"
pg_version=$(psql -X -At "$base_url/postgres?sslmode=disable" -c "SHOW server_version")

if [ "$mode" = all ]; then # no file in scheduler mode
log "generating $rows rows into .bench/accounts.csv"
"$bin/intake-benchgen" -rows "$rows" -o "$csv"
csv_bytes=$(stat -c %s "$csv")
# Read the file once so that every path starts with it in the page cache.
cat "$csv" >/dev/null
fi

# The typed table: the very DDL of the migration that creates objects.accounts,
# so the psql paths write into the same columns, types and primary key as Intake.
objects_ddl=$(sed -n '/^-- +goose Up/,/^-- +goose Down/p' pkg/schema/migrations/00002_objects.sql | sed '/^-- +goose/d')
[ -n "$objects_ddl" ] || die "could not read the objects DDL from pkg/schema/migrations/00002_objects.sql"

# The 12 columns of the file, in file order.
cols="account_id, name, status, industry, region, employees, annual_revenue, mrr, is_active, created_date, renewal_date, notes"

fresh_db() { # fresh_db NAME — drop and create a database
  PGOPTIONS='-c client_min_messages=warning' dropdb --if-exists -h 127.0.0.1 -p "$port" -U postgres "$1"
  createdb -h 127.0.0.1 -p "$port" -U postgres "$1"
}
sql() { # sql DB SQL — run a statement, print unaligned output
  psql -X -q -At -v ON_ERROR_STOP=1 "$base_url/$1?sslmode=disable" -c "$2"
}
now() { date +%s.%N; }
peak_rss_kib() { # peak_rss_kib TIMEFILE
  local v
  v=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$1")
  [ -n "$v" ] || die "no peak RSS in $1"
  echo "$v"
}
# A canonical fingerprint of the 12 imported columns: equal fingerprints mean
# equal tables (numerics compared by value, not by their scale).
fingerprint() { # fingerprint DB
  sql "$1" "SELECT count(*) || ' ' || coalesce(sum(hashtextextended(
      (account_id, name, status, industry, region, trim_scale(employees),
       trim_scale(annual_revenue), trim_scale(mrr), is_active, created_date,
       renewal_date, notes)::text, 0)::numeric), 0)
    FROM objects.accounts"
}

if [ "$mode" = all ]; then # the import paths and the mapper: not in scheduler mode
declare -A secs rss count
record() { # record PATH SECONDS TIMEFILE DB
  secs[$1]=$2
  rss[$1]=$(peak_rss_kib "$3")
  count[$1]=$(sql "$4" "SELECT count(*) FROM objects.accounts")
  [ "${count[$1]}" = "$rows" ] || die "$1: objects.accounts holds ${count[$1]} rows, the file $rows"
  log "$(printf '%s: %d rows in %.2f s' "$1" "$rows" "$2")"
}

# ---- path 2: psql \copy into the typed table ---------------------------------
db=bench_copy
fresh_db $db
sql $db "$objects_ddl" >/dev/null
sql $db "CHECKPOINT" >/dev/null
log "copy: psql \\copy into objects.accounts"
t0=$(now)
/usr/bin/time -v -o "$bench/copy.time" \
  psql -X -q -v ON_ERROR_STOP=1 "$base_url/$db?sslmode=disable" \
  -c "\\copy objects.accounts ($cols) FROM '$csv' WITH (FORMAT csv, HEADER true)" \
  || die "copy: psql failed"
t1=$(now)
record copy "$(echo "$t1 - $t0" | bc -l)" "$bench/copy.time" $db

# ---- path 3: psql \copy into staging, then INSERT … ON CONFLICT DO UPDATE ----
db=bench_upsert
fresh_db $db
sql $db "$objects_ddl" >/dev/null
sql $db "CHECKPOINT" >/dev/null
updates=$(echo "$cols" | tr -d ' ' | tr ',' '\n' | grep -v '^account_id$' | sed 's/.*/& = EXCLUDED.&/' | paste -sd, | sed 's/,/, /g')
cat >"$bench/upsert.sql" <<SQL
\\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE staging (LIKE objects.accounts INCLUDING DEFAULTS) ON COMMIT DROP;
\\copy staging ($cols) FROM '$csv' WITH (FORMAT csv, HEADER true)
INSERT INTO objects.accounts AS t ($cols)
SELECT $cols FROM staging
ON CONFLICT (account_id) DO UPDATE SET $updates, _updated_at = now();
COMMIT;
SQL
log "copy+upsert: psql \\copy into a staging table, then INSERT … ON CONFLICT DO UPDATE"
t0=$(now)
/usr/bin/time -v -o "$bench/upsert.time" \
  psql -X -q "$base_url/$db?sslmode=disable" -f "$bench/upsert.sql" \
  || die "copy+upsert: psql failed"
t1=$(now)
record copy+upsert "$(echo "$t1 - $t0" | bc -l)" "$bench/upsert.time" $db

fp_copy=$(fingerprint bench_copy)
fp_upsert=$(fingerprint bench_upsert)
[ "$fp_copy" = "$fp_upsert" ] || die "copy and copy+upsert tables differ: $fp_copy vs $fp_upsert"

# ---- path 1: Intake end to end -----------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_api() { # wait_api — poll until intakectl reaches the API (intake serving)
  local i
  for i in $(seq 1 240); do
    kill -0 "$intake_time_pid" 2>/dev/null || die "intake: exited while starting; see .bench/intake.log"
    if ctl job list >"$bench/ctl.out" 2>&1; then return 0; fi
    sleep 0.5
  done
  cat "$bench/ctl.out" >&2
  die "intake: the API did not answer on $grpc_addr within 120 s; see .bench/intake.log"
}
if [ "$skip_intake" != 1 ]; then
  db=intake_bench
  fresh_db $db
  sql $db "CHECKPOINT" >/dev/null
  rm -rf "$bench/nats"
  grpc_addr=127.0.0.1:$(free_port)
  http_addr=127.0.0.1:$(free_port)
  # intake all --dev keeps its admin token in its data directory (.bench)
  ctl() { INTAKE_API_ADDR=$grpc_addr INTAKE_TOKEN_FILE=$bench/bootstrap-token "$bin/intakectl" "$@"; }
  log "intake: starting bin/intake all --dev (API on $grpc_addr, HTTP on $http_addr), log in .bench/intake.log"
  /usr/bin/time -v -o "$bench/intake.time" \
    "$bin/intake" all --dev \
    --database-url "$base_url/$db?sslmode=disable" \
    --nats-store "$bench/nats" --nats-port 0 \
    --grpc-addr "$grpc_addr" --http-addr "$http_addr" \
    >"$bench/intake.log" 2>&1 &
  intake_time_pid=$!
  wait_api

  cat >"$bench/job.yaml" <<YAML
# The benchmark's job: .bench/accounts.csv read from the local disk (dev mode).
name: jobs/bench-accounts
displayName: Benchmark accounts
description: make bench — the generated accounts file.
object: OBJECT_TYPE_ACCOUNTS
connection:
  local:
    path: $csv
mapping:
  dialect:
    delimiter: ","
    headerRow: 1
  entries:
    - {attribute: account_id, column: Account ID}
    - {attribute: name, column: Account Name}
    - {attribute: status, column: Status}
    - {attribute: industry, column: Industry}
    - {attribute: region, column: Region}
    - {attribute: employees, column: Employees}
    - {attribute: annual_revenue, column: Annual Revenue}
    - {attribute: mrr, column: MRR}
    - {attribute: is_active, column: Active}
    - {attribute: created_date, column: Created, sourceFormat: yyyy-MM-dd}
    - {attribute: renewal_date, column: Renewal Date, sourceFormat: yyyy-MM-dd}
    - {attribute: notes, column: Notes}
allowNewRecords: true
schedule:
  timeZone: UTC
  daily: {hour: 3, minute: 0}
enabled: false
runOnSave: false
YAML
  ctl job create -f "$bench/job.yaml" >"$bench/job.out" 2>&1 || { cat "$bench/job.out" >&2; die "intake: job create failed"; }

  log "intake: intakectl job run jobs/bench-accounts --watch"
  t0=$(now)
  ctl job run jobs/bench-accounts --watch >"$bench/run.out" 2>&1 || { cat "$bench/run.out" >&2; die "intake: the run did not succeed"; }
  t1=$(now)
  run_name=$(grep -o 'jobs/bench-accounts/runs/[0-9a-f-]*' "$bench/run.out" | head -1)
  [ -n "$run_name" ] || { cat "$bench/run.out" >&2; die "intake: no run name in the output of job run"; }
  ctl run get "$run_name" -o json >"$bench/run.json" || die "intake: run get $run_name failed"
  run_info=$(python3 - "$bench/run.json" <<'PY'
import json, sys
from datetime import datetime
r = json.load(open(sys.argv[1]))
def ts(k):
    v = r.get(k) or r.get({"startTime": "start_time", "endTime": "end_time", "createTime": "create_time"}[k])
    return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None
c = r.get("counters", {})
start, end, created = ts("startTime"), ts("endTime"), ts("createTime")
print(r.get("state", ""),
      (end - start).total_seconds() if start and end else "",
      (end - created).total_seconds() if created and end else "",
      c.get("rowsRead", c.get("rows_read", 0)), c.get("rowsRejected", c.get("rows_rejected", 0)))
PY
  ) || die "intake: cannot read $bench/run.json"
  read -r run_state run_secs run_total_secs rows_read rows_rejected <<<"$run_info"
  [ "$run_state" = RUN_STATE_SUCCEEDED ] || { cat "$bench/run.json" >&2; die "intake: run $run_name ended $run_state, not RUN_STATE_SUCCEEDED"; }
  [ "$rows_read" = "$rows" ] && [ "$rows_rejected" = 0 ] || die "intake: run read $rows_read rows and rejected $rows_rejected; want $rows and 0"

  # Stop intake gracefully and read its peak RSS.
  intake_pid=$(pgrep -P "$intake_time_pid" || true)
  [ -n "$intake_pid" ] && kill -TERM "$intake_pid"
  wait "$intake_time_pid" || log "intake: exited with status $? after SIGTERM; see .bench/intake.log"
  intake_time_pid=
  record intake "$(echo "$t1 - $t0" | bc -l)" "$bench/intake.time" $db
  log "intake: run $run_name: ${run_secs}s from start_time to end_time, ${run_total_secs}s from create_time to end_time"
  python3 - "$bench/run.json" >&2 <<'PY' || true
import json, sys
from datetime import datetime
r = json.load(open(sys.argv[1]))
t = lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))
t0 = t(r["startTime"])
for s in r.get("stages", []):
    a, b = t(s["startTime"]), t(s["endTime"])
    print("bench: intake:   %-11s %6.2fs → %6.2fs (%.2fs)" % (s["stage"], (a - t0).total_seconds(), (b - t0).total_seconds(), (b - a).total_seconds()))
PY

  fp_intake=$(fingerprint $db)
  [ "$fp_intake" = "$fp_copy" ] || die "intake and copy tables differ (count, hash): $fp_intake vs $fp_copy"
fi

# ---- the mapper alone ----------------------------------------------------------
# After the import paths, so that nothing else runs meanwhile: one core, the
# file already in memory, CSV parsing and mapping only.
if [ "$skip_mapbench" != 1 ]; then
  formats_csv=$bench/accounts-formats.csv
  log "mapbench: generating $rows rows with spreadsheet formats into .bench/accounts-formats.csv"
  "$bin/intake-benchgen" -rows "$rows" -formats -o "$formats_csv"
  log "mapbench: bin/intake-mapbench -file .bench/accounts-formats.csv (GOMAXPROCS=1, best of 3 runs)"
  "$bin/intake-mapbench" -file "$formats_csv" >"$bench/mapbench.out" 2>"$bench/mapbench.err" \
    || { cat "$bench/mapbench.err" >&2; die "mapbench: intake-mapbench failed"; }
  grep -q '^ratio mapper/csv-read: ' "$bench/mapbench.out" || die "mapbench: no ratio in .bench/mapbench.out"
fi

fi # the import paths and the mapper

# ---- fetch streaming -------------------------------------------------------------
# bin/intake-fetchbench: files of BENCH_FETCH_SIZES fetched over SFTP (sshd), S3
# (gofakes3, at most 1 GB) and HTTPS into a JetStream object store, each fetch in
# a fresh process: peak RSS per fetch, which must not grow with the file's size.
# It removes its files (2 GB in sshd's chroot) and JetStream store at the end.
skip_fetch=${BENCH_SKIP_FETCH:-0}
if [ "$mode" = all ] && [ "$skip_fetch" != 1 ]; then
  fetch_sizes=${BENCH_FETCH_SIZES:-200MB,2GB}
  (cd cmd && go build -o "$bin/" ./intake-fetchbench) || die "build of intake-fetchbench failed"
  log "fetch: bin/intake-fetchbench -sizes $fetch_sizes (about 1½ minutes; logs in .bench/fetch/)"
  "$bin/intake-fetchbench" -dir "$bench/fetch" -sizes "$fetch_sizes" >"$bench/fetchbench.out" \
    || die "fetch: intake-fetchbench failed; see its output above and .bench/fetch/"
  grep -q '^fetch peak RSS: ' "$bench/fetchbench.out" || die "fetch: no result in .bench/fetchbench.out"
fi

# ---- the scheduler ---------------------------------------------------------------
# Last, alone on the machine: bin/intake-schedbench starts nats-server, bin/intake
# api and bin/intake scheduler as separate processes on a fresh database of the
# same cluster, creates the jobs, measures three minutes of ticks and stops them.
if [ "$skip_sched" != 1 ]; then
  db=sched_bench
  fresh_db $db
  log "sched: bin/intake-schedbench -jobs $sched_jobs (3 minutes of ticks; logs in .bench/sched/)"
  "$bin/intake-schedbench" -jobs "$sched_jobs" -intake "$bin/intake" -nats-server "$bin/nats-server" \
    -database-url "$base_url/$db?sslmode=disable" -dir "$bench/sched" >"$bench/schedbench.out" &
  sched_pid=$!
  wait "$sched_pid" || die "sched: intake-schedbench failed (status $?); see the logs in .bench/sched/"
  sched_pid=
  grep -q '^scheduler peak RSS: ' "$bench/schedbench.out" || die "sched: no result in .bench/schedbench.out"
fi

# ---- report ------------------------------------------------------------------
if [ "$mode" = scheduler ]; then
  echo
  cat "$bench/schedbench.out"
  exit 0
fi
rate() { echo "scale=6; $rows / $1" | bc -l; }
echo
echo "bench: $rows rows, 12 columns, $((csv_bytes / 1024 / 1024)) MiB (.bench/accounts.csv), ~1% of rows with a quoted newline"
echo "bench: PostgreSQL $pg_version on 127.0.0.1:$port, the same server for every path, run with fsync=off,"
echo "bench: synchronous_commit=off, full_page_writes=off (scripts/pg.sh): numbers are not durable-write numbers."
echo "bench: peak RSS is the client process only (psql, or the intake all-in-one binary); the server's is not included."
printf '%-12s %10s %9s %11s %13s\n' path rows seconds rows/s "peak RSS MiB"
paths=(copy copy+upsert)
[ "$skip_intake" != 1 ] && paths=(intake "${paths[@]}")
for p in "${paths[@]}"; do
  printf '%-12s %10d %9.2f %11.0f %13.1f\n' "$p" "${count[$p]}" "${secs[$p]}" "$(rate "${secs[$p]}")" "$(echo "${rss[$p]} / 1024" | bc -l)"
done
if [ "$skip_mapbench" != 1 ]; then
  echo
  cat "$bench/mapbench.out"
fi
if [ "$skip_sched" != 1 ]; then
  echo
  cat "$bench/schedbench.out"
fi
if [ "$skip_fetch" != 1 ]; then
  echo
  cat "$bench/fetchbench.out"
fi
if [ "$skip_intake" != 1 ]; then
  printf 'ratio intake/copy+upsert: %.2f\n' "$(echo "${secs[copy+upsert]} / ${secs[intake]}" | bc -l)"
  printf 'ratio intake/copy: %.2f\n' "$(echo "${secs[copy]} / ${secs[intake]}" | bc -l)"
fi
