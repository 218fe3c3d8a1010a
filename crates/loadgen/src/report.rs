//! What a run found: the JSON document `--json` writes and the summary
//! printed at the end.
//!
//! Meet first: [`Report`] (the whole run), [`CallFigures`] (signalling:
//! attempts, answers, failures by reason, setup time), [`MediaFigures`]
//! (RTP inside the measured window: loss, jitter, gaps, mouth-to-ear delay,
//! markers) and [`CpuFigures`] (the load generator's own CPU, so a reader
//! can tell it was not the bottleneck).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::participant::ParticipantReport;
use crate::probe::ServerFigures;
use crate::quality::Continuity;
use crate::stats::{Counters, Distribution};

/// Signalling figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallFigures {
    pub attempted: usize,
    pub answered: usize,
    pub failed: usize,
    /// Failures by reason (`"404"`, `"timeout"`, `"auth 407"`).
    pub failures: BTreeMap<String, usize>,
    /// INVITE → 200 OK, in ms.
    pub setup_ms: Distribution,
    /// Answers per second between the first and the last answer.
    pub achieved_rate: f64,
    /// INVITEs per second as we placed them (shows the load generator kept
    /// the pace it was asked for).
    pub offered_rate: f64,
    /// Calls the server hung up before we did (in conference runs these
    /// are drops; in call-rate runs the expected end of each call).
    pub remote_hangups: usize,
    /// Answer → the server's BYE, in ms (call-rate runs).
    pub hold_ms: Distribution,
    /// Our BYEs that got no answer.
    pub unanswered_byes: usize,
    pub retransmissions: u64,
    /// Datagrams that did not parse or matched no call.
    pub stray_datagrams: u64,
}

/// RTP figures inside the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaFigures {
    /// Participants with media.
    pub participants: usize,
    pub packets_sent: u64,
    pub send_errors: u64,
    /// Summed over participants.
    pub window: Counters,
    pub loss_fraction: f64,
    /// 20 ms frames the window lasted, summed over participants, and the
    /// share of them that arrived: below 1 when the bridge skipped ticks
    /// (which sequence numbers do not show) or lost packets.
    pub frames_due: u64,
    pub delivered_fraction: f64,
    /// Participants that lost at least one packet.
    pub participants_with_loss: usize,
    /// Per-participant RFC 3550 jitter, in ms.
    pub jitter_ms: Distribution,
    /// Per-participant longest silence between two packets, in ms.
    pub max_gap_ms: Distribution,
    /// Mouth-to-ear delay through the bridge over every heard marker, ms.
    pub delay_ms: Distribution,
    pub markers_sent: u64,
    pub markers_heard: u64,
    pub markers_missed: u64,
    pub false_markers: u64,
    pub odd_packets: u64,
    /// Worst lateness of our own 20 ms send slots, in ms, and how many
    /// slots were more than 5 ms late (high values mean the load generator
    /// itself was short of CPU).
    pub send_lateness_max_ms: f64,
    pub send_slots_late: u64,
}

impl MediaFigures {
    /// Adds up participant reports.
    pub fn from_participants(parts: &[ParticipantReport]) -> MediaFigures {
        let mut m = MediaFigures {
            participants: parts.len(),
            ..MediaFigures::default()
        };
        let mut jitter = Vec::with_capacity(parts.len());
        let mut gaps = Vec::with_capacity(parts.len());
        let mut delays = Vec::new();
        for p in parts {
            m.packets_sent += p.packets_sent;
            m.send_errors += p.send_errors;
            m.window.add(&p.window);
            m.frames_due += p.frames_due;
            m.participants_with_loss += usize::from(p.window.lost() > 0);
            jitter.push(p.jitter_ms);
            gaps.push(p.max_gap_ms);
            delays.extend_from_slice(&p.delays_ms);
            m.markers_sent += p.markers_sent;
            m.markers_heard += p.markers_heard;
            m.markers_missed += p.markers_missed;
            m.false_markers += p.false_markers;
            m.odd_packets += p.odd_packets;
        }
        m.loss_fraction = m.window.loss_fraction();
        if m.frames_due > 0 {
            m.delivered_fraction = m.window.received as f64 / m.frames_due as f64;
        }
        m.jitter_ms = Distribution::of(&mut jitter);
        m.max_gap_ms = Distribution::of(&mut gaps);
        m.delay_ms = Distribution::of(&mut delays);
        m
    }
}

/// The load generator's own CPU over the measured window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuFigures {
    pub user_s: f64,
    pub system_s: f64,
    pub wall_s: f64,
    /// (user + system) / wall, in percent of one core.
    pub percent_of_one_core: f64,
}

/// What the whole machine did during the window: a busy machine makes
/// every other figure pessimistic, so the report says how busy it was.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MachineFigures {
    /// Busy time of all cores over the window, in percent of one core.
    pub busy_percent: f64,
    /// The part of it that was neither the load generator nor the server
    /// (nor the reflector): other people's work.
    pub others_percent: f64,
    /// The 1-minute load average at the window's end.
    pub load_average: f64,
}

