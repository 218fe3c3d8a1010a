#!/usr/bin/env bash
# External confirmation of the whole-system figures with SIPp (issue 6):
#
#   bench/sipp-ramp.sh             builds release, starts a throwaway server,
#                                  ramps one room with SIPp callers streaming a
#                                  µ-law WAV (rtp_stream) through 10, 100, 250,
#                                  500, 1000, 1500, 2000 participants until a
#                                  step fails, recording the server's CPU the
#                                  way bench/conference.sh does; then SIPp
#                                  calls to the 900 tone test at 2100/s
#   bench/sipp-ramp.sh --quick     10 and 50 participants, 500 calls
#
# Options (defaults in brackets):
#   --steps "10 100 …"   participants per step [10 100 250 500 1000 1500 2000]
#   --window S           seconds of server CPU measured once all have joined [30]
#   --rate R             joins per second [200]
#   --call-rate R        calls per second to 900 [2100]
#   --calls N            calls to 900 [21000]
#   --skip-call-rate     only the ramp
#   --ready FILE         use an already running server (its --ready-file) and
#                        room number from --room instead of starting a fresh
#                        one for each step
#   --room N             the room to fill [7000, created here]
#   --out DIR            write sipp-ramp.json and sipp-call-rate.json there
#   --no-build
#
# A step is "sustained" when SIPp reports every call successful and the
# server counted under 1 % of the packets it expected lost over the window
# (palaver_rtp_lost_packets_total / received + lost).
# Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

STEPS="10 100 250 500 1000 1500 2000" WINDOW=30 RATE=200 CALL_RATE=2100 CALLS=21000
SKIP_CR=0 READY="" ROOM="" OUT="" BUILD=1 QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --steps) STEPS=$2; shift ;;
    --window) WINDOW=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --call-rate) CALL_RATE=$2; shift ;;
    --calls) CALLS=$2; shift ;;
    --skip-call-rate) SKIP_CR=1 ;;
    --ready) READY=$2; shift ;;
    --room) ROOM=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  [ "$STEPS" = "10 100 250 500 1000 1500 2000" ] && STEPS="10 50"
  WINDOW=5 CALLS=500
fi

log() { printf '\n== %s\n' "$*" >&2; }
for tool in sipp sox espeak-ng python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (Debian: sip-tester, sox, espeak-ng)" >&2; exit 1; }
done

W=$(mktemp -d /tmp/palaver-sipp.XXXXXX)
[ -n "$OUT" ] || OUT=$W/results
mkdir -p "$OUT"
SERVER_PID="" SIPP_PID="" EXTERNAL=0
[ -n "$READY" ] && EXTERNAL=1

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server $SERVER_PID did not exit 15 s after SIGTERM: killed" >&2
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# A fresh server (with the room) for each step, unless --ready named one.
start_server() {
  if [ "$EXTERNAL" = 1 ]; then
    read -r SIP PID HTTP < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["sip_udp"], r["pid"], r["http"])' "$READY")
    return 0
  fi
  stop_server
  rm -rf "$W/data" "$W/ready.json"
  local admin_pw=bench-$RANDOM$RANDOM
  env PALAVER_ADMIN_PASSWORD="$admin_pw" "$ROOT/target/release/palaver" serve --demo --demo-password PW \
    --data-dir "$W/data" --sip-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --rtp-ports 20000-29999 --ready-file "$W/ready.json" >>"$W/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do [ -s "$W/ready.json" ] && break; sleep 0.1; done
  [ -s "$W/ready.json" ] || { tail -20 "$W/server.log" >&2; exit 1; }
  read -r SIP PID HTTP < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["sip_udp"], r["pid"], r["http"])' "$W/ready.json")
  python3 crates/loadgen/scripts/bench_rooms.py --http "$HTTP" --password "$admin_pw" --big "$ROOM" >/dev/null
}

