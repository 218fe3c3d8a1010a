#!/usr/bin/env bash
# Runs the cargo-fuzz targets (libFuzzer) for a fixed time each. Not part of CI.
#
#   scripts/fuzz.sh                  every SIP target, 60 s each
#   scripts/fuzz.sh sip_parse 600    one target for 10 minutes
#   scripts/fuzz.sh all 300          every target in fuzz/ (SIP and SDP)
#
# What works on this machine (stable Rust 1.95): `cargo fuzz` builds on
# stable with `--sanitizer none`; AddressSanitizer needs `-Zsanitizer`, i.e.
# a nightly toolchain (set FUZZ_TOOLCHAIN=nightly FUZZ_SANITIZER=address).
# The SIP code is safe Rust, so what the fuzzer hunts is panics, hangs,
# runaway memory and broken invariants — none of which needs ASan.
#
# The working corpus grows in fuzz/corpus/<target> (not committed); it starts
# from the committed seeds in fuzz/corpus_seed/<target>. Crashes land in
# fuzz/artifacts/<target>/; replay one with
#   cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/crash-…
# and turn it into a named test in crates/sip/tests/. libFuzzer's own output
# (executions, coverage, the panic message) goes to
# fuzz/target/fuzz-logs/<target>-<time>.log; the script prints its summary.
#
# Environment: FUZZ_TOOLCHAIN (default stable), FUZZ_SANITIZER (default none),
# FUZZ_JOBS (parallel libFuzzer workers, default 1: the machine has 2 cores),
# FUZZ_KEEP_GOING=1 (libFuzzer fork mode: record each crash in
# fuzz/artifacts/<target>/ and go on fuzzing, to survey every open bug at once
# rather than stopping at the first).
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

SIP_TARGETS=(sip_parse sip_stream sip_transaction sip_auth sip_dtmf_info)
target=${1:-sip}
seconds=${2:-60}
toolchain=${FUZZ_TOOLCHAIN:-stable}
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

case $target in
sip) targets=("${SIP_TARGETS[@]}") ;;
all) mapfile -t targets < <(cargo "+$toolchain" fuzz list) ;;
*) targets=("$target") ;;
esac

# Transaction programs and TCP streams hold several messages.
max_len() {
    case $1 in
    sip_transaction | sip_stream) echo 16384 ;;
    *) echo 8192 ;;
    esac
}

# -jobs=1 would still fork a worker that logs to fuzz-0.log: only ask for
# workers when more than one is wanted.
parallel=()
((jobs > 1)) && parallel=(-jobs="$jobs" -workers="$jobs")
if [[ ${FUZZ_KEEP_GOING:-0} == 1 ]]; then
    parallel=(-fork="$jobs" -ignore_crashes=1)
fi

status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" target/fuzz-logs
    seeds=()
    [[ -d corpus_seed/$t ]] && seeds=("corpus_seed/$t")
    log="target/fuzz-logs/$t-$(date +%Y%m%dT%H%M%S).log"
    echo "== $t for ${seconds}s (toolchain $toolchain, sanitizer $sanitizer, log fuzz/$log)"
    if cargo "+$toolchain" fuzz run -O --sanitizer "$sanitizer" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
        "${parallel[@]}" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        result="no crash"
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$t/)"
        status=1
    fi
    # libFuzzer's own summary: executions, time, corpus, coverage.
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|cov: .*(DONE|INITED)' "$log" | tail -6 || true
    echo "== $t: $result"
done
exit $status
