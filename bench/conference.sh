#!/usr/bin/env bash
# The whole-system benchmark (issue 6), one command from a fresh clone:
#
#   bench/conference.sh            reference run: builds release, ramps one room
#                                  through 10, 100, 250, 500, 1000 participants
#                                  (1000 for 5 minutes), then 2000 in 400 rooms
#                                  of 5; the UDP reflector floor; join and call
#                                  rates; PESQ; the SIPp ramp (bench/sipp-ramp.sh);
#                                  writes the "Whole system" section of
#                                  docs/benchmarks.md
#   bench/conference.sh --quick    smoke run: short steps, small sizes, the
#                                  table goes to the work directory only
#
# Options (defaults in brackets):
#   --quick                 short smoke run (implies --no-write)
#   --steps "10 100 …"      single-room sizes ["10 100 250 500 1000"]
#   --step-seconds S        measured window per step [60]
#   --big-seconds S         window of the 1000 step [300]
#   --multi RxS             rooms x size for the multi-room step [400x5]
#   --multi-seconds S       its window [120]
#   --join-rate R           joins per second while ramping [200]
#   --threads N             loadgen media threads [2]
#   --nice N                run server, loadgen and reflector at nice N (needs
#                           root for N < 0) [off]
#   --rtp-ports LOW-HIGH    server RTP range [20000-29999]
#   --skip-reflector --skip-rates --skip-pesq --skip-multi --skip-sipp
#   --no-build              use the binaries in target/release
#   --write / --no-write    update docs/benchmarks.md [write unless --quick]
#   --keep                  keep the work directory (JSON, logs, WAVs)
#   --wait-quiet S          before each step, wait up to S seconds for the
#                           1-minute load average to fall below 1 (a shared
#                           machine) [0: don't wait]
#
# Loopback only. Needs python3 (and `pip install pesq numpy` for PESQ),
# espeak-ng and sox. Each step's figures come from `loadgen --json`: the
# server's CPU and RSS from /proc/<pid>, tick time and lateness from its
# /metrics, loss and delay as the simulated participants measured them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=0 STEPS="10 100 250 500 1000" STEP_S=60 BIG_S=300 MULTI=400x5 MULTI_S=120
JOIN_RATE=200 THREADS=2 NICE="" RTP_PORTS=20000-29999 BUILD=1 WRITE="" KEEP=0
SKIP_REFL=0 SKIP_RATES=0 SKIP_PESQ=0 SKIP_MULTI=0 SKIP_SIPP=0 WAIT_QUIET=0
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --steps) STEPS=$2; shift ;;
    --step-seconds) STEP_S=$2; shift ;;
    --big-seconds) BIG_S=$2; shift ;;
    --multi) MULTI=$2; shift ;;
    --multi-seconds) MULTI_S=$2; shift ;;
    --join-rate) JOIN_RATE=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --nice) NICE=$2; shift ;;
    --rtp-ports) RTP_PORTS=$2; shift ;;
    --skip-reflector) SKIP_REFL=1 ;;
    --skip-rates) SKIP_RATES=1 ;;
    --skip-pesq) SKIP_PESQ=1 ;;
    --skip-multi) SKIP_MULTI=1 ;;
    --skip-sipp) SKIP_SIPP=1 ;;
    --no-build) BUILD=0 ;;
    --write) WRITE=1 ;;
    --no-write) WRITE=0 ;;
    --keep) KEEP=1 ;;
    --wait-quiet) WAIT_QUIET=$2; shift ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  # Small enough for a laptop in a couple of minutes, large enough to
  # exercise every path.
  [ "$STEPS" = "10 100 250 500 1000" ] && STEPS="10 50"
  STEP_S=5 BIG_S=5 MULTI=10x5 MULTI_S=5
  : "${WRITE:=0}"
fi
: "${WRITE:=1}"