cleanup() {
  [ -n "$SIPP_PID" ] && kill "$SIPP_PID" 2>/dev/null || true
  stop_server
  rm -rf "$W/data"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$EXTERNAL" = 0 ] && [ "$BUILD" = 1 ]; then
  log "building the server"
  cargo build --release -p palaver >&2
fi
ROOM=${ROOM:-7000}

# A µ-law speech WAV that rtp_stream loops.
espeak-ng -v en-us -s 150 -w "$W/raw.wav" "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. It is easy to tell the depth of a well."
sox "$W/raw.wav" -r 8000 -c 1 -e u-law "$W/talk.wav" norm -14

cat >"$W/ramp.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="join a room and stream PCMU until -d ms">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]R[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtpstream_audio_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=ptime:20
      a=sendrecv
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]R[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <nop><action><exec rtp_stream="$W/talk.wav,-1,0,PCMU/8000"/></action></nop>
  <pause/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]R[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
EOF

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "received lost": the server's receive counters, summed over workers.
rx_counts() {
  python3 - "$HTTP" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=5).read().decode()
def total(name):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + "{"))
print(f"{total('palaver_rtp_received_packets_total'):.0f} {total('palaver_rtp_lost_packets_total'):.0f}")
EOF
}
# Lost over expected between two rx_counts outputs.
loss_between() {
  python3 -c 'import sys; r0, l0, r1, l1 = map(float, sys.argv[1:]); n = (r1 - r0) + (l1 - l0); print(f"{(l1 - l0) / n:.6f}" if n > 0 else "nan")' $1 $2
}
HZ=$(getconf CLK_TCK)

STEPS_JSON=$W/steps.jsonl
: >"$STEPS_JSON"
for n in $STEPS; do
  join_s=$(( (n + RATE - 1) / RATE ))
  settle=8
  hold_ms=$(( (join_s + settle + WINDOW + 5) * 1000 ))
  log "SIPp: $n callers in room $ROOM, measuring ${WINDOW}s after ${join_s}s of joins and ${settle}s to settle"
  start_server
  port=$(free_port)
  sipp -sf "$W/ramp.xml" "$SIP" -s "$ROOM" -i 127.0.0.1 -p "$port" -mi 127.0.0.1 \
    -d "$hold_ms" -r "$RATE" -l "$n" -m "$n" -buff_size 4194304 -nostdin \
    -timeout $(( hold_ms / 1000 + 60 ))s -timeout_error -trace_stat -stf "$W/stat-$n.csv" \
    >"$W/sipp-$n.log" 2>&1 &
  SIPP_PID=$!
  sleep $(( join_s + settle ))
  t0=$(cpu_ticks "$PID"); s0=$(cpu_ticks "$SIPP_PID" 2>/dev/null || echo 0); w0=$(date +%s.%N)
  c0=$(rx_counts || echo "0 0")
  sleep "$WINDOW"
  t1=$(cpu_ticks "$PID"); s1=$(cpu_ticks "$SIPP_PID" 2>/dev/null || echo 0); w1=$(date +%s.%N)
  c1=$(rx_counts || echo "0 0")
  loss=$(loss_between "$c0" "$c1" || echo nan)
  rc=0
  wait "$SIPP_PID" || rc=$?
  SIPP_PID=""
  if ! python3 - "$STEPS_JSON" "$n" "$rc" "$t0" "$t1" "$s0" "$s1" "$w0" "$w1" "$HZ" "$loss" "$W/stat-$n.csv" <<'EOF'
import csv, json, sys
out, n, rc, t0, t1, s0, s1, w0, w1, hz, loss, stat = sys.argv[1:]
wall = float(w1) - float(w0)
cpu = 100 * (float(t1) - float(t0)) / float(hz) / wall
sipp_cpu = 100 * (float(s1) - float(s0)) / float(hz) / wall
ok_calls = failed = None
try:
    rows = list(csv.reader(open(stat), delimiter=";"))
    head, last = rows[0], rows[-1]
    ok_calls = int(last[head.index("SuccessfulCall(C)")])
    failed = int(last[head.index("FailedCall(C)")])
except Exception:
    pass
loss = float(loss)
sustained = rc == "0" and failed == 0 and loss == loss and loss < 0.01
result = f"{ok_calls} ok / {failed} failed, server loss {loss * 100:.2f} %, SIPp CPU {sipp_cpu:.0f} %"
result += "" if sustained else " — not sustained"
json.dump({"n": int(n), "exit": int(rc), "successful": ok_calls, "failed": failed, "server_cpu": cpu,
           "sipp_cpu": sipp_cpu, "server_loss": loss, "sustained": sustained, "result": result},
          open(out, "a"))
