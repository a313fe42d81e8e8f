#!/usr/bin/env bash
# benchmarks/load.sh: protonb under load, beside the GOV.UK Prototype Kit and a bare Tornado
# reference, with the shared harness in ../shared/bench (wrk; server pinned to CPU 0, wrk to 1).
#
#   benchmarks/load.sh                                   # kit, baseline-mini, protonb; ROUNDS=2 DURATION=10
#   TARGETS=protonb ROUNDS=1 DURATION=1 CONNS=10 benchmarks/load.sh   # protonb alone: the CI smoke
#
# Env: TARGETS="kit baseline-mini protonb" (ratios are against the first), ROUNDS=2 (ABBA order),
#      DURATION, CONNS, WORKLOADS, QUIET_WAIT as ../shared/bench/run.sh takes them,
#      PORT=8000, PYTHON=.venv/bin/python, BENCH=../shared/bench, MEM_SESSIONS=2000,
#      W1C=1 (0 skips W1c: W1 where every POST changes an answer, lua/w1_change.lua; protonb
#      writes only what changed, so the harness's W1, the same body again, writes nothing).
# protonb is served from this checkout with its durable SQLite store, a fresh folder each round,
# pinned to SERVER_CPUS (0). Prints the harness's lines (START, CHECK, RESULT, MEMORY), with
# protonb's START carrying its start-up time (process start to first 200, median of 5); then
# SESSIONS lines from benchmarks/sessions.py (memory and disk per session, empty and with 20
# answers, and how many stored sessions W3's cookieless GETs made); then medians and ratios.
# Everything is also kept in $BENCH_WORK/results/load-<stamp>.txt (+ .summary.md).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH=${BENCH:-$ROOT/../shared/bench}
[ -d "$BENCH" ] || { echo "load.sh: no harness at $BENCH" >&2; exit 1; }
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PORT=${PORT:-8000}
TARGETS=${TARGETS:-"kit baseline-mini protonb"}
ROUNDS=${ROUNDS:-2}
MEM_SESSIONS=${MEM_SESSIONS:-2000}
W1C=${W1C:-1}
export SERVER_CPUS=${SERVER_CPUS:-0}
command -v wrk >/dev/null || { echo "load.sh: wrk not found (apt-get install wrk, or $BENCH/setup.sh)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$BENCH/lib.sh"   # BENCH_WORK, RESULTS, wait_quiet, rss_kb
PIN=(); command -v taskset >/dev/null && PIN=(taskset -c "$SERVER_CPUS")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/protonb-load.XXXXXX")
SERVER_PID=""
stop() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() { stop; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
fresh_prototype() { rm -rf "$WORK/prototype"; cp -r "$BENCH/prototype-protonb" "$WORK/prototype"; }
serve() {
  if port_busy "$PORT"; then echo "load.sh: port $PORT is in use by another program: set PORT=" >&2; exit 1; fi
  "${PIN[@]}" "$PYTHON" -m protonb serve "$WORK/prototype" --port "$PORT" --quiet >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
}
wait_first_200() {
  local code
  for _ in $(seq 1 2000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/answers" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; return 1; }
    sleep 0.005
  done
  echo "load.sh: protonb did not answer 200 on port $PORT" >&2; return 1
}

# Start-up: process start to the first 200 (a fresh folder: the store and secret are made too).
measure_startup() {
  local times=() t0
  for _ in 1 2 3 4 5; do
    fresh_prototype
    t0=$(now_ms); serve; wait_first_200; times+=($(( $(now_ms) - t0 ))); stop
  done
  STARTUP_MS=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  echo "STARTUP target=protonb startup_ms=$STARTUP_MS all_ms=$(IFS=,; echo "${times[*]}")"
}

# W1c: the harness's W1, but every POST changes an answer, so every request is a durable write.
# Prints RESULT lines in the harness's format (workload=W1c).
run_w1c() {  # name url
  local name=$1 url=$2 cookie line c kv errors
  cookie=$(curl -s -D - -o /dev/null --max-time 10 -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary @"$BENCH/body.txt" "$url/question" \
    | tr -d '\r' | grep -i '^set-cookie:' | head -1 | sed -E 's/^[Ss]et-[Cc]ookie: *//; s/;.*//')
  for c in ${CONNS:-10 50}; do
    sleep "${PAUSE:-2}"
    line=$(BENCH_DIR="$BENCH/lua" BENCH_BODY="$BENCH/body.txt" BENCH_COOKIE="$cookie" BENCH_EXPECT=302 \
      taskset -c "${LOAD_CPUS:-1}" wrk -t1 -c"$c" -d"${DURATION:-10}s" --timeout 10s \
        -s "$HERE/lua/w1_change.lua" "$url" 2>&1 | grep '^WRK ' | tail -1 || true)
    declare -A f=()
    for kv in ${line#WRK }; do f[${kv%%=*}]=${kv#*=}; done
    errors=$(( ${f[bad]:-0} + ${f[err_connect]:-0} + ${f[err_read]:-0} + ${f[err_write]:-0} + ${f[err_timeout]:-0} ))
    echo "RESULT target=$name workload=W1c conns=$c duration_s=${f[duration_s]:-na} requests=${f[requests]:-0}" \
      "rps=${f[rps]:-0} p50_ms=${f[p50_ms]:-na} p90_ms=${f[p90_ms]:-na} p99_ms=${f[p99_ms]:-na} ok=${f[ok]:-0}" \
      "errors=$errors new_sessions=${f[setcookie]:-na}"
    unset f
  done
}

# W1c for the kit or the reference app: started and stopped with the harness's own scripts.
managed_w1c() {  # target
  local out port stop_script parser=qs
  case $1 in
    kit) port=${KIT_PORT:-3101}; out=$("$BENCH/kit-start.sh" "$port") || return 0; stop_script=$BENCH/kit-stop.sh ;;
    baseline|baseline-mini)
      [ "$1" = baseline-mini ] && parser=mini
      port=${BASELINE_PORT:-8101}; out=$("$BENCH/baseline-start.sh" "$port" "$parser") || return 0
      stop_script=$BENCH/baseline-stop.sh ;;
    *) return 0 ;;
  esac
  run_w1c "$1" "http://127.0.0.1:$port"
  "$stop_script"
}

run_protonb() {
  fresh_prototype
  serve; wait_first_200
  local db="$WORK/prototype/.protonb/sessions.sqlite3"
  TARGET_NAME=protonb TARGET_PID=$SERVER_PID \
  SESSIONS_CMD="$PYTHON -c \"import sqlite3;print(sqlite3.connect('file:$db?mode=ro',uri=True).execute('select count(*) from sessions').fetchone()[0])\"" \
    "$BENCH/run.sh" "http://127.0.0.1:$PORT" | sed -u "s/^START target=protonb startup_ms=na/START target=protonb startup_ms=$STARTUP_MS/"
  [ "$W1C" = 0 ] || run_w1c protonb "http://127.0.0.1:$PORT"
  stop
  # Memory and disk per stored session, on a fresh server (sessions.py makes them itself).
  fresh_prototype
  serve; wait_first_200
  "$PYTHON" "$HERE/sessions.py" --url "http://127.0.0.1:$PORT" --pid "$SERVER_PID" --db "$db" \
    --body "$BENCH/body.txt" --count "$MEM_SESSIONS"
  stop
}

read -r -a LIST <<<"$TARGETS"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$RESULTS/load-$STAMP.txt"
{
  echo "# load.sh $(date -Is) rounds=$ROUNDS targets=${LIST[*]} DURATION=${DURATION:-10} CONNS=${CONNS:-10 50}"
  echo "# machine: nproc=$(nproc) cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# protonb $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+changes')"
  STARTUP_MS=na
  case " ${LIST[*]} " in *" protonb "*) measure_startup ;; esac
  for r in $(seq 1 "$ROUNDS"); do
    if (( r % 2 == 1 )); then order=("${LIST[@]}"); else
      order=(); for (( i=${#LIST[@]}-1; i>=0; i-- )); do order+=("${LIST[$i]}"); done; fi
    for t in "${order[@]}"; do
      echo "# round $r target $t $(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg)"
      if [ "$t" = protonb ]; then
        [ "${QUIET_WAIT:-1}" = 0 ] || echo "$(wait_quiet) target=protonb"
        run_protonb
      else
        "$BENCH/run.sh" "$t"
        [ "$W1C" = 0 ] || managed_w1c "$t"
      fi
    done
  done
  echo "# done $(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$OUT"
echo
python3 "$BENCH/summarize.py" --ref "${LIST[0]}" "$OUT" | tee "$OUT.summary.md"
