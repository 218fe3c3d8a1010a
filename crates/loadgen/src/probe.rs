//! Watching the server under test: its CPU and memory from `/proc`, and
//! its mixer timings from the Prometheus `/metrics` page.
//!
//! Meet first: [`ServerProbe`] (snapshots at the start and end of the
//! measured window and every 30 s in between), [`Sample`] and
//! [`parse_prometheus`] (the text exposition format), and [`Timing`] (a
//! histogram or summary turned into count, mean, p50, p99, max and the
//! number of observations above 20 ms for the window).
//!
//! Histograms with buckets give exact window figures (bucket counts at the
//! end minus at the start; a percentile is the upper bound of its bucket).
//! Summaries — what `metrics-exporter-prometheus` publishes when no
//! buckets are configured — only carry quantiles over a rolling window, so
//! for those the probe keeps the worst value seen across its snapshots and
//! cannot count late ticks; the report says which kind it got.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::Serialize;

use crate::sys::{self, CpuTime};

/// One line of the exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses Prometheus text; lines it cannot read are skipped.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = Vec::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            // key
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            let mut escaped = false;
            for (_, c) in chars.by_ref() {
                if escaped {
                    value.push(match c {
                        'n' => '\n',
                        other => other,
                    });
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    break;
                } else {
                    value.push(c);
                }
            }
            labels.push((key.trim().to_owned(), value));
        }
        &body[end? + 1..]
    } else {
        rest
    };
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// A timing metric over the measured window, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timing {
    /// `histogram` (exact for the window) or `summary` (rolling
    /// quantiles: p50/p99/max are the worst seen in the window's snapshots).
    pub kind: &'static str,
    pub count: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Observations above 20 ms (histograms with a 0.02 bucket only).
    pub over_20ms: Option<f64>,
}

fn sum_of(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .filter(|v| v.is_finite())
        .sum()
}

/// Cumulative bucket counts of histogram `name`, summed over every label
/// set (all workers), by upper bound.
fn buckets(samples: &[Sample], name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let mut out: Vec<(f64, f64)> = Vec::new();
    for s in samples.iter().filter(|s| s.name == bucket) {
        let Some(le) = s.label("le").and_then(parse_value) else {
            continue;
        };
        match out.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += s.value,
            None => out.push((le, s.value)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The timing of `name` between two scrapes. `snapshots` are every scrape
/// of the window (for summaries).
pub fn timing(
    before: &[Sample],
    after: &[Sample],
    snapshots: &[Vec<Sample>],
    name: &str,
) -> Option<Timing> {
    let count = sum_of(after, &format!("{name}_count")) - sum_of(before, &format!("{name}_count"));
    let sum = sum_of(after, &format!("{name}_sum")) - sum_of(before, &format!("{name}_sum"));
    let b0 = buckets(before, name);
    let b1 = buckets(after, name);
    let mean_ms = if count > 0.0 { 1e3 * sum / count } else { 0.0 };
    if !b1.is_empty() {
        let delta: Vec<(f64, f64)> = b1
            .iter()
            .map(|(le, c)| {
                let prev = b0.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c);
                (*le, c - prev)
            })
            .collect();
        let total = delta.last().map_or(0.0, |(_, c)| *c);
        let quantile = |q: f64| -> f64 {
            let want = q * total;
            delta
                .iter()
                .find(|(_, c)| *c >= want && *c > 0.0)
                .map_or(0.0, |(le, _)| *le * 1e3)
        };
        let over_20ms = delta
            .iter()
            .find(|(le, _)| (*le - 0.02).abs() < 1e-12)
            .map(|(_, c)| total - c);
        return Some(Timing {
            kind: "histogram",
            count,
            mean_ms,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            max_ms: quantile(1.0),
            over_20ms,
        });
    }
    let mut found = false;
    let mut worst = |q: &str| -> f64 {
        let mut m: f64 = 0.0;
        for snap in snapshots {
            for s in snap
                .iter()
                .filter(|s| s.name == name && s.label("quantile") == Some(q))
            {
                if s.value.is_finite() {
                    found = true;
                    m = m.max(s.value);
                }
            }
        }
        m * 1e3
    };
    let p50_ms = worst("0.5");
    let p99_ms = worst("0.99");
    let max_ms = worst("1");
    found.then_some(Timing {
        kind: "summary",
        count,
        mean_ms,
        p50_ms,
        p99_ms,
        max_ms,
        over_20ms: None,
    })
}

/// Fetches `/metrics` from `http` (plain HTTP/1.0 on loopback).
pub fn scrape(http: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP body"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("metrics: {}", head.lines().next().unwrap_or("")),
        ));
    }
    Ok(body.to_owned())
}