open(out, "a").write("\n")
print(result, file=sys.stderr)
sys.exit(0 if sustained else 1)
EOF
  then
    break
  fi
  sleep 3
done
if [ -n "$STEPS" ]; then
python3 - "$STEPS_JSON" "$OUT/sipp-ramp.json" <<'EOF'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sustained = [s["n"] for s in steps if s["sustained"]]
json.dump({"steps": steps, "largest_sustained": max(sustained) if sustained else 0}, open(sys.argv[2], "w"), indent=1)
print(json.dumps({"largest_sustained": max(sustained) if sustained else 0}))
EOF
fi

if [ "$SKIP_CR" = 0 ]; then
  log "SIPp: $CALLS calls to 900 at $CALL_RATE/s (answer, 1 s of tone, server hangs up)"
  cat >"$W/tone.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="call the tone test and wait for its BYE">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
</scenario>
EOF
  start_server
  port=$(free_port)
  mport=$(free_port)
  t0=$(cpu_ticks "$PID"); w0=$(date +%s.%N)
  rc=0
  sipp -sf "$W/tone.xml" "$SIP" -s 900 -i 127.0.0.1 -p "$port" -mi 127.0.0.1 -mp "$mport" \
    -r "$CALL_RATE" -m "$CALLS" -l $(( CALL_RATE * 4 )) -buff_size 4194304 -nostdin \
    -timeout $(( CALLS / CALL_RATE + 60 ))s -timeout_error -trace_stat -stf "$W/stat-tone.csv" \
    >"$W/sipp-tone.log" 2>&1 || rc=$?
  t1=$(cpu_ticks "$PID"); w1=$(date +%s.%N)
  sleep 2 # the server writes call records in batches
  python3 - "$OUT/sipp-call-rate.json" "$rc" "$t0" "$t1" "$w0" "$w1" "$HZ" "$W/stat-tone.csv" "$CALLS" "$CALL_RATE" "$W/data/palaver.db" <<'EOF'
import csv, json, sqlite3, sys
out, rc, t0, t1, w0, w1, hz, stat, calls, rate, db = sys.argv[1:]
wall = float(w1) - float(w0)
r = {"calls": int(calls), "rate": float(rate), "exit": int(rc),
     "server_cpu": 100 * (float(t1) - float(t0)) / float(hz) / wall}
try:
    rows = list(csv.reader(open(stat), delimiter=";"))
    head, last = rows[0], rows[-1]
    get = lambda k: last[head.index(k)]
    r["successful"] = int(get("SuccessfulCall(C)"))
    r["failed"] = int(get("FailedCall(C)"))
    r["retransmissions"] = int(get("Retransmissions(C)"))
    # From the first INVITE to the last call's end (the final row is
    # written at exit); every call lasts about 1 s of tone, so the calls
    # were completed at calls / (span - 1 s).
    epoch = lambda k: float(get(k).split("\t")[-1])
    span = epoch("CurrentTime") - epoch("StartTime")
    r["span_s"] = span
    r["completed_rate"] = int(get("SuccessfulCall(C)")) / max(1e-3, span - 1.0)
except Exception as e:
    r["error"] = str(e)
# The rate the server answered at, from its own call records (ms stamps):
# calls after the first over the time from the first answer to the last.
# completed_rate above puts setup time and any hold beyond 1 s in its
# denominator, so even a perfect server stays below the offered rate.
try:
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    n, first, last = c.execute(
        "SELECT COUNT(*), MIN(answered_at), MAX(answered_at) FROM cdrs "
        "WHERE callee = '900' AND answered_at IS NOT NULL").fetchone()
    r["answered_in_cdrs"] = n
    r["achieved_rate"] = (n - 1) / max(1e-3, (last - first) / 1000) if n > 1 else 0.0
except Exception as e:
    r["cdr_error"] = str(e)
json.dump(r, open(out, "w"), indent=1)
print(json.dumps(r))
EOF
fi
echo "results in $OUT" >&2
