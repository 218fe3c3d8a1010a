//! Shared harness of the end-to-end tests: start the real `palaver` binary on
//! loopback ports the OS picks, run real SIP peers (SIPp, baresip) against
//! it, and read what they report. Loopback only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "e2e-secret";

/// A temporary directory removed on drop (kept when the test fails, for logs).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("palaver-e2e-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Whether a peer program exists. When `PALAVER_REQUIRE_PEERS=1` (the test
/// script sets it) a missing peer fails the test instead of skipping it.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("PALAVER_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("{tool} is required (PALAVER_REQUIRE_PEERS=1) but not installed");
        }
        eprintln!("SKIPPED: {tool} not installed");
    }
    found
}

/// The running server.
pub struct Server {
    pub child: Option<Child>,
    pub data: PathBuf,
    pub sip: SocketAddr,
    pub sip_tcp: SocketAddr,
    pub sip_tls: Option<SocketAddr>,
    pub http: SocketAddr,
    pub log: PathBuf,
    pub extra: Vec<String>,
}

impl Server {
    /// Starts `palaver serve --demo` with a fresh data dir under `dir`.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Self::start_with(
            dir.join("data"),
            dir,
            extra.iter().map(|s| s.to_string()).collect(),
            None,
        )
    }

    /// Starts on an existing data dir.
    pub fn start_on(dir: &Path, data: PathBuf, extra: &[&str]) -> Server {
        Self::start_with(
            data,
            dir,
            extra.iter().map(|s| s.to_string()).collect(),
            None,
        )
    }

    fn start_with(
        data: PathBuf,
        dir: &Path,
        extra: Vec<String>,
        sip: Option<SocketAddr>,
    ) -> Server {
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let sip_listen = sip
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palaver"));
        cmd.args([
            "serve",
            "--demo",
            "--demo-password",
            PASSWORD,
            "--sip-listen",
            &sip_listen,
        ])
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--log",
            "info,palaver_pbx=debug",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--ready-file")
        .arg(&ready)
        .args(&extra)
        .stdout(logf.try_clone().unwrap())
        .stderr(logf);
        let child = cmd.spawn().expect("starting palaver");
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&ready) {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "palaver did not become ready; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let addr = |k: &str| v[k].as_str().map(|s| s.parse::<SocketAddr>().unwrap());
        Server {
            child: Some(child),
            data,
            sip: addr("sip_udp").unwrap(),
            sip_tcp: addr("sip_tcp").unwrap(),
            sip_tls: addr("sip_tls"),
            http: addr("http").unwrap(),
            log: dir.join("server.log"),
            extra,
        }
    }

    /// SIGTERM, then wait; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        let Some(mut child) = self.child.take() else {
            return -1;
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("palaver did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops and starts again on the same data dir and SIP address.
    pub fn restart(&mut self, dir: &Path) {
        assert_eq!(self.stop(), 0, "palaver exited non-zero on SIGTERM");
        let again = Server::start_with(self.data.clone(), dir, self.extra.clone(), Some(self.sip));
        *self = again;
    }

    /// The whole `/metrics` page.
    pub fn metrics_text(&self) -> Option<String> {
        let mut s = TcpStream::connect(self.http).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    }

    /// The value of a Prometheus counter/gauge line starting with `prefix`.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        self.metrics_text()?
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The sum of every series of metric `name` (e.g. over workers).
    pub fn metric_sum(&self, name: &str) -> Option<f64> {
        let text = self.metrics_text()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(['{', ' ']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free UDP port on loopback (bound then released; good enough for peers
/// that insist on a fixed port).
pub fn free_udp_port() -> u16 {
    // Pick ports whose neighbour (+1, used by baresip for TCP) is free too.
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p < 65000
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
}

pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp")
}

/// Outcome of a SIPp run.
#[derive(Debug)]
pub struct SippResult {
    pub code: i32,
    pub successful: u64,
    pub failed: u64,
    pub output: String,
}

/// Runs SIPp to completion (`args` after the scenario), with statistics.
pub fn sipp(dir: &Path, scenario: &str, args: &[String], timeout: Duration) -> SippResult {
    let stat = dir.join(format!("stat-{scenario}-{}.csv", rand_suffix()));
    let mut cmd = Command::new("sipp");
    cmd.arg("-sf")
        .arg(sipp_dir().join(scenario))
        .args(args)
        .args([
            "-nostdin",
            "-trace_stat",
            "-trace_err",
            "-buff_size",
            "4194304",
        ])
        .arg("-stf")
        .arg(&stat)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting sipp");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut output);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut output);
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with("_errors.log") {
            output.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    let (successful, failed) = read_stats(&stat);
    SippResult {
        code: status.code().unwrap_or(-1),
        successful,
        failed,
        output,
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

fn read_stats(path: &Path) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (0, 0);
    };
    let mut lines = text.lines();
    let Some(head) = lines.next() else {
        return (0, 0);
    };
    let Some(last) = lines.last() else {
        return (0, 0);
    };
    let cols: Vec<&str> = head.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

/// Starts SIPp in the background (e.g. a UAS); killed on drop.
pub struct Background(pub Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn sipp_background(dir: &Path, scenario: &str, args: &[String]) -> Background {
    let child = Command::new("sipp")
        .arg("-sf")
        .arg(sipp_dir().join(scenario))
        .args(args)
        .args(["-nostdin", "-trace_err", "-buff_size", "4194304"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sipp");
    Background(child)
}

/// Registers `line` from 127.0.0.1:`port` with SIPp (digest auth).
pub fn sipp_register(
    dir: &Path,
    server: SocketAddr,
    line: &str,
    port: u16,
    password: &str,
) -> SippResult {
    sipp(
        dir,
        "register.xml",
        &[
            server.to_string(),
            "-s".into(),
            line.into(),
            "-au".into(),
            line.into(),
            "-ap".into(),
            password.into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-m".into(),
            "1".into(),
            "-timeout".into(),
            "10".into(),
            "-timeout_error".into(),
        ],
        Duration::from_secs(20),
    )
}

/// A tiny SIP client over UDP for precise checks.
pub struct SipClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl SipClient {
    pub fn new(server: SocketAddr) -> SipClient {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Big enough for thousands of queued responses (burst tests).
        let size: libc::c_int = 16 << 20;
        // SAFETY: setsockopt on our own socket with a pointer to a live c_int.
        unsafe {
            use std::os::fd::AsRawFd;
            let p = &size as *const libc::c_int as *const libc::c_void;
            let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                p,
                len,
            ) != 0
            {
                libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
            }
        }
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        SipClient { sock, server }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    pub fn send(&self, data: &[u8]) {
        self.sock.send_to(data, self.server).unwrap();
    }

    /// Next datagram as text, or None on timeout.
    pub fn recv(&self) -> Option<String> {
        let mut buf = vec![0u8; 65535];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Sends and waits for a final response (skipping 1xx).
    pub fn request(&self, data: &str) -> Option<String> {
        self.send(data.as_bytes());
        loop {
            let r = self.recv()?;
            if !r.starts_with("SIP/2.0 1") {
                return Some(r);
            }
        }
    }
}

/// The status code of a response text.
pub fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A header value of a response text (first occurrence, case-insensitive).
pub fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn all_headers<'a>(resp: &'a str, name: &str) -> Vec<&'a str> {
    resp.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// baresip driven through its ctrl_tcp interface.
pub struct Baresip {
    pub child: Child,
    pub ctrl: TcpStream,
    pub events: Vec<serde_json::Value>,
    buf: Vec<u8>,
    token: u32,
    pub dir: PathBuf,
}

pub struct BaresipConfig<'a> {
    pub user: &'a str,
    pub password: Option<&'a str>,
    pub server: SocketAddr,
    pub audio: &'a Path,
    pub register: bool,
    pub auto_answer: bool,
}

impl Baresip {
    pub fn start(dir: &Path, cfg: &BaresipConfig<'_>) -> Baresip {
        let conf = dir.join(format!("baresip-{}", cfg.user));
        let rec = conf.join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        let sip_port = free_udp_port();
        let ctrl_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let rtp = free_udp_port();
        let config = format!(
            "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{sip_port}\ncall_local_timeout\t120\ncall_max_calls\t\t4\n\
audio_player\t\taubridge,nil\naudio_source\t\taufile,{audio}\naudio_alert\t\taubridge,nil\naudio_level\t\tno\n\
ausrc_format\t\ts16\nauplay_format\t\ts16\nauenc_format\t\ts16\naudec_format\t\ts16\naudio_buffer\t\t20-160\n\
rtp_tos\t\t\t0\nrtp_ports\t\t{rtp}-{rtp_hi}\nrtcp_mux\t\tno\njitter_buffer_delay\t5-10\nrtp_stats\t\tyes\n\
net_interface\t\t127.0.0.1\nmodule_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\nmodule\t\t\tsndfile.so\n\
module\t\t\taufile.so\nmodule\t\t\taubridge.so\nmodule_tmp\t\tuuid.so\nmodule_tmp\t\taccount.so\n\
module_app\t\tmenu.so\nmodule_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\nsnd_path\t\t{rec}\n\
statmode_default\toff\n",
            audio = cfg.audio.display(),
            rtp_hi = rtp + 10,
            rec = rec.display(),
        );
        std::fs::write(conf.join("config"), config).unwrap();
        let auth = cfg
            .password
            .map(|p| format!(";auth_pass={p}"))
            .unwrap_or_default();
        let regint = if cfg.register { 600 } else { 0 };
        let answer = if cfg.auto_answer { "auto" } else { "manual" };
        let account = format!(
            "<sip:{user}@{server}>{auth};regint={regint};answermode={answer};audio_codecs=PCMU,PCMA\n",
            user = cfg.user,
            server = cfg.server
        );
        std::fs::write(conf.join("accounts"), account).unwrap();
        std::fs::write(conf.join("contacts"), "").unwrap();
        let log = std::fs::File::create(conf.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting baresip");
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", ctrl_port)) {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "baresip ctrl_tcp did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Baresip {
            child,
            ctrl,
            events: Vec::new(),
            buf: Vec::new(),
            token: 0,
            dir: conf,
        }
    }

    pub fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let msg = serde_json::json!({"command": command, "params": params, "token": self.token.to_string()}).to_string();
        let frame = format!("{}:{},", msg.len(), msg);
        self.ctrl.write_all(frame.as_bytes()).unwrap();
    }

    fn pump(&mut self) {
        let mut tmp = [0u8; 65536];
        if let Ok(n) = self.ctrl.read(&mut tmp)
            && n > 0
        {
            self.buf.extend_from_slice(&tmp[..n]);
        }
        while let Some(colon) = self.buf.iter().position(|b| *b == b':') {
            let Ok(len) = std::str::from_utf8(&self.buf[..colon])
                .unwrap_or("x")
                .parse::<usize>()
            else {
                self.buf.clear();
                break;
            };
            if self.buf.len() < colon + 1 + len + 1 {
                break;
            }
            let body = self.buf[colon + 1..colon + 1 + len].to_vec();
            self.buf.drain(..colon + 1 + len + 1);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                self.events.push(v);
            }
        }
    }

    /// Waits for an event of this type; returns it.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            while seen < self.events.len() {
                let e = &self.events[seen];
                seen += 1;
                if e["event"].as_bool() == Some(true) && e["type"].as_str() == Some(kind) {
                    return Some(e.clone());
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            self.pump();
        }
    }

    /// Waits until the account is registered: the REGISTER_OK event, or
    /// (when it fired before we connected) `reginfo` reporting OK.
    pub fn wait_registered(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .wait_event("REGISTER_OK", Duration::from_millis(200))
                .is_some()
            {
                return true;
            }
            self.command("reginfo", "");
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until {
                self.pump();
            }
            let ok = self.events.iter().any(|e| {
                e["response"].as_bool() == Some(true)
                    && e["data"]
                        .as_str()
                        .is_some_and(|d| d.contains("OK ") && d.contains("Expires"))
            });
            if ok {
                return true;
            }
        }
        false
    }

    pub fn event_types(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| e["type"].as_str().map(str::to_owned))
            .collect()
    }

    /// The received-audio recordings written by the sndfile module.
    pub fn received_wavs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rec"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        v.sort();
        v
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.command_quiet("quit");
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Baresip {
    fn command_quiet(&mut self, c: &str) -> std::io::Result<()> {
        let msg = serde_json::json!({"command": c, "params": "", "token": "q"}).to_string();
        self.ctrl
            .write_all(format!("{}:{},", msg.len(), msg).as_bytes())
    }
}

/// Writes a mono 16-bit WAV of a sine tone (for baresip's aufile source).
pub fn write_tone_wav(path: &Path, freq: f64, seconds: f64, rate: u32) {
    let n = (seconds * rate as f64) as usize;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let v =
            (f64::sin(2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64) * 8000.0) as i16;
        data.extend_from_slice(&v.to_le_bytes());
    }
    let mut f = std::fs::File::create(path).unwrap();
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.write_all(&h).unwrap();
    f.write_all(&data).unwrap();
}

/// Reads a 16-bit PCM WAV's samples and rate (enough for baresip's dumps).
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let bytes = std::fs::read(path).unwrap();
    let mut i = 12;
    let mut rate = 8000;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
        if id == b"fmt " {
            rate = u32::from_le_bytes(bytes[i + 12..i + 16].try_into().unwrap());
        }
        if id == b"data" {
            let end = (i + 8 + len).min(bytes.len());
            let s = bytes[i + 8..end]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return (s, rate);
        }
        i += 8 + len + (len & 1);
    }
    (Vec::new(), rate)
}

/// Goertzel power of `freq` relative to total power (0..1).
pub fn tone_ratio(samples: &[i16], rate: u32, freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0;
    for &x in samples {
        let x = x as f64;
        total += x * x;
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    let n = samples.len() as f64;
    if total == 0.0 {
        0.0
    } else {
        (2.0 * power / n) / total
    }
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        / samples.len() as f64)
        .sqrt()
}

/// Reads lines from a child's pipe into a string, for debugging.
pub fn read_all(r: impl Read) -> String {
    let mut s = String::new();
    for l in BufReader::new(r).lines().map_while(Result::ok) {
        s.push_str(&l);
        s.push('\n');
    }
    s
}
