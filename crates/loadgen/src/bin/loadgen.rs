//! `loadgen`: the command line over [`palaver_loadgen::run`]. Prints the
//! summary and writes the JSON report; exits 1 when a run could not be
//! carried out, 0 otherwise (judging the figures is the bench scripts' job).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use palaver_loadgen::run::{Mode, Settings, VoiceKind, parse_numbers, run};
use palaver_media::codec::Codec;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Conference,
    JoinRate,
    CallRate,
    Quality,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CodecArg {
    Pcmu,
    Pcma,
    Opus,
    G722,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SignalArg {
    Speech,
    Tone,
}

#[derive(Parser, Debug)]
#[command(about = "Simulated SIP/RTP participants for Palaver benchmarks (loopback only)")]
struct Args {
    #[arg(long, value_enum, default_value = "conference")]
    mode: ModeArg,
    /// The server's SIP UDP address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// Read the server address from a `palaver serve --ready-file` file.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Numbers to call: rooms as `800,801` or ranges `8000-8399`
    /// (participant i calls number i mod count).
    #[arg(long, default_value = "800")]
    rooms: String,
    /// Call-rate mode: the number that answers, plays a tone and hangs up.
    #[arg(long)]
    number: Option<String>,
    /// Participants (conference, join-rate, quality).
    #[arg(long, default_value_t = 10)]
    participants: usize,
    /// Calls to place (call-rate mode).
    #[arg(long)]
    calls: Option<usize>,
    /// New calls per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    #[arg(long, value_enum, default_value = "pcmu")]
    codec: CodecArg,
    /// Fraction of participants talking at any time.
    #[arg(long, default_value_t = 0.05)]
    talk: f64,
    #[arg(long, value_enum, default_value = "speech")]
    signal: SignalArg,
    /// Seconds to wait after the last join before measuring.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds between delay markers in each room (0: none).
    #[arg(long, default_value_t = 2.0)]
    marker_interval: f64,
    /// Digest user (also the From user).
    #[arg(long, default_value = "loadgen")]
    user: String,
    #[arg(long)]
    password: Option<String>,
    /// Room PIN, sent as RFC 4733 digits followed by `#`.
    #[arg(long)]
    pin: Option<String>,
    /// Media worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds before an unanswered call counts as failed.
    #[arg(long, default_value_t = 32.0)]
    setup_timeout: f64,
    /// Call-rate mode: seconds after which we hang up a call the server kept.
    #[arg(long, default_value_t = 10.0)]
    hold_limit: f64,
    /// Quality mode: a speech WAV (8 kHz mono 16-bit) per talker.
    #[arg(long)]
    speech: Vec<PathBuf>,
    /// Quality mode: where clean.wav, codec.wav and received.wav go.
    #[arg(long, default_value = ".")]
    record_dir: PathBuf,
    /// Send RTP to a reflector (ports first..first+participants) instead
    /// of calling a server.
    #[arg(long)]
    reflector: Option<SocketAddr>,
    /// Send RTP to the reflector described by its --ready-file (its ports,
    /// one per participant; its pid is probed like a server's).
    #[arg(long, conflicts_with = "reflector")]
    reflector_ready: Option<PathBuf>,
    /// RTP socket buffer size in bytes (0: system default).
    #[arg(long, default_value_t = 0)]
    rtp_buffer: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The server's pid, to report its CPU and memory over the window
    /// (taken from --ready-file when given there).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's HTTP address, for mixer timings from /metrics (taken
    /// from --ready-file when given there).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Include every participant's figures in the JSON report.
    #[arg(long)]
    per_participant: bool,
    /// Write the report here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{what} must be a non-negative number of seconds"))
}

/// The SIP address, pid and HTTP address from a `palaver serve
/// --ready-file` file.
fn read_ready_file(
    path: &PathBuf,
) -> anyhow::Result<(SocketAddr, Option<u32>, Option<SocketAddr>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).context("the ready file is not JSON")?;
    let addr = v
        .get("sip_udp")
        .and_then(|a| a.as_str())
        .context("the ready file has no sip_udp")?
        .parse()
        .context("sip_udp is not an address")?;
    let pid = v
        .get("pid")
        .and_then(|p| p.as_u64())
        .and_then(|p| u32::try_from(p).ok());
    let http = v
        .get("http")
        .and_then(|h| h.as_str())
        .and_then(|h| h.parse().ok());
    Ok((addr, pid, http))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let (server, ready_pid, ready_http) = match &a.ready_file {
        Some(p) => read_ready_file(p)?,
        None => (a.server, None, None),
    };
    let mut s = Settings::new(server);
    let pid = a.server_pid.or(ready_pid);
    let http = a.metrics.or(ready_http);
    s.probe = pid.map(|p| (p, http));
    s.mode = match a.mode {
        ModeArg::Conference => Mode::Conference,
        ModeArg::JoinRate => Mode::JoinRate,
        ModeArg::CallRate => Mode::CallRate,
        ModeArg::Quality => Mode::Quality,
    };
    s.numbers = match (&a.number, s.mode) {
        (Some(n), _) => parse_numbers(n)?,
        (None, Mode::CallRate) => vec!["900".into()],
        (None, _) => parse_numbers(&a.rooms)?,
    };
    if s.mode == Mode::JoinRate {
        s.numbers.truncate(1);
    }
    s.participants = match (s.mode, a.calls) {
        (Mode::CallRate, Some(c)) => c,
        (Mode::CallRate, None) => 1_000,
        _ => a.participants,
    };
    s.rate = a.rate;
    s.codec = match a.codec {
        CodecArg::Pcmu => Codec::Pcmu,
        CodecArg::Pcma => Codec::Pcma,
        CodecArg::Opus => Codec::Opus,
        CodecArg::G722 => Codec::G722,
    };
    s.talk_fraction = a.talk;
    s.voice = match a.signal {
        SignalArg::Speech => VoiceKind::Speech,
        SignalArg::Tone => VoiceKind::Tone,
    };
    s.settle = secs(a.settle, "settle")?;
    s.window = secs(a.duration, "duration")?;
    s.marker_interval = secs(a.marker_interval, "marker-interval")?;
    s.user = a.user;
    s.password = a.password;
    s.pin = a.pin;
    s.threads = a.threads;
    s.setup_timeout = secs(a.setup_timeout, "setup-timeout")?;
    s.hold_limit = secs(a.hold_limit, "hold-limit")?;
    s.speech = a.speech;
    s.record_dir = a.record_dir;
    s.rtp_buffer = a.rtp_buffer;
    s.seed = a.seed;
    s.per_participant = a.per_participant;
    if let Some(path) = &a.reflector_ready {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).context("reflector ready file")?;
        let ip: std::net::IpAddr = v
            .get("ip")
            .and_then(|i| i.as_str())
            .unwrap_or("127.0.0.1")
            .parse()
            .context("reflector ip")?;
        let ports: Vec<SocketAddr> = v
            .get("ports")
            .and_then(|p| p.as_array())
            .context("reflector ready file without ports")?
            .iter()
            .filter_map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok()))
            .map(|p| SocketAddr::new(ip, p))
            .collect();
        if s.probe.is_none()
            && let Some(pid) = v.get("pid").and_then(|p| p.as_u64())
        {
            s.probe = u32::try_from(pid).ok().map(|p| (p, None));
        }
        s.reflector = Some(ports);
    }
    if let Some(first) = a.reflector {
        let ports = (0..s.participants)
            .map(|i| {
                u16::try_from(usize::from(first.port()) + i)
                    .map(|p| SocketAddr::new(first.ip(), p))
                    .context("reflector ports end past 65535")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        s.reflector = Some(ports);
    }
    if s.mode == Mode::Quality && s.speech.is_empty() {
        bail!("--mode quality needs --speech FILE (one per talker)");
    }
    let report = run(&s)?;
    print!("{}", report.summary());
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
