//! Mail delivery for the end-of-conference reports (SPEC C15): queue in the
//! store's outbox, send over SMTP with `lettre` (or, with no SMTP server
//! configured, write `.eml` files to `<data>/outbox/`), retry failures with
//! backoff. The outbox is the database table, so a message queued before a
//! crash or during an SMTP outage is sent later, never lost.
//!
//! Meet first: [`Mailer`] (`enqueue`/`send_report` to queue, `deliver_due`
//! for one pass over the due messages, `run` for the background loop),
//! [`MailSettings`] and [`SmtpSettings`] with [`TlsMode`].
//!
//! This is the only module of the crate that uses tokio; it holds no room
//! logic. Delivery is at least once: a crash between a successful SMTP
//! transaction and `mark_mail_sent` sends that message again.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use palaver_store::{Backoff, NewMail, OutboxMail, Store, StoreError};

use crate::report::ConferenceReport;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text (a relay on localhost or a trusted network).
    None,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// An SMTP server to send through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    /// Host name (also checked against its certificate with TLS).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login, if the server wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<String>,
    /// Connection security.
    pub tls: TlsMode,
}

/// Where mail goes and how failures are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// SMTP server; `None` writes `.eml` files to `outbox_dir` instead.
    pub smtp: Option<SmtpSettings>,
    /// Sender address (`Palaver <pbx@example.org>` or a bare address).
    pub from: String,
    /// Folder for `.eml` files when there is no SMTP server.
    pub outbox_dir: PathBuf,
    /// Delay before retrying a failed send.
    pub backoff: Backoff,
    /// Longest SMTP conversation.
    pub timeout: Duration,
    /// How often `run` looks for due messages when nothing wakes it.
    pub poll_interval: Duration,
}

impl MailSettings {
    /// No SMTP: messages from `from` are written to `<data_dir>/outbox/`.
    pub fn new(from: impl Into<String>, data_dir: &Path) -> Self {
        MailSettings {
            smtp: None,
            from: from.into(),
            outbox_dir: data_dir.join("outbox"),
            backoff: Backoff::default(),
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(15),
        }
    }
}

/// What went wrong with mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The outbox table.
    #[error("mail outbox: {0}")]
    Store(#[from] StoreError),
    /// A sender or recipient that is not an address.
    #[error("bad address {address:?}: {reason}")]
    Address {
        /// The text.
        address: String,
        /// Why.
        reason: String,
    },
    /// The message could not be built.
    #[error("building the message: {0}")]
    Build(String),
    /// SMTP settings that cannot work (TLS parameters).
    #[error("SMTP settings: {0}")]
    Settings(String),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(String),
    /// Writing the `.eml` file.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Messages sent (or written to the outbox folder).
    pub sent: u32,
    /// Messages that failed and were rescheduled.
    pub failed: u32,
}

/// Sends queued mail. Cheap to share behind an `Arc`.
pub struct Mailer {
    store: Store,
    settings: MailSettings,
    from: Mailbox,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    wake: Notify,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field(
                "smtp",
                &self.settings.smtp.as_ref().map(|s| (&s.host, s.port)),
            )
            .field("from", &self.settings.from)
            .finish()
    }
}

/// Messages handled per pass, so one pass stays short.
const BATCH: u32 = 50;

fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address {
            address: address.to_owned(),
            reason: e.to_string(),
        })
}

fn transport(
    s: &SmtpSettings,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls = |host: &str| {
        TlsParameters::new(host.to_owned()).map_err(|e| MailError::Settings(e.to_string()))
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        .port(s.port)
        .timeout(Some(timeout));
    b = match s.tls {
        TlsMode::None => b.tls(Tls::None),
        TlsMode::Starttls => b.tls(Tls::Required(tls(&s.host)?)),
        TlsMode::Tls => b.tls(Tls::Wrapper(tls(&s.host)?)),
    };
    if let Some(user) = &s.username {
        b = b.credentials(Credentials::new(
            user.clone(),
            s.password.clone().unwrap_or_default(),
        ));
    }
    Ok(b.build())
}

impl Mailer {
    /// A mailer over `store`'s outbox. Fails on a `from` that is not an
    /// address or TLS settings that cannot be built.
    pub fn new(store: Store, settings: MailSettings) -> Result<Self, MailError> {
        let from = mailbox(&settings.from)?;
        let smtp = settings
            .smtp
            .as_ref()
            .map(|s| transport(s, settings.timeout))
            .transpose()?;
        Ok(Mailer {
            store,
            settings,
            from,
            smtp,
            wake: Notify::new(),
        })
    }

    /// Queues a message (due now) and wakes `run`.
    pub async fn enqueue(&self, mail: &NewMail) -> Result<OutboxMail, MailError> {
        let queued = self
            .store
            .enqueue_mail(mail, palaver_store::now_ms())
            .await?;
        self.wake.notify_one();
        Ok(queued)
    }

    /// Queues a conference report for its room's address; `None` when the
    /// room has no report address.
    pub async fn send_report(
        &self,
        report: &ConferenceReport,
    ) -> Result<Option<OutboxMail>, MailError> {
        match report.to_mail() {
            Some(mail) => self.enqueue(&mail).await.map(Some),
            None => Ok(None),
        }
    }

    /// Sends every message due at `now_ms` (Unix ms): marks each sent, or
    /// failed with its next try after the backoff.
    pub async fn deliver_due(&self, now_ms: i64) -> Result<Delivery, MailError> {
        let mut done = Delivery::default();
        for mail in self.store.due_mail(now_ms, BATCH).await? {
            match self.send_one(&mail).await {
                Ok(()) => {
                    self.store.mark_mail_sent(mail.id, now_ms).await?;
                    tracing::info!(mail = %mail.id, to = %mail.to, "mail sent");
                    done.sent += 1;
                }
                Err(e) => {
                    let next = self
                        .store
                        .mark_mail_failed(mail.id, &e.to_string(), now_ms, &self.settings.backoff)
                        .await?;
                    tracing::warn!(mail = %mail.id, to = %mail.to, error = %e, retry_at = next, "mail not sent; will retry");
                    done.failed += 1;
                }
            }
        }
        Ok(done)
    }

    fn message(&self, mail: &OutboxMail) -> Result<Message, MailError> {
        Message::builder()
            .from(self.from.clone())
            .to(mailbox(&mail.to)?)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))
    }

    async fn send_one(&self, mail: &OutboxMail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match &self.smtp {
            Some(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Smtp(e.to_string())),
            None => {
                let dir = &self.settings.outbox_dir;
                let path = dir.join(format!("{}.eml", mail.id));
                let io = |source| MailError::Io {
                    path: path.clone(),
                    source,
                };
                tokio::fs::create_dir_all(dir).await.map_err(io)?;
                // Written aside then renamed: a reader never sees half a file,
                // and a retry after a crash overwrites the same name.
                let tmp = path.with_extension("eml.part");
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(io)?;
                tokio::fs::rename(&tmp, &path).await.map_err(io)
            }
        }
    }

    /// Delivers until `shutdown` completes: a pass at start, after every
    /// `enqueue`, and every `poll_interval` (when retries fall due).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.deliver_due(palaver_store::now_ms()).await {
                tracing::warn!(error = %e, "mail delivery pass failed");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }
}