/// The server's figures over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFigures {
    pub pid: u32,
    /// Server CPU, percent of one core.
    pub cpu_percent: f64,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    /// VmRSS before the first call of the run, at the window's start and
    /// end, and the largest seen.
    pub rss_before_kib: u64,
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
    /// The mixer's part of a tick (decode, mix, encode).
    pub tick: Option<Timing>,
    /// Handing a tick's packets to the kernel.
    pub tick_send: Option<Timing>,
    pub lateness: Option<Timing>,
    /// Packets the server counted lost over those it expected in the
    /// window (`palaver_rtp_lost_packets_total` and
    /// `palaver_rtp_received_packets_total`).
    pub server_loss: Option<f64>,
    pub calls_active: Option<f64>,
    /// Scrapes that failed (metrics then incomplete).
    pub scrape_errors: usize,
}

/// Snapshots of one server process.
#[derive(Debug)]
pub struct ServerProbe {
    pid: u32,
    http: Option<SocketAddr>,
    rss_before: u64,
    start_cpu: Option<CpuTime>,
    start_wall: Option<std::time::Instant>,
    rss_start: u64,
    rss_max: u64,
    first: Option<Vec<Sample>>,
    snapshots: Vec<Vec<Sample>>,
    scrape_errors: usize,
}

impl ServerProbe {
    /// Probes process `pid`, and `/metrics` at `http` if given. Call
    /// before the run places calls (the idle memory baseline).
    pub fn new(pid: u32, http: Option<SocketAddr>) -> Self {
        Self {
            pid,
            http,
            rss_before: sys::rss_kib(Some(pid)).unwrap_or(0),
            start_cpu: None,
            start_wall: None,
            rss_start: 0,
            rss_max: 0,
            first: None,
            snapshots: Vec::new(),
            scrape_errors: 0,
        }
    }

    fn snapshot(&mut self) -> Option<Vec<Sample>> {
        let http = self.http?;
        match scrape(http) {
            Ok(t) => Some(parse_prometheus(&t)),
            Err(_) => {
                self.scrape_errors += 1;
                None
            }
        }
    }

    fn rss(&mut self) -> u64 {
        let r = sys::rss_kib(Some(self.pid)).unwrap_or(0);
        self.rss_max = self.rss_max.max(r);
        r
    }

    /// The measured window starts.
    pub fn start(&mut self) {
        self.start_cpu = CpuTime::read(Some(self.pid)).ok();
        self.start_wall = Some(std::time::Instant::now());
        self.rss_start = self.rss();
        let s = self.snapshot();
        if let Some(s) = &s {
            self.snapshots.push(s.clone());
        }
        self.first = s;
    }

    /// A snapshot inside the window (keeps summary maxima honest).
    pub fn tick(&mut self) {
        self.rss();
        if let Some(s) = self.snapshot() {
            self.snapshots.push(s);
        }
    }

    /// The window ends: the figures.
    pub fn finish(mut self) -> ServerFigures {
        let cpu = CpuTime::read(Some(self.pid)).ok();
        let wall = self.start_wall.map_or(0.0, |w| w.elapsed().as_secs_f64());
        let rss_end = self.rss();
        let last = self.snapshot();
        if let Some(s) = &last {
            self.snapshots.push(s.clone());
        }
        let (user, system) = match (self.start_cpu, cpu) {
            (Some(a), Some(b)) => (b.user_s - a.user_s, b.system_s - a.system_s),
            _ => (0.0, 0.0),
        };
        let mut f = ServerFigures {
            pid: self.pid,
            cpu_percent: if wall > 0.0 {
                100.0 * (user + system) / wall
            } else {
                0.0
            },
            cpu_user_s: user,
            cpu_system_s: system,
            rss_before_kib: self.rss_before,
            rss_start_kib: self.rss_start,
            rss_end_kib: rss_end,
            rss_max_kib: self.rss_max,
            scrape_errors: self.scrape_errors,
            ..ServerFigures::default()
        };
        if let (Some(a), Some(b)) = (&self.first, &last) {
            f.tick = timing(a, b, &self.snapshots, "palaver_mixer_tick_seconds");
            f.tick_send = timing(a, b, &self.snapshots, "palaver_mixer_tick_send_seconds");
            f.lateness = timing(a, b, &self.snapshots, "palaver_mixer_tick_lateness_seconds");
            // Summaries cannot count ticks over 20 ms; the server's counter
            // does.
            if let Some(l) = f.lateness.as_mut()
                && l.over_20ms.is_none()
                && b.iter().any(|s| s.name == "palaver_mixer_ticks_late_total")
            {
                l.over_20ms = Some(
                    sum_of(b, "palaver_mixer_ticks_late_total")
                        - sum_of(a, "palaver_mixer_ticks_late_total"),
                );
            }
            f.server_loss = server_loss(a, b);
            f.calls_active = b
                .iter()
                .find(|s| s.name == "palaver_calls_active")
                .map(|s| s.value);
        }
        f
    }
}