log() { printf '\n== %s\n' "$*" >&2; }
# On a shared machine, give other people's work a chance to finish first.
quiet() {
  [ "$WAIT_QUIET" -gt 0 ] || return 0
  local until=$(( $(date +%s) + WAIT_QUIET ))
  while awk '{exit !($1 >= 1.0)}' /proc/loadavg && [ "$(date +%s)" -lt "$until" ]; do
    sleep 10
  done
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}
run_nice() { if [ -n "$NICE" ]; then nice -n "$NICE" "$@"; else "$@"; fi; }

for tool in python3 sox espeak-ng; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ "$SKIP_PESQ" = 0 ] && ! python3 -c 'import pesq, numpy' 2>/dev/null; then
  log "installing the pesq Python package (pip install pesq numpy)"
  python3 -m pip install --quiet pesq numpy >&2 || { echo "pesq not installable: rerun with --skip-pesq" >&2; exit 1; }
fi

if [ "$BUILD" = 1 ]; then
  log "building release binaries"
  cargo build --release -p palaver -p palaver-loadgen >&2
fi
BIN=$ROOT/target/release
for b in palaver loadgen reflector; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (drop --no-build)" >&2; exit 1; }
done

W=$(mktemp -d /tmp/palaver-bench.XXXXXX)
R=$W/results
mkdir -p "$R"
SERVER_PID="" REFL_PID=""
cleanup() {
  # Only the processes this script started, by pid.
  [ -n "$REFL_PID" ] && kill "$REFL_PID" 2>/dev/null || true
  type stop_server >/dev/null 2>&1 && stop_server
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

# Every participant holds a socket on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ADMIN_PW=bench-$RANDOM$RANDOM
MROOMS=${MULTI%x*} MSIZE=${MULTI#*x}
HZ=$(getconf CLK_TCK)

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  # A graceful shutdown that does not finish in 15 s is reported and cut short.
  for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server $SERVER_PID did not exit 15 s after SIGTERM: killed" >&2
    echo "{\"step\": \"$STEP\"}" >>"$R/shutdown-hung.jsonl"
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# Every step gets a server of its own, started afresh with the benchmark
# rooms: what one step leaves behind cannot weigh on the next.
start_server() {
  stop_server
  rm -rf "$W/data" "$W/ready.json"
  # `env` and `nice` exec, so $! is the server's own pid (what /proc is read for).
  env PALAVER_ADMIN_PASSWORD="$ADMIN_PW" ${NICE:+nice -n "$NICE"} "$BIN/palaver" serve --demo \
    --demo-password PW --data-dir "$W/data" --sip-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --rtp-ports "$RTP_PORTS" --ready-file "$W/ready.json" >>"$W/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    [ -s "$W/ready.json" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$W/server.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$W/ready.json" ] || { echo "server not ready after 30 s" >&2; exit 1; }
  HTTP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$W/ready.json")
  READY_PID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$W/ready.json")
  [ "$READY_PID" = "$SERVER_PID" ] || { echo "server pid $READY_PID is not the one started ($SERVER_PID)" >&2; exit 1; }
  python3 crates/loadgen/scripts/bench_rooms.py --http "$HTTP" --password "$ADMIN_PW" \
    --big 7000 --small-base 7100 --small-count "$MROOMS" --small-size "$MSIZE" >"$W/rooms.txt"
  sleep 1
  IDLE_KIB=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
}

# What a step left behind once its calls ended: the server's sockets and
# its CPU over 5 idle seconds (a leak shows as sockets and CPU that stay).
leftover() {
  local name=$1
  [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null || return 0
  sleep 3
  local socks t0 t1
  socks=$(find "/proc/$SERVER_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l)
  t0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
  sleep 5
  t1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
  python3 - "$R/after-$name.json" "$socks" "$t0" "$t1" "$HZ" "$IDLE_KIB" "$SERVER_PID" <<'EOF'
import json, sys
out, socks, t0, t1, hz, idle, pid = sys.argv[1:]
rss = int(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")))
json.dump({"sockets": int(socks), "idle_cpu_percent": 100 * (float(t1) - float(t0)) / float(hz) / 5,
           "rss_kib": rss, "idle_rss_kib": int(idle)}, open(out, "w"))
EOF
}

STEP=setup
start_server
log "server idle with the benchmark rooms: $IDLE_KIB KiB (work directory $W)"

python3 - "$R/meta.json" <<EOF
import json, os, platform, subprocess, sys, time
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, cwd="$ROOT").stdout.strip()
    except Exception: return ""
model = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") or platform.processor()
json.dump({
  "machine": model, "cores": os.cpu_count(), "kernel": platform.release(),
  "date": time.strftime("%Y-%m-%d %H:%M %Z"),
  "commit": sh("git rev-parse --short HEAD"), "dirty": bool(sh("git status --porcelain --untracked-files=no")),
  "command": "bench/conference.sh $ARGS".strip(), "quick": $QUICK == 1,
  "idle_rss_kib": $IDLE_KIB, "nice": "$NICE" or None,
  "load_before": " ".join(open("/proc/loadavg").read().split()[:3]),
  "join_rate": $JOIN_RATE, "call_rate": None,
}, open(sys.argv[1], "w"), indent=1)
EOF

lg() { run_nice "$BIN/loadgen" --ready-file "$W/ready.json" --threads "$THREADS" "$@"; }

log "single room ramp: $STEPS"
for n in $STEPS; do
  secs=$STEP_S
  [ "$n" -ge 1000 ] && secs=$BIG_S
  STEP=room-$n
  log "1 room x $n participants, ${secs}s window"
  start_server
  quiet
  lg --participants "$n" --rooms 7000 --rate "$JOIN_RATE" --settle 6 --duration "$secs" \
     --json "$R/room-$n.json" >&2 || echo "step $n failed" >&2
  leftover "room-$n"
done

if [ "$SKIP_MULTI" = 0 ]; then
  n=$((MROOMS * MSIZE))
  STEP=multi
  log "$MROOMS rooms x $MSIZE = $n participants, ${MULTI_S}s window"
  start_server
  quiet
  lg --participants "$n" --rooms "7100-$((7100 + MROOMS - 1))" --rate "$JOIN_RATE" --settle 6 \
     --duration "$MULTI_S" --json "$R/multi.json" >&2 || echo "multi-room step failed" >&2
  leftover multi
fi
stop_server

if [ "$SKIP_REFL" = 0 ]; then
  # The same N as the target rows: the largest single-room step and the
  # multi-room step.
  last=${STEPS##* }
  refl_sizes="$last"
  [ "$SKIP_MULTI" = 0 ] && refl_sizes="$refl_sizes $((MROOMS * MSIZE))"
  for n in $refl_sizes; do
    secs=$STEP_S
    [ "$n" -ge 1000 ] && [ "$BIG_S" -lt "$secs" ] && secs=$BIG_S
    log "reflector floor: $n sockets, ${secs}s window"
    rm -f "$W/refl.json"
    # Free ports of the system's choosing: no clash with anyone's range.
    env ${NICE:+nice -n "$NICE"} "$BIN/reflector" --listen 127.0.0.1:0 --count "$n" --threads 2 \
      --ready-file "$W/refl.json" >"$W/reflector.log" 2>&1 &
    REFL_PID=$!
    for _ in $(seq 1 100); do [ -s "$W/refl.json" ] && break; sleep 0.1; done
    quiet
    run_nice "$BIN/loadgen" --reflector-ready "$W/refl.json" --participants "$n" --rate 1000 --settle 2 \
      --duration "$secs" --threads "$THREADS" --server-pid "$REFL_PID" \
      --json "$R/reflector-$n.json" >&2 || echo "reflector run failed" >&2
    kill "$REFL_PID" 2>/dev/null || true
    wait "$REFL_PID" 2>/dev/null || true
    REFL_PID=""
  done
fi

if [ "$SKIP_PESQ" = 0 ]; then
  log "speech quality (PESQ), 1 and 3 talkers"
  S=$W/speech
  mkdir -p "$S"
  i=0
  for text in \
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish." \
    "Rice is often served in round bowls. The juice of lemons makes fine punch. The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage." \
    "Four hours of steady work faced us. A large size in stockings is hard to sell. The boy was there when the sun rose. A rod is used to catch pink salmon."; do
    i=$((i + 1))
    voice=en-us; [ $i = 2 ] && voice=en-gb; [ $i = 3 ] && voice=en-us+f3
    espeak-ng -v "$voice" -s 150 -w "$S/raw$i.wav" "$text"
    # 8 kHz mono 16-bit, peaks at -14 dBFS so three at once stay clear of
    # the mixer's limiter.
    sox "$S/raw$i.wav" -r 8000 -c 1 -b 16 "$S/talker$i.wav" norm -14
  done
  for t in 1 3; do
    STEP=quality-$t
    start_server
    speech=()
    for k in $(seq 1 "$t"); do speech+=(--speech "$S/talker$k.wav"); done
    lg --mode quality --rooms 7000 --participants $((t + 1)) "${speech[@]}" --settle 6 \
       --record-dir "$W/quality-$t" --json "$R/quality-$t.json" >&2 || echo "quality run failed" >&2
    python3 crates/loadgen/scripts/pesq_score.py "$W/quality-$t" >"$R/pesq-$t.json" \
      || echo "pesq failed" >&2
    cat "$R/pesq-$t.json" >&2 || true
  done
  stop_server
fi

if [ "$SKIP_SIPP" = 0 ]; then
  # SIPp starts its own fresh servers (one per step) from the same binary.
  log "external confirmation with SIPp (bench/sipp-ramp.sh)"
  sipp_args=(--no-build --out "$R" --skip-call-rate)
  [ "$QUICK" = 1 ] && sipp_args+=(--quick)
  "$ROOT/bench/sipp-ramp.sh" "${sipp_args[@]}" >&2 || echo "SIPp ramp failed" >&2
fi

# The rate tests come last: past its capacity the server is overloaded,
# and each runs on a fresh server.
if [ "$SKIP_RATES" = 0 ]; then
  jn=1000 cn=21000 crate=2100 jrate=500
  [ "$QUICK" = 1 ] && jn=100 cn=500
  STEP=join-rate
  log "join rate: $jn participants into one room at $jrate/s"
  start_server
  lg --mode join-rate --rooms 7000 --participants "$jn" --rate "$jrate" --settle 4 --duration 5 \
     --json "$R/join-rate.json" >&2 || echo "join-rate run failed" >&2
  leftover join-rate
  STEP=call-rate
  log "call rate: $cn calls to 900 at $crate/s"
  start_server
  lg --mode call-rate --number 900 --calls "$cn" --rate "$crate" --json "$R/call-rate.json" >&2 \
     || echo "call-rate run failed" >&2
  leftover call-rate
  stop_server
  python3 - "$R/meta.json" "$jrate" "$crate" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); m["join_rate"] = float(sys.argv[2]); m["call_rate"] = float(sys.argv[3])
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
  if [ "$SKIP_SIPP" = 0 ]; then
    sipp_args=(--no-build --out "$R" --steps "")
    [ "$QUICK" = 1 ] && sipp_args+=(--quick --calls 500)
    "$ROOT/bench/sipp-ramp.sh" "${sipp_args[@]}" >&2 || echo "SIPp call rate failed" >&2
  fi
fi

TABLE=$W/whole-system.md
python3 crates/loadgen/scripts/bench_table.py "$R" >"$TABLE"
cat "$TABLE"
rm -rf "$ROOT/target/bench-results" && cp -r "$R" "$ROOT/target/bench-results" 2>/dev/null || true

if [ "$WRITE" = 1 ]; then
  DOC=$ROOT/docs/benchmarks.md
  python3 - "$DOC" "$TABLE" <<'EOF'
import os, re, sys
doc, table = sys.argv[1], open(sys.argv[2]).read().rstrip() + "\n"
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n\n"
# Replace only the "Whole system" section: from its heading to the next
# level-2 heading (other sections belong to other people).
m = re.search(r"^## Whole system\b.*?(?=^## |\Z)", text, flags=re.S | re.M)
if m:
    text = text[: m.start()] + table + ("\n" if text[m.end():] else "") + text[m.end():]
else:
    text = text.rstrip() + "\n\n" + table
open(doc, "w").write(text)
EOF
  log "updated $DOC (section \"Whole system\")"
fi
