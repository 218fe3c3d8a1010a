//! The `palaver` binary: command line, configuration, wiring of the layers,
//! and graceful shutdown. It holds no telephony logic: that lives in the
//! library crates it starts.

mod config;
mod demo;
mod live;
mod recover;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use palaver_pbx::runtime::{RuntimeConfig, start};
use palaver_pbx::{GuardConfig, PbxConfig};
use palaver_sip::Transport;
use palaver_sip_rt::{TlsConfig, TransportConfig};
use tracing::info;

use crate::config::{ServeArgs, Settings};

#[derive(Parser)]
#[command(
    name = "palaver",
    version,
    about = "Palaver: a self-hosted PBX with a conference bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => Settings::resolve(args).and_then(serve),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palaver: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(s: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if s.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    init_logging(&settings);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("palaver")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(settings))
}

async fn run(s: Settings) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;

    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("creating the data directory {}", s.data_dir.display()))?;
    let store = palaver_store::Store::open(s.database_url.as_deref(), &s.data_dir)
        .await
        .context("opening the database")?;

    let recovered = recover::recover_recordings(&store).await?;
    if recovered > 0 {
        info!(recovered, "recordings left by a crash were repaired");
    }

    let demo = if s.demo {
        Some(
            demo::seed(&store, s.demo_password.as_deref())
                .await
                .context("creating the demo data")?,
        )
    } else {
        None
    };

    let transports = TransportConfig {
        udp: vec![s.sip_listen],
        tcp: vec![s.sip_listen],
        tls: s.tls.as_ref().map(|(listen, cert, key)| TlsConfig {
            listen: *listen,
            cert: cert.clone(),
            key: key.clone(),
        }),
        udp_recv_buffer: 8 << 20,
    };
    let media_ip = s.advertise_ip.unwrap_or_else(|| {
        let ip = s.sip_listen.ip();
        if ip.is_unspecified() {
            [127, 0, 0, 1].into()
        } else {
            ip
        }
    });
    let engine = palaver_media_rt::MediaEngine::start(palaver_media_rt::EngineConfig::new(
        s.sip_listen.ip(),
        s.rtp_ports.low,
        s.rtp_ports.high,
    ))
    .context("starting the media engine")?;
    let moh = s.prompts_dir.join("moh/8000/default.wav");
    let pbx_config = PbxConfig {
        media_ip,
        tone_test_number: s.demo.then(|| "900".to_owned()),
        music_on_hold: moh.is_file().then_some(moh),
        guard: GuardConfig {
            realm: s.realm.clone(),
            algorithms: s.auth_algorithms.clone(),
            ..GuardConfig::default()
        },
        ..PbxConfig::default()
    };
    // HTTP is bound first: its address makes the links in report e-mails.
    let http = tokio::net::TcpListener::bind(s.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", s.http_listen))?;
    let http_addr = http.local_addr()?;
    let public_url = s.public_url.clone().unwrap_or_else(|| {
        let ip = if http_addr.ip().is_unspecified() {
            media_ip
        } else {
            http_addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, http_addr.port()))
    });
    let pbx = start(
        RuntimeConfig {
            pbx: pbx_config,
            transports,
            advertise_ip: s.advertise_ip,
            conference: palaver_conference::ConferenceConfig::new(&s.prompts_dir, &s.data_dir),
            public_url,
        },
        store.clone(),
        engine.handle(),
    )
    .await
    .context("starting SIP")?;

    let mut mail_settings = palaver_conference::MailSettings::new(s.mail_from.clone(), &s.data_dir);
    mail_settings.smtp = s.smtp.clone();
    mail_settings.poll_interval = Duration::from_secs(2);
    let mailer = std::sync::Arc::new(
        palaver_conference::Mailer::new(store.clone(), mail_settings).context("setting up mail")?,
    );
    let (mail_stop_tx, mail_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mail_task = tokio::spawn(mailer.run(async {
        let _ = mail_stop_rx.await;
    }));

    let admin_env = std::env::var("PALAVER_ADMIN_PASSWORD").ok();
    if let Some(pw) = palaver_web::ensure_admin(&store, admin_env.as_deref())
        .await
        .context("creating the admin user")?
    {
        println!("\n  Web panel login (shown once): user admin, password {pw}");
    }
    let web_config = palaver_web::WebConfig::new(&s.data_dir);
    let reload = pbx.clone();
    let web = palaver_web::WebState::new(store.clone(), metrics, web_config)
        .with_live_rooms(std::sync::Arc::new(live::PbxLiveRooms {
            pbx: pbx.clone(),
            runtime: tokio::runtime::Handle::current(),
        }))
        .with_directory_hook(std::sync::Arc::new(move || reload.request_reload()));
    let app = palaver_web::router(web).into_make_service_with_connect_info::<SocketAddr>();
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(http, app)
            .with_graceful_shutdown(async {
                let _ = http_stop_rx.await;
            })
            .await;
    });

    let sip_udp = pbx.local_addr(Transport::Udp);
    let sip_tcp = pbx.local_addr(Transport::Tcp);
    let sip_tls = pbx.local_addr(Transport::Tls);
    if let Some(path) = &s.ready_file {
        let ready = serde_json::json!({
            "sip_udp": sip_udp, "sip_tcp": sip_tcp, "sip_tls": sip_tls, "http": http_addr,
            "pid": std::process::id(),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, ready.to_string()).context("writing the ready file")?;
        std::fs::rename(&tmp, path).context("writing the ready file")?;
    }
    print_welcome(&s, sip_udp, http_addr, demo.as_ref());
    info!(?sip_udp, ?sip_tcp, ?sip_tls, %http_addr, rtp_low = s.rtp_ports.low, rtp_high = s.rtp_ports.high, "Palaver is ready");

    wait_for_signal().await;
    info!("stopping: no new calls; hanging up calls in progress");
    if tokio::time::timeout(Duration::from_secs(10), pbx.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("calls did not finish hanging up in time");
    }
    let _ = http_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), http_task).await;
    let _ = mail_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), mail_task).await;
    store.close().await;
    engine.shutdown();
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_welcome(
    s: &Settings,
    sip: Option<SocketAddr>,
    http: SocketAddr,
    demo: Option<&demo::Demo>,
) {
    let host = |a: SocketAddr| {
        if a.ip().is_unspecified() {
            SocketAddr::new(
                s.advertise_ip.unwrap_or_else(|| [127, 0, 0, 1].into()),
                a.port(),
            )
        } else {
            a
        }
    };
    println!();
    println!("  Palaver is running.");
    if let Some(sip) = sip {
        println!("  SIP:  {} (UDP and TCP)", host(sip));
    }
    println!("  Web:  http://{}/", host(http));
    if let Some(d) = demo {
        println!();
        println!("  Demo lines (register a softphone with these):");
        for (ext, name, pw) in &d.lines {
            println!("    {ext}  {name:<6}  password: {pw}");
        }
        println!();
        println!(
            "  Dial 800 for the open demo room, 801 for the room with PIN 1234 (host PIN 4321)."
        );
        println!("  Lines call each other by extension (1001, 1002, 1003).");
    }
    println!();
}
