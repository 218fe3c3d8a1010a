//! Report mail (SPEC C15) against a real SMTP server on loopback: Debian's
//! aiosmtpd, started by the test on a free port, prints every message it
//! receives. Also the retry path (server down → queued → server up →
//! delivered, across a restart of the store) and the `.eml` outbox.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use palaver_conference::mail::{MailSettings, Mailer, SmtpSettings, TlsMode};
use palaver_conference::{ConferenceReport, ParticipantRecord};
use palaver_media::room::ParticipantId;
use palaver_store::{RoomId, Store};

/// aiosmtpd's Debugging handler on 127.0.0.1:port; its stdout lines arrive
/// on the channel.
struct SmtpServer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl SmtpServer {
    fn start(port: u16) -> SmtpServer {
        let mut child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is needed for this test (Debian package)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Waiting for another process to listen: a readiness poll, not a
        // timing assumption.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        SmtpServer { child, lines }
    }

    /// Everything printed until a line containing `end` (or 20 s).
    fn read_until(&self, end: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut text = String::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                    if line.contains(end) {
                        return text;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no {end:?} from the SMTP server; got:\n{text}");
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn smtp(port: u16, data: &Path) -> MailSettings {
    let mut s = MailSettings::new("Palaver <pbx@palaver.test>", data);
    s.smtp = Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        tls: TlsMode::None,
    });
    s.timeout = Duration::from_secs(10);
    s
}

fn report() -> ConferenceReport {
    let t = 1_700_000_000_000;
    let who =
        |n: u32, number: &str, name: &str, host: bool, joined: i64, left: i64| ParticipantRecord {
            participant: ParticipantId(n),
            number: Some(number.into()),
            name: Some(name.into()),
            host,
            joined_at: t + joined,
            left_at: Some(t + left),
        };
    ConferenceReport {
        room: RoomId(800),
        room_name: "Weekly".into(),
        to: Some("boss@palaver.test".into()),
        started_at: t,
        ended_at: t + 600_000,
        peak_participants: 3,
        participants: vec![
            who(1, "+33100000001", "Alice Host", true, 0, 600_000),
            who(2, "+33100000002", "Bob", false, 10_000, 300_000),
            who(3, "+33100000003", "Carol", false, 20_000, 600_000),
        ],
        recordings: Vec::new(),
    }
}

/// C15: the report e-mail arrives at a real SMTP server and lists every
/// participant.
#[tokio::test]
async fn c15_report_arrives_by_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let port = free_port();
    let server = SmtpServer::start(port);
    let mailer = Mailer::new(store.clone(), smtp(port, dir.path())).unwrap();
    let queued = mailer.send_report(&report()).await.unwrap().unwrap();
    let done = mailer.deliver_due(palaver_store::now_ms()).await.unwrap();
    assert_eq!((done.sent, done.failed), (1, 0));
    let text = server.read_until("END MESSAGE");
    for needle in [
        "Subject: Conference report: Weekly",
        "To: boss@palaver.test",
        "Alice Host <+33100000001> [host]",
        "Bob <+33100000002>",
        "Carol <+33100000003>",
        "Peak at once:  3",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(store.mail(queued.id).await.unwrap().sent_at.is_some());
    // Sent mail is never due again.
    let again = mailer
        .deliver_due(palaver_store::now_ms() + 86_400_000)
        .await
        .unwrap();
    assert_eq!(again.sent, 0);
}

/// C15: with the server down the message stays queued with a backoff;
/// after a restart of the store and with the server up, it is delivered.
#[tokio::test]
async fn c15_failed_sends_are_retried_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (id, now) = {
        let store = Store::open(None, dir.path()).await.unwrap();
        let mailer = Mailer::new(store.clone(), smtp(port, dir.path())).unwrap();
        let queued = mailer.send_report(&report()).await.unwrap().unwrap();
        let now = queued.next_attempt_at;
        let done = mailer.deliver_due(now).await.unwrap();
        assert_eq!((done.sent, done.failed), (0, 1));
        let m = store.mail(queued.id).await.unwrap();
        assert_eq!(m.attempts, 1);
        assert_eq!(m.next_attempt_at, now + 30_000, "30 s backoff");
        assert!(m.last_error.is_some() && m.sent_at.is_none());
        // Not due before the backoff ends.
        assert_eq!(mailer.deliver_due(now + 29_000).await.unwrap().failed, 0);
        (queued.id, now)
    };
    // "Restart": a new store and mailer over the same data dir.
    let store = Store::open(None, dir.path()).await.unwrap();
    let server = SmtpServer::start(port);
    let mailer = Mailer::new(store.clone(), smtp(port, dir.path())).unwrap();
    let done = mailer.deliver_due(now + 31_000).await.unwrap();
    assert_eq!((done.sent, done.failed), (1, 0));
    let text = server.read_until("END MESSAGE");
    assert!(text.contains("Carol <+33100000003>"), "{text}");
    assert!(store.mail(id).await.unwrap().sent_at.is_some());
}

/// C15: with no SMTP server configured, messages become `.eml` files in
/// `<data>/outbox/`.
#[tokio::test]
async fn c15_without_smtp_mail_goes_to_the_outbox_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let mailer = Mailer::new(
        store.clone(),
        MailSettings::new("pbx@palaver.test", dir.path()),
    )
    .unwrap();
    let queued = mailer.send_report(&report()).await.unwrap().unwrap();
    let mut no_address = report();
    no_address.to = None;
    assert!(mailer.send_report(&no_address).await.unwrap().is_none());
    let done = mailer.deliver_due(palaver_store::now_ms()).await.unwrap();
    assert_eq!(done.sent, 1);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [format!("{}.eml", queued.id)]);
    let eml = std::fs::read_to_string(dir.path().join("outbox").join(&files[0])).unwrap();
    assert!(eml.contains("Subject: Conference report: Weekly"), "{eml}");
    assert!(eml.contains("Bob <+33100000002>"), "{eml}");
}
