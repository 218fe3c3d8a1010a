#!/usr/bin/env python3
"""Turns the JSON reports of one `bench/conference.sh` run into the
"Whole system" section of docs/benchmarks.md (printed on stdout).

    bench_table.py RESULTS_DIR

RESULTS_DIR holds meta.json, room-<N>.json (single-room ramp), multi.json
(many small rooms), reflector-<N>.json, join-rate.json, call-rate.json,
quality-<T>.json and pesq-<T>.json, sipp-*.json; any of them may be
missing (a skipped part is reported as such).
"""

import glob
import json
import os
import re
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v, nd=1, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return "∞" if v > 0 else "–"
    return f"{v:.{nd}f}{unit}"


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


def server_row(label, r, idle_kib, after=None):
    s = r.get("server") or {}
    m = r["media"]
    n = r["participants"]
    tick = s.get("tick") or {}
    send = s.get("tick_send") or {}
    late = s.get("lateness") or {}
    rss_end = s.get("rss_end_kib")
    per_kib = (rss_end - idle_kib) / n if (rss_end and idle_kib is not None and n) else None
    cpu = s.get("cpu_percent")
    return {
        "label": label,
        "n": n,
        "rooms": r["rooms"],
        "cpu": cpu,
        "cpu_per_p": (cpu / n) if (cpu is not None and n) else None,
        "rss_per_p": per_kib,
        "tick_p50": tick.get("p50_ms"),
        "tick_p99": tick.get("p99_ms"),
        "tick_max": tick.get("max_ms"),
        "tick_kind": tick.get("kind"),
        "send_p50": send.get("p50_ms"),
        "send_p99": send.get("p99_ms"),
        "late_max": late.get("max_ms"),
        "late_over": late.get("over_20ms"),
        "loss": m["loss_fraction"] * 100,
        "delivered": m.get("delivered_fraction", 0) * 100,
        "server_loss": s["server_loss"] * 100 if s.get("server_loss") is not None else None,
        "delay_p50": m["delay_ms"]["p50"] if m["delay_ms"]["count"] else None,
        "delay_p99": m["delay_ms"]["p99"] if m["delay_ms"]["count"] else None,
        "markers": f'{m["markers_heard"]}/{m["markers_heard"] + m["markers_missed"]}',
        "jitter_p99": m["jitter_ms"]["p99"],
        "answered": r["calls"]["answered"],
        "failed": r["calls"]["failed"],
        "lg_cpu": r["loadgen_cpu"]["percent_of_one_core"],
        "lg_late": m.get("send_lateness_max_ms"),
        "window": r["window_s"],
        "others": (r.get("machine") or {}).get("others_percent"),
        "left_sockets": (after or {}).get("sockets"),
        "left_cpu": (after or {}).get("idle_cpu_percent"),
    }


