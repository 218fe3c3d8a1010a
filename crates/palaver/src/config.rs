//! Settings: defaults, then a TOML file, then environment variables, then
//! command-line flags (each overriding the one before). Clap merges the last
//! two (`PALAVER_*` variables back every flag); this module merges the file.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// `LOW-HIGH`, both even-aligned by the media engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not LOW-HIGH"))?;
        let low: u16 = a
            .trim()
            .parse()
            .map_err(|_| format!("{a:?} is not a port"))?;
        let high: u16 = b
            .trim()
            .parse()
            .map_err(|_| format!("{b:?} is not a port"))?;
        if low < 1024 || high <= low {
            return Err(format!("port range {s:?} must be 1024 ≤ LOW < HIGH"));
        }
        Ok(PortRange { low, high })
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// `palaver serve` flags; every one can also come from `PALAVER_*`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "PALAVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the database, recordings and uploads live.
    #[arg(long, env = "PALAVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "PALAVER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// SIP over UDP and TCP (default 0.0.0.0:5060).
    #[arg(long, env = "PALAVER_SIP_LISTEN")]
    pub sip_listen: Option<SocketAddr>,
    /// SIP over TLS (needs --tls-cert and --tls-key).
    #[arg(long, env = "PALAVER_SIP_TLS_LISTEN")]
    pub sip_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for SIP TLS.
    #[arg(long, env = "PALAVER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for SIP TLS.
    #[arg(long, env = "PALAVER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Web panel, API and /metrics (default 0.0.0.0:8080).
    #[arg(long, env = "PALAVER_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// RTP port range, e.g. 10000-20000.
    #[arg(long, env = "PALAVER_RTP_PORTS")]
    pub rtp_ports: Option<PortRange>,
    /// Where the voice prompts and default music are (default: `./prompts`,
    /// else the source tree's).
    #[arg(long, env = "PALAVER_PROMPTS_DIR")]
    pub prompts_dir: Option<PathBuf>,
    /// The IP written in SIP and SDP when listening on a wildcard address.
    #[arg(long, env = "PALAVER_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,
    /// Digest realm.
    #[arg(long, env = "PALAVER_REALM")]
    pub realm: Option<String>,
    /// Digest algorithms offered, in order, e.g. `SHA-256,MD5` (default `MD5`;
    /// both are always accepted).
    #[arg(long, env = "PALAVER_AUTH_ALGORITHMS", value_delimiter = ',')]
    pub auth_algorithms: Option<Vec<String>>,
    /// Base URL of the web panel as users reach it, for links in e-mails
    /// (default: http://<advertised or HTTP address>).
    #[arg(long, env = "PALAVER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP server for conference reports; without one, mail is written to
    /// `<data-dir>/outbox/` as .eml files.
    #[arg(long, env = "PALAVER_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port (default 587; 465 with --smtp-tls tls; 25 with none).
    #[arg(long, env = "PALAVER_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    #[arg(long, env = "PALAVER_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "PALAVER_SMTP_PASSWORD")]
    pub smtp_password: Option<String>,
    /// `none`, `starttls` (default) or `tls`.
    #[arg(long, env = "PALAVER_SMTP_TLS")]
    pub smtp_tls: Option<String>,
    /// Sender of report e-mails.
    #[arg(long, env = "PALAVER_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Create demo lines, rooms and a local trunk if they are missing.
    #[arg(long, env = "PALAVER_DEMO")]
    pub demo: bool,
    /// Password for the demo lines (random when absent).
    #[arg(long, env = "PALAVER_DEMO_PASSWORD")]
    pub demo_password: Option<String>,
    /// Write the bound addresses here as JSON once the server is ready.
    #[arg(long, env = "PALAVER_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Log filter, e.g. `info` or `palaver_pbx=debug`.
    #[arg(long, env = "PALAVER_LOG")]
    pub log: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "PALAVER_LOG_JSON")]
    pub log_json: bool,
}

/// The same settings as read from the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sip_listen: Option<SocketAddr>,
    pub sip_tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub http_listen: Option<SocketAddr>,
    pub rtp_ports: Option<PortRange>,
    pub prompts_dir: Option<PathBuf>,
    pub advertise_ip: Option<IpAddr>,
    pub realm: Option<String>,
    pub auth_algorithms: Option<Vec<String>>,
    pub public_url: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub smtp_tls: Option<String>,
    pub mail_from: Option<String>,
    pub log: Option<String>,
}