/// Lost over expected between two snapshots, from the server's receive
/// counters (None when it received nothing in between).
pub fn server_loss(before: &[Sample], after: &[Sample]) -> Option<f64> {
    let delta = |name: &str| sum_of(after, name) - sum_of(before, name);
    let received = delta("palaver_rtp_received_packets_total");
    let lost = delta("palaver_rtp_lost_packets_total");
    (received + lost > 0.0).then(|| lost / (received + lost))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "# TYPE palaver_mixer_tick_seconds summary
palaver_mixer_tick_seconds{worker=\"0\",quantile=\"0\"} 0.0001
palaver_mixer_tick_seconds{worker=\"0\",quantile=\"0.5\"} 0.0004
palaver_mixer_tick_seconds{worker=\"0\",quantile=\"0.99\"} 0.0021
palaver_mixer_tick_seconds{worker=\"0\",quantile=\"1\"} 0.0050
palaver_mixer_tick_seconds{worker=\"1\",quantile=\"0.99\"} 0.0030
palaver_mixer_tick_seconds_sum{worker=\"0\"} 1.5
palaver_mixer_tick_seconds_count{worker=\"0\"} 3000
palaver_mixer_tick_seconds_sum{worker=\"1\"} 0.5
palaver_mixer_tick_seconds_count{worker=\"1\"} 1000
palaver_calls_active 12
palaver_rtp_loss_fraction{room=\"1\",participant=\"a b\\\"c\"} 0.01
";

    #[test]
    fn server_loss_is_lost_over_expected_across_workers() {
        let before = parse_prometheus(
            "palaver_rtp_received_packets_total{worker=\"0\"} 100\n\
             palaver_rtp_received_packets_total{worker=\"1\"} 50\n\
             palaver_rtp_lost_packets_total{worker=\"0\"} 1\n",
        );
        let after = parse_prometheus(
            "palaver_rtp_received_packets_total{worker=\"0\"} 1090\n\
             palaver_rtp_received_packets_total{worker=\"1\"} 1050\n\
             palaver_rtp_lost_packets_total{worker=\"0\"} 6\n\
             palaver_rtp_lost_packets_total{worker=\"1\"} 5\n",
        );
        // 1990 received and 10 lost in between.
        assert_eq!(server_loss(&before, &after), Some(10.0 / 2000.0));
        assert_eq!(server_loss(&after, &after), None);
    }

    #[test]
    fn parses_labels_escapes_and_plain_lines() {
        let s = parse_prometheus(SUMMARY);
        assert_eq!(s.len(), 11);
        assert_eq!(s[0].label("worker"), Some("0"));
        assert_eq!(s[0].label("quantile"), Some("0"));
        assert_eq!(s[9].name, "palaver_calls_active");
        assert_eq!(s[9].value, 12.0);
        assert_eq!(s[10].label("participant"), Some("a b\"c"));
        assert!(parse_prometheus("garbage {{{ \n x{a=1} 2\n y NaNx").is_empty());
    }

    #[test]
    fn summary_window_takes_worst_snapshot() {
        let before = parse_prometheus(
            "palaver_mixer_tick_seconds_sum{worker=\"0\"} 1.0\npalaver_mixer_tick_seconds_count{worker=\"0\"} 2000\n",
        );
        let after = parse_prometheus(SUMMARY);
        let t = timing(
            &before,
            &after,
            std::slice::from_ref(&after),
            "palaver_mixer_tick_seconds",
        )
        .expect("timing");
        assert_eq!(t.kind, "summary");
        assert_eq!(t.count, 2000.0);
        assert!((t.mean_ms - 0.5).abs() < 1e-9);
        assert!((t.p99_ms - 3.0).abs() < 1e-9);
        assert!((t.max_ms - 5.0).abs() < 1e-9);
        assert_eq!(t.over_20ms, None);
    }

    #[test]
    fn histogram_window_subtracts_buckets() {
        let h = |c: [f64; 4]| {
            format!(
                "x_bucket{{worker=\"0\",le=\"0.001\"}} {}\nx_bucket{{worker=\"0\",le=\"0.005\"}} {}\nx_bucket{{worker=\"0\",le=\"0.02\"}} {}\nx_bucket{{worker=\"0\",le=\"+Inf\"}} {}\nx_count{{worker=\"0\"}} {}\nx_sum{{worker=\"0\"}} 0\n",
                c[0], c[1], c[2], c[3], c[3]
            )
        };
        let before = parse_prometheus(&h([10.0, 10.0, 10.0, 10.0]));
        // 100 new: 90 ≤ 1 ms, 9 in (1, 5] ms, 1 above 20 ms.
        let after = parse_prometheus(&h([100.0, 109.0, 109.0, 110.0]));
        let t = timing(&before, &after, &[], "x").expect("timing");
        assert_eq!(t.kind, "histogram");
        assert_eq!(t.count, 100.0);
        assert_eq!(t.p50_ms, 1.0);
        assert_eq!(t.p99_ms, 5.0);
        assert!(t.max_ms.is_infinite());
        assert_eq!(t.over_20ms, Some(1.0));
        assert!(timing(&before, &after, &[], "missing").is_none());
    }
}
