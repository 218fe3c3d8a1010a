#!/usr/bin/env bash
# SIP call-rate benchmark: the highest rate of line-to-line calls through
# `palaver serve` with 0 failed calls.
#
#   bench/sip-call-rate.sh                      default rate ladder
#   bench/sip-call-rate.sh 100 200 400          these rates only
#   CALLS=5000 HOLD_MS=1000 bench/sip-call-rate.sh
#
# What one step does: SIPp `tests/sipp/uac_auth.xml` as line 1001 calls line
# 1002 (INVITE, 407, ACK, INVITE with credentials, 100/180/200, ACK, HOLD_MS
# of talk, BYE, 200) at RATE calls/s, CALLS calls in all; line 1002 is a SIPp
# `uas.xml` registered by `register.xml` from its own port. Every call passes
# the server twice (caller leg and callee leg: B2BUA), 16 SIP messages in and
# out of the server per call. Loopback only.
#
# Honesty checks printed per step: the rate SIPp actually created calls at,
# every SIPp failure counter that is not zero, the
# retransmissions SIPp had to make, the CPU used by the server and by the two
# SIPp processes (all share the machine's cores), and the server's WARN/ERROR
# log lines. Steps stop after the first one with failed calls.
#
# Environment: CALLS (per step, default 20 x rate, at least 2000: each step
# lasts about 20 s), HOLD_MS (call duration, default 1000), LIMIT
# (simultaneous calls SIPp may open, default 10000), KEEP=1 keeps the work
# directory (server log, SIPp stats and error logs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rates=("$@")
((${#rates[@]})) || rates=(100 200 400 800 1200 1600 2000 2500)
hold_ms=${HOLD_MS:-1000}
limit=${LIMIT:-10000}
password=bench-$RANDOM$RANDOM

command -v sipp >/dev/null || {
    echo "sipp is missing: apt-get install sip-tester" >&2
    exit 1
}

echo "building palaver (release)…" >&2
cargo build --release -p palaver --manifest-path "$root/Cargo.toml" >&2
bin=${CARGO_TARGET_DIR:-$root/target}/release/palaver

# SIPp wants a file descriptor per open call.
ulimit -n 65536 2>/dev/null || true

work=$(mktemp -d /tmp/palaver-call-rate.XXXXXX)
server_pid=
uas_pid=
cleanup() {
    [[ -n $uas_pid ]] && kill "$uas_pid" 2>/dev/null || true
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# A free loopback UDP port (SIPp needs a fixed one for the callee's contact).
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU seconds (user + system) a process has used so far.
clk_tck=$(getconf CLK_TCK)
cpu_seconds() {
    # Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends
    # the command name (which may itself hold spaces).
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    stat=${stat##*) }
    awk -v t="$clk_tck" '{ printf "%.2f", ($12 + $13) / t }' <<<"$stat"
}

NO_COLOR=1 "$bin" serve --demo --demo-password "$password" --data-dir "$work/data" \
    --sip-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --ready-file "$work/ready.json" \
    >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    [[ -s $work/ready.json ]] && break
    kill -0 "$server_pid" 2>/dev/null || {
        echo "the server did not start:" >&2
        cat "$work/server.log" >&2
        exit 1
    }
    sleep 0.1
done
[[ -s $work/ready.json ]] || {
    echo "the server did not get ready in 10 s" >&2
    exit 1
}
server=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sip_udp"])' "$work/ready.json")

uas_port=$(free_port)
sipp_common=(-i 127.0.0.1 -buff_size 4194304 -nostdin)
# Line 1002 registers from the port its UAS will answer on.
sipp -sf "$root/tests/sipp/register.xml" "$server" -s 1002 -au 1002 -ap "$password" \
    -p "$uas_port" -m 1 "${sipp_common[@]}" -timeout 10 -timeout_error \
    >"$work/register.out" 2>&1 || {
    echo "registering 1002 failed:" >&2
    tail -20 "$work/register.out" >&2
    exit 1
}
sipp -sf "$root/tests/sipp/uas.xml" -p "$uas_port" "${sipp_common[@]}" \
    -trace_err -error_file "$work/uas-errors.log" >"$work/uas.out" 2>&1 &
uas_pid=$!
sleep 0.5

# Server log lines at WARN or ERROR so far (ANSI colours stripped in case).
server_warnings() {
    sed 's/\x1b\[[0-9;]*m//g' "$work/server.log" | grep -cE ' (WARN|ERROR) ' || true
}

# The rate SIPp really created calls at: the mean of its per-second
# "CallRate(P)" over the seconds it was creating calls (the last, partial
# second left out); SIPp's "CallRate(C)" would also count the tail of the
# last calls' hold time.
achieved_rate() {
    awk -F';' -v calls="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "CallRate(P)") r = i; if ($i == "OutgoingCall(P)") o = i; if ($i == "OutgoingCall(C)") oc = i }; next }
        $o + 0 > 0 && $oc + 0 < calls + 0 { sum += $r; n++ }
        END { if (n) printf "%.0f", sum / n; else print "?" }' "$1"
}

# One column of SIPp's final statistics line, by header name.
stat_col() {
    awk -F';' -v name="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
        { last = $c }
        END { print (c ? last : "") }' "$1"
}

echo
sipp_version=$(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1 || true)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); ${sipp_version:-SIPp}"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "${COMMIT:-unknown}")
echo "server: $bin (commit $commit), SIP $server; calls hold ${hold_ms} ms"
printf '%8s %7s %8s %7s %7s %8s %9s %12s %9s %9s %6s  %s\n' \
    "rate/s" calls achieved ok failed retrans "srv CPU" "srv µs/call" "uac CPU" "uas CPU" "warn" "failures"
best=
first_fail=
for rate in "${rates[@]}"; do
    calls=${CALLS:-$((rate * 20 > 2000 ? rate * 20 : 2000))}
    step=$work/step-$rate
    mkdir -p "$step"
    log_before=$(server_warnings)
    s0=$(cpu_seconds "$server_pid")
    u0=$(cpu_seconds "$uas_pid")
    t0=$(date +%s.%N)
    uac_port=$(free_port)
    set +e
    /usr/bin/time -f '%U %S' -o "$step/uac.time" \
        sipp -sf "$root/tests/sipp/uac_auth.xml" "$server" -s 1002 -au 1001 -ap "$password" \
        -p "$uac_port" -r "$rate" -m "$calls" -l "$limit" -d "$hold_ms" \
        "${sipp_common[@]}" -timeout $((calls / rate + 60)) -timeout_error \
        -trace_stat -stf "$step/stat.csv" -fd 1 \
        -trace_err -error_file "$step/errors.log" >"$step/uac.out" 2>&1
    rc=$?
    set -e
    uac_cpu=$(awk '/^[0-9.]+ [0-9.]+$/ { print $1 + $2 }' "$step/uac.time")
    t1=$(date +%s.%N)
    s1=$(cpu_seconds "$server_pid")
    u1=$(cpu_seconds "$uas_pid")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    pct() { awk -v c="$1" -v w="$wall" 'BEGIN { printf "%.0f%%", 100 * c / w }'; }
    ok=$(stat_col "$step/stat.csv" 'SuccessfulCall(C)')
    failed=$(stat_col "$step/stat.csv" 'FailedCall(C)')
    retrans=$(stat_col "$step/stat.csv" 'Retransmissions(C)')
    achieved=$(achieved_rate "$step/stat.csv" "$calls")
    # Every non-zero cumulative failure counter, by name.
    reasons=$(awk -F';' '
        NR == 1 { for (i = 1; i <= NF; i++) h[i] = $i; next }
        { for (i = 1; i <= NF; i++) v[i] = $i }
        END { for (i in h) if (h[i] ~ /^Failed.*\(C\)$/ && h[i] != "FailedCall(C)" && v[i] + 0 > 0) printf "%s=%s ", h[i], v[i] }' \
        "$step/stat.csv")
    warn=$(($(server_warnings) - log_before))
    srv_cpu=$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')
    uas_cpu=$(awk -v a="$u0" -v b="$u1" 'BEGIN { print b - a }')
    per_call=$(awk -v c="$srv_cpu" -v n="$calls" 'BEGIN { printf "%.0f", 1e6 * c / n }')
    printf '%8s %7s %8s %7s %7s %8s %9s %12s %9s %9s %6s  %s\n' \
        "$rate" "$calls" "${achieved:-?}" "${ok:-?}" "${failed:-?}" "${retrans:-?}" \
        "$(pct "$srv_cpu")" "$per_call" "$(pct "${uac_cpu:-0}")" "$(pct "$uas_cpu")" "$warn" "${reasons:-}"
    if [[ $rc == 0 && ${failed:-1} == 0 && ${ok:-0} == "$calls" ]]; then
        best=$rate
    else
        first_fail="$rate calls/s: ${ok:-?} ok, ${failed:-?} failed (${reasons:-SIPp exit $rc}); see ${step}"
        break
    fi
    # Let the callee's SIPp finish its 4 s time-wait before the next step.
    sleep 5
done

echo
echo "highest rate with 0 failed calls: ${best:-none} calls/s"
[[ -n $first_fail ]] && echo "first failing step: $first_fail"
if ((warn > 0)) || [[ -n $first_fail ]]; then
    echo "server WARN/ERROR lines (last 10):"
    sed 's/\x1b\[[0-9;]*m//g' "$work/server.log" | grep -E ' (WARN|ERROR) ' | tail -10 || true
    [[ -n $first_fail ]] && KEEP=1
fi
exit 0