/// The speech-quality scenario's outcome (PESQ is scored from the WAVs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityFigures {
    pub talkers: usize,
    /// Where the reference starts in the recording, in samples.
    pub offset_samples: Option<usize>,
    pub continuity: Option<Continuity>,
    /// Files written: clean reference, codec-only reference, received.
    pub clean_wav: String,
    pub codec_wav: String,
    pub received_wav: String,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub target: String,
    pub codec: String,
    pub participants: usize,
    pub rooms: usize,
    pub talk_fraction: f64,
    /// Length of the measured window, in seconds.
    pub window_s: f64,
    pub calls: CallFigures,
    pub media: MediaFigures,
    pub loadgen_cpu: CpuFigures,
    pub machine: MachineFigures,
    /// Media packets received on the shared sink socket (call-rate runs).
    pub sink_packets: u64,
    pub quality: Option<QualityFigures>,
    /// The server's CPU, memory and mixer timings over the window, when
    /// its pid (and `/metrics` address) were given.
    pub server: Option<ServerFigures>,
    /// Every participant's own figures (with `--per-participant`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_participant: Vec<ParticipantReport>,
}

impl Report {
    /// A human-readable summary.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let c = &self.calls;
        let _ = writeln!(
            s,
            "{} against {}: {} participants in {} room(s), {} , {:.0}% talking, window {:.1} s",
            self.mode,
            self.target,
            self.participants,
            self.rooms,
            self.codec,
            self.talk_fraction * 100.0,
            self.window_s
        );
        if c.attempted > 0 {
            let _ = writeln!(
                s,
                "calls: {} attempted, {} answered, {} failed {:?}; setup p50 {:.1} ms p99 {:.1} ms max {:.1} ms; answered {:.0}/s (offered {:.0}/s); {} retransmissions",
                c.attempted,
                c.answered,
                c.failed,
                c.failures,
                c.setup_ms.p50,
                c.setup_ms.p99,
                c.setup_ms.max,
                c.achieved_rate,
                c.offered_rate,
                c.retransmissions
            );
            if c.hold_ms.count > 0 {
                let _ = writeln!(
                    s,
                    "server hung up {} calls after p50 {:.0} ms (max {:.0} ms); sink received {} RTP packets",
                    c.remote_hangups, c.hold_ms.p50, c.hold_ms.max, self.sink_packets
                );
            } else if c.remote_hangups > 0 {
                let _ = writeln!(
                    s,
                    "server hung up {} calls during the run",
                    c.remote_hangups
                );
            }
        }
        let m = &self.media;
        if m.participants > 0 {
            let _ = writeln!(
                s,
                "rtp: {} expected, {} received, loss {:.4}% ({} participants with loss), {:.2}% of {} frames due delivered, jitter p50 {:.2} ms p99 {:.2} ms, longest gap p99 {:.1} ms max {:.1} ms",
                m.window.expected,
                m.window.received,
                m.loss_fraction * 100.0,
                m.participants_with_loss,
                m.delivered_fraction * 100.0,
                m.frames_due,
                m.jitter_ms.p50,
                m.jitter_ms.p99,
                m.max_gap_ms.p99,
                m.max_gap_ms.max
            );
            let _ = writeln!(
                s,
                "delay: {} markers heard ({} sent, {} missed, {} false), p50 {:.1} ms p90 {:.1} ms p99 {:.1} ms max {:.1} ms",
                m.markers_heard,
                m.markers_sent,
                m.markers_missed,
                m.false_markers,
                m.delay_ms.p50,
                m.delay_ms.p90,
                m.delay_ms.p99,
                m.delay_ms.max
            );
            let _ = writeln!(
                s,
                "send: {} packets, {} errors, worst slot {:.1} ms late, {} slots > 5 ms late",
                m.packets_sent, m.send_errors, m.send_lateness_max_ms, m.send_slots_late
            );
        }
        if let Some(q) = &self.quality {
            let _ = writeln!(
                s,
                "quality: {} talker(s), offset {:?} samples, continuity {:?}; files {} {} {}",
                q.talkers, q.offset_samples, q.continuity, q.clean_wav, q.codec_wav, q.received_wav
            );
        }
        if let Some(f) = &self.server {
            let _ = writeln!(
                s,
                "server: cpu {:.1}% of one core, rss {} KiB before, {} KiB at end (max {} KiB)",
                f.cpu_percent, f.rss_before_kib, f.rss_end_kib, f.rss_max_kib
            );
            for (name, t) in [
                ("tick", &f.tick),
                ("tick sends", &f.tick_send),
                ("lateness", &f.lateness),
            ] {
                if let Some(t) = t {
                    let _ = writeln!(
                        s,
                        "server {name} ({}): {:.0} observations, mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, over 20 ms {:?}",
                        t.kind, t.count, t.mean_ms, t.p50_ms, t.p99_ms, t.max_ms, t.over_20ms
                    );
                }
            }
        }
        let cpu = &self.loadgen_cpu;
        let _ = writeln!(
            s,
            "loadgen cpu: {:.1}% of one core ({:.2} s user, {:.2} s system over {:.1} s)",
            cpu.percent_of_one_core, cpu.user_s, cpu.system_s, cpu.wall_s
        );
        let m = &self.machine;
        let _ = writeln!(
            s,
            "machine: {:.0}% of one core busy, {:.0}% of it other processes, load average {:.2}",
            m.busy_percent, m.others_percent, m.load_average
        );
        s
    }
}