def main():
    d = sys.argv[1]
    meta = load(os.path.join(d, "meta.json")) or {}
    idle = meta.get("idle_rss_kib")
    out = []
    p = out.append
    p("## Whole system")
    p("")
    p(
        "Measured by `bench/conference.sh` (loadgen and server on the same machine, "
        "loopback, G.711 µ-law, 5 % of participants talking speech-like noise; "
        "figures over each step's measured window, after joins and entry prompts)."
    )
    p("")
    p(f"- Machine: {meta.get('machine', '?')}, {meta.get('cores', '?')} cores; kernel {meta.get('kernel', '?')}")
    p(f"- Date: {meta.get('date', '?')}; commit `{meta.get('commit', '?')}`{' (working tree had local changes)' if meta.get('dirty') else ''}")
    p(f"- Run: `{meta.get('command', 'bench/conference.sh')}`" + (" — **quick smoke run, not the reference figures**" if meta.get("quick") else ""))
    if meta.get("load_before"):
        p(f"- Load average when the run started: {meta['load_before']} (other work on the machine skews every figure)")
    if meta.get("nice"):
        p(f"- Server, loadgen and reflector ran at nice {meta['nice']}")
    p(f"- Server idle RSS (rooms created, no calls): {fmt(idle / 1024 if idle else None, 1, ' MiB')}")
    p("")

    ramp = []
    for f in glob.glob(os.path.join(d, "room-*.json")):
        r = load(f)
        if r:
            ramp.append(r)
    ramp.sort(key=lambda r: r["participants"])
    def idle_of(name):
        a = load(os.path.join(d, f"after-{name}.json"))
        return (a.get("idle_rss_kib") if a else None) or idle, a

    rows = []
    for r in ramp:
        i, a = idle_of(f"room-{r['participants']}")
        rows.append(server_row(f"1 room × {r['participants']}", r, i, a))
    multi = load(os.path.join(d, "multi.json"))
    if multi:
        i, a = idle_of("multi")
        rows.append(server_row(f"{multi['rooms']} rooms × {multi['participants'] // max(1, multi['rooms'])}", multi, i, a))

    if rows:
        p("| Step | Window s | Answered / failed | Server CPU % of a core | CPU % per participant | RSS above idle KiB/participant | Tick (mix) p50 / p99 / max ms | Tick sends p50 / p99 ms | Tick lateness max ms (> 20 ms) | Loss % (listeners) | Frames delivered % | Delay p50 / p99 ms (markers) | Jitter p99 ms | Loadgen CPU % (worst send slot ms) | Other processes % of a core | Left after the calls ended: sockets / idle CPU % |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            over = r["late_over"]
            over_s = f" ({int(over)})" if over is not None else ""
            p(
                f"| {r['label']} | {fmt(r['window'], 0)} | {r['answered']} / {r['failed']} | {fmt(r['cpu'])} | {fmt(r['cpu_per_p'], 3)} | {fmt(r['rss_per_p'])} "
                f"| {fmt(r['tick_p50'], 2)} / {fmt(r['tick_p99'], 2)} / {fmt(r['tick_max'], 2)} | {fmt(r['send_p50'], 2)} / {fmt(r['send_p99'], 2)} | {fmt(r['late_max'], 1)}{over_s} "
                f"| {fmt(r['loss'], 3)} | {fmt(r['delivered'], 2)} | {fmt(r['delay_p50'])} / {fmt(r['delay_p99'])} ({r['markers']}) | {fmt(r['jitter_p99'], 2)} | {fmt(r['lg_cpu'])} ({fmt(r['lg_late'])}) | {fmt(r['others'], 0)} | {r['left_sockets'] if r['left_sockets'] is not None else '–'} / {fmt(r['left_cpu'])} |"
            )
        p("")
        p(
            "Each step runs on a freshly started server (with the benchmark rooms), so one step's "
            "leftovers cannot weigh on the next; *Left after the calls ended* shows what the step left "
            "behind 3–8 s after its last BYE (a server holds a handful of sockets when idle)."
        )
        hung = os.path.join(d, "shutdown-hung.jsonl")
        if os.path.exists(hung):
            steps = [json.loads(l)["step"] for l in open(hung) if l.strip()]
            p("")
            p(f"The server did not exit within 15 s of SIGTERM after: {', '.join(steps)} (it was killed).")
        p("")
        p(
            "*Other processes* is the machine's busy time during the window minus the server's and the "
            "load generator's: other people's work on the same two cores. Where it is high, every figure "
            "in the row is pessimistic (threads waited for a core)."
        )
        p("")
        kinds = {r["tick_kind"] for r in rows if r["tick_kind"]}
        if "summary" in kinds:
            p(
                "Tick figures come from the server's Prometheus *summaries* (rolling quantiles, no buckets): "
                "p50/p99/max are the worst values among snapshots taken every 30 s of the window; the "
                "number in brackets after the maximum lateness is the count of ticks begun more than 20 ms late "
                "(the server's `palaver_mixer_ticks_late_total` over the window). "
                "*Tick (mix)* is the mixer's work for one tick of all a worker's rooms (jitter buffers, decode, mix, encode); "
                "*Tick sends* is handing that tick's packets to the kernel, timed apart "
                "(in runs before 2026-11-24 the tick figure held both). "
                "RSS per participant is (RSS at the window's end − the fresh server's idle RSS) / participants."
            )
            p("")

    # Reflector floor.
    refl = []
    for f in glob.glob(os.path.join(d, "reflector-*.json")):
        r = load(f)
        if r and r.get("server"):
            refl.append(r)
    refl.sort(key=lambda r: r["participants"])
    by_n = {r["participants"]: r for r in ramp}
    ratio_ok = None
    if refl:
        p("**Floor: bare UDP reflector** (`reflector`, same sockets and packet rate, no processing; "
          "loadgen sends to it directly, each participant gets its own packets back):")
        p("")
        p("| Participants | Reflector CPU % | Server CPU % (same N) | Ratio server / reflector |")
        p("|---|---|---|---|")
        for r in refl:
            n = r["participants"]
            rc = r["server"]["cpu_percent"]
            sv = None
            if n in by_n and by_n[n].get("server"):
                sv = by_n[n]["server"]["cpu_percent"]
            elif multi and multi["participants"] == n and multi.get("server"):
                sv = multi["server"]["cpu_percent"]
            ratio = (sv / rc) if (sv is not None and rc) else None
            if ratio is not None:
                ratio_ok = (ratio <= 2.0) if ratio_ok is None else (ratio_ok and ratio <= 2.0)
            p(f"| {n} | {fmt(rc)} | {fmt(sv)} | {fmt(ratio, 2, '×')} |")
        p("")

    # Rates.
    jr = load(os.path.join(d, "join-rate.json"))
    cr = load(os.path.join(d, "call-rate.json"))
    sipp_cr = load(os.path.join(d, "sipp-call-rate.json"))
    if jr or cr or sipp_cr:
        p("**Rates:**")
        p("")
        p("| Test | Offered | Answered / failed | Achieved calls/s | Setup p50 / p99 / max ms | Server CPU % |")
        p("|---|---|---|---|---|---|")
        for name, r, key in (("Join one room (loadgen)", jr, "join_rate"), ("Calls to 900, tone 1 s (loadgen)", cr, "call_rate")):
            if not r:
                continue
            c = r["calls"]
            s = r.get("server") or {}
            fails = ", ".join(f"{k}: {v}" for k, v in c["failures"].items())
            p(
                f"| {name} | {r['participants']} at {fmt(meta.get(key), 0)}/s | {c['answered']} / {c['failed']}{' (' + fails + ')' if fails else ''} "
                f"| {fmt(c['achieved_rate'], 0)} | {fmt(c['setup_ms']['p50'])} / {fmt(c['setup_ms']['p99'])} / {fmt(c['setup_ms']['max'])} | {fmt(s.get('cpu_percent'))} |"
            )
        if sipp_cr:
            p(
                f"| Calls to 900, tone 1 s (SIPp) | {sipp_cr.get('calls')} at {sipp_cr.get('rate')}/s | {sipp_cr.get('successful')} / {sipp_cr.get('failed')} "
                f"| {fmt(sipp_cr.get('achieved_rate'), 0)} | – | {fmt(sipp_cr.get('server_cpu'))} |"
            )
        p("")
        if sipp_cr:
            p(f"*Achieved* for SIPp is the rate the server answered at, from its call records (calls after the first over the time from the first answer to the last). "
              f"Counted instead as calls over SIPp's whole span minus the 1 s of tone, which also holds every call's setup and any hold beyond 1 s, it is {fmt(sipp_cr.get('completed_rate'), 0)}/s.")
            p("")

    # Quality.
    q = {}
    for t in (1, 3):
        qq = load(os.path.join(d, f"quality-{t}.json"))
        ps = load(os.path.join(d, f"pesq-{t}.json"))
        if qq or ps:
            q[t] = (qq, ps)
    pesq_ok = None
    if q:
        p("**Speech quality** (P.862 narrow-band PESQ of espeak-ng speech; the codec-only path is the same speech "
          "through G.711 alone — summed and coded again for three talkers, i.e. an ideal bridge):")
        p("")
        p("| Talkers | PESQ codec only | PESQ through the room | Difference | Samples identical to codec-only | Per-second lag of the stream (samples) |")
        p("|---|---|---|---|---|---|")
        for t, (qq, ps) in sorted(q.items()):
            cont = ((qq or {}).get("quality") or {}).get("continuity") or {}
            diff = ps.get("difference") if ps else None
            if diff is not None:
                ok = abs(diff) <= 0.03
                pesq_ok = ok if pesq_ok is None else (pesq_ok and ok)
            lags = cont.get("segment_lags")
            p(
                f"| {t} | {fmt(ps.get('codec_only') if ps else None, 3)} | {fmt(ps.get('room') if ps else None, 3)} | {fmt(diff, 3)} "
                f"| {fmt(cont.get('exact_fraction', None) * 100 if cont.get('exact_fraction') is not None else None, 2, ' %')} | {lags if lags is not None else '–'} |"
            )
        p("")

    # SIPp ramp.
    sipp = load(os.path.join(d, "sipp-ramp.json"))
    if sipp:
        p("**External confirmation, SIPp** (`bench/sipp-ramp.sh`, `rtp_stream` µ-law WAV, one room):")
        p("")
        p("| Participants | SIPp result | Server CPU % |")
        p("|---|---|---|")
        for s in sipp.get("steps", []):
            p(f"| {s['n']} | {s['result']} | {fmt(s.get('server_cpu'))} |")
        p("")

    # Targets.
    def find(n):
        return next((r for r in rows if r["n"] == n and r["rooms"] == 1), None)

    big = find(1000)
    mrow = next((r for r in rows if r["rooms"] > 1), None)

    def late_count(r):
        return "not counted" if r["late_over"] is None else str(int(r["late_over"]))

    def bounds(r, cpu_max):
        if r is None:
            return None
        checks = [
            r["tick_p99"] is not None and r["tick_p99"] < 5.0,
            (r["late_over"] == 0) if r["late_over"] is not None else (r["late_max"] is not None and r["late_max"] <= 20.0),
            r["loss"] < 0.1,
            r["cpu"] is not None and r["cpu"] <= cpu_max,
        ]
        return all(checks)

    p("**Targets (issue 6):**")
    p("")
    if big:
        p(
            f"- One room, 1000 participants: tick p99 {fmt(big['tick_p99'], 2)} ms (< 5), ticks later than 20 ms {late_count(big)} (0; max lateness {fmt(big['late_max'], 1)} ms), "
            f"loss {fmt(big['loss'], 3)} % (< 0.1), CPU {fmt(big['cpu'])} % (≤ 25), RSS {fmt(big['rss_per_p'])} KiB/participant (≤ 64), "
            f"window {fmt(big['window'], 0)} s: {verdict(bounds(big, 25.0) and big['rss_per_p'] is not None and big['rss_per_p'] <= 64)}"
        )
    else:
        p("- One room, 1000 participants: not measured")
    if mrow:
        p(
            f"- {mrow['label']}: tick p99 {fmt(mrow['tick_p99'], 2)} ms, ticks later than 20 ms {late_count(mrow)} (max lateness {fmt(mrow['late_max'], 1)} ms), loss {fmt(mrow['loss'], 3)} %, "
            f"CPU {fmt(mrow['cpu'])} % (≤ 50): {verdict(bounds(mrow, 50.0))}"
        )
    p(f"- Server CPU per participant ≤ 2× the reflector's: {verdict(ratio_ok)}")
    dl = [r for r in rows if r["delay_p50"] is not None]
    if dl:
        worst50 = max(r["delay_p50"] for r in dl)
        worst99 = max(r["delay_p99"] for r in dl)
        p(f"- Mouth-to-ear delay through the bridge, worst step: p50 {fmt(worst50)} ms (≤ 40), p99 {fmt(worst99)} ms (≤ 60): {verdict(worst50 <= 40 and worst99 <= 60)}")
    p(f"- PESQ through a room within 0.03 of codec only (1 and 3 talkers): {verdict(pesq_ok)}")
    # A rate is met when calls were offered at the target pace, every one
    # succeeded, and answers kept up (within 1 %: the first and last
    # answers bound the measured span).
    if cr:
        c = cr["calls"]
        ok = c.get("offered_rate", 0) >= 0.99 * 2100 and c["achieved_rate"] >= 0.99 * 2100 and c["failed"] == 0
        p(f"- Call setup ≥ 2,100 calls/s with 0 failed (loadgen): offered {fmt(c.get('offered_rate'), 0)}/s, answered {fmt(c['achieved_rate'], 0)}/s, {c['failed']} failed: {verdict(ok)}")
    if sipp_cr:
        ok = (sipp_cr.get("achieved_rate") or 0) >= 0.99 * 2100 and sipp_cr.get("failed") == 0
        p(f"- Call setup ≥ 2,100 calls/s with 0 failed (SIPp): {fmt(sipp_cr.get('achieved_rate'), 0)}/s, {sipp_cr.get('failed')} failed: {verdict(ok)}")
    if jr:
        c = jr["calls"]
        ok = c.get("offered_rate", 0) >= 0.99 * 500 and c["achieved_rate"] >= 0.99 * 500 and c["failed"] == 0
        p(f"- ≥ 500 joins per second into one room with 0 failed: offered {fmt(c.get('offered_rate'), 0)}/s, answered {fmt(c['achieved_rate'], 0)}/s, {c['failed']} failed: {verdict(ok)}")
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