/// The settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub sip_listen: SocketAddr,
    pub tls: Option<(SocketAddr, PathBuf, PathBuf)>,
    pub http_listen: SocketAddr,
    pub rtp_ports: PortRange,
    pub prompts_dir: PathBuf,
    pub advertise_ip: Option<IpAddr>,
    pub realm: String,
    pub auth_algorithms: Vec<palaver_sip::auth::Algorithm>,
    pub public_url: Option<String>,
    pub smtp: Option<palaver_conference::SmtpSettings>,
    pub mail_from: String,
    pub demo: bool,
    pub demo_password: Option<String>,
    pub ready_file: Option<PathBuf>,
    pub log: String,
    pub log_json: bool,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the configuration file {}", path.display())
                })?;
                toml::from_str(&text)
                    .with_context(|| format!("in the configuration file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let tls_listen = args.sip_tls_listen.or(file.sip_tls_listen);
        let tls = match tls_listen {
            None => None,
            Some(addr) => {
                let cert = args.tls_cert.or(file.tls_cert);
                let key = args.tls_key.or(file.tls_key);
                match (cert, key) {
                    (Some(c), Some(k)) => Some((addr, c, k)),
                    _ => {
                        bail!("SIP TLS needs both a certificate (--tls-cert) and a key (--tls-key)")
                    }
                }
            }
        };
        let algorithm_names = args
            .auth_algorithms
            .or(file.auth_algorithms)
            .unwrap_or_else(|| vec!["MD5".into()]);
        let mut auth_algorithms = Vec::new();
        for name in &algorithm_names {
            match palaver_sip::auth::Algorithm::parse(name.trim()) {
                Some(a) => auth_algorithms.push(a),
                None => bail!("unknown digest algorithm {name:?} (use MD5 or SHA-256)"),
            }
        }
        if auth_algorithms.is_empty() {
            bail!("at least one digest algorithm is needed (MD5 or SHA-256)");
        }
        let smtp = match args.smtp_host.or(file.smtp_host) {
            None => None,
            Some(host) => {
                let tls = match args
                    .smtp_tls
                    .or(file.smtp_tls)
                    .as_deref()
                    .unwrap_or("starttls")
                {
                    "none" => palaver_conference::TlsMode::None,
                    "starttls" => palaver_conference::TlsMode::Starttls,
                    "tls" => palaver_conference::TlsMode::Tls,
                    other => bail!("unknown SMTP TLS mode {other:?} (use none, starttls or tls)"),
                };
                let default_port = match tls {
                    palaver_conference::TlsMode::None => 25,
                    palaver_conference::TlsMode::Starttls => 587,
                    palaver_conference::TlsMode::Tls => 465,
                };
                Some(palaver_conference::SmtpSettings {
                    host,
                    port: args.smtp_port.or(file.smtp_port).unwrap_or(default_port),
                    username: args.smtp_username.or(file.smtp_username),
                    password: args.smtp_password.or(file.smtp_password),
                    tls,
                })
            }
        };
        Ok(Settings {
            public_url: args.public_url.or(file.public_url),
            smtp,
            mail_from: args
                .mail_from
                .or(file.mail_from)
                .unwrap_or_else(|| "Palaver <palaver@localhost>".into()),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            database_url: args
                .database_url
                .or(file.database_url)
                .filter(|s| !s.is_empty()),
            sip_listen: args
                .sip_listen
                .or(file.sip_listen)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 5060))),
            tls,
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
            rtp_ports: args.rtp_ports.or(file.rtp_ports).unwrap_or(PortRange {
                low: 10000,
                high: 20000,
            }),
            prompts_dir: args
                .prompts_dir
                .or(file.prompts_dir)
                .unwrap_or_else(default_prompts_dir),
            advertise_ip: args.advertise_ip.or(file.advertise_ip),
            auth_algorithms,
            realm: args
                .realm
                .or(file.realm)
                .unwrap_or_else(|| "palaver".into()),
            demo: args.demo,
            demo_password: args.demo_password,
            ready_file: args.ready_file,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_json: args.log_json,
        })
    }
}

/// `./prompts` when run from a checkout or an unpacked release, else the
/// source tree the binary was built from.
fn default_prompts_dir() -> PathBuf {
    let here = PathBuf::from("prompts");
    if here.join("moh").is_dir() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../prompts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_and_rejects() {
        assert_eq!(
            "10000-20000".parse::<PortRange>(),
            Ok(PortRange {
                low: 10000,
                high: 20000
            })
        );
        assert!("20000-10000".parse::<PortRange>().is_err());
        assert!("80-90".parse::<PortRange>().is_err());
        assert!("abc".parse::<PortRange>().is_err());
    }

    #[test]
    fn flags_override_file() {
        let dir = std::env::temp_dir().join(format!("palaver-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.toml");
        std::fs::write(&path, "sip_listen = \"127.0.0.1:5070\"\nhttp_listen = \"127.0.0.1:8081\"\nrtp_ports = \"30000-30100\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            http_listen: Some("127.0.0.1:9999".parse().unwrap()),
            ..Default::default()
        };
        let s = Settings::resolve(args).unwrap();
        assert_eq!(s.sip_listen, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(s.http_listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(
            s.rtp_ports,
            PortRange {
                low: 30000,
                high: 30100
            }
        );
        std::fs::write(&path, "sip_lisen = \"x\"\n").unwrap();
        let err = Settings::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("sip_lisen"), "{err:#}");
    }
}
