//! `tether-cxserver`: the Tether connection server. Parses the CLI, loads the TOML config
//! (exit 64 naming the key on error), installs tracing and signal handling, binds the
//! listeners and runs [`cxserver::CxServer`] until Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cxserver::{Config, CxServer, Listeners, Tls};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Exit status for a configuration error (EX_CONFIG).
const EXIT_CONFIG: u8 = 64;

/// Terminates AlwaysOn edge websockets and multiplexes them to the Tether platform.
#[derive(Debug, Parser)]
#[command(name = "tether-cxserver", version)]
struct Cli {
    /// Configuration file (TOML, see docs/cxserver.md).
    #[arg(
        short,
        long,
        env = "TETHER_CXSERVER_CONFIG",
        default_value = "/etc/tether/cxserver.toml"
    )]
    config: PathBuf,
    /// Check the configuration (including TLS files) and exit.
    #[arg(long)]
    check: bool,
    /// Log as JSON lines.
    #[arg(long, env = "TETHER_LOG_JSON")]
    log_json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let loaded = Config::from_file(&cli.config).and_then(|config| {
        let tls = Tls {
            edge: config.edge_tls()?,
            upstream: config.upstream_tls()?,
        };
        Ok((config, tls))
    });
    let (config, tls) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("tether-cxserver: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check {
        println!("configuration OK: {}", cli.config.display());
        return ExitCode::SUCCESS;
    }
    match run(config, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-cxserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(config: Config, tls: Tls) -> anyhow::Result<()> {
    let edge = TcpListener::bind(config.edge.listen)
        .await
        .with_context(|| format!("binding edge.listen {}", config.edge.listen))?;
    let health = TcpListener::bind(config.health_listen)
        .await
        .with_context(|| format!("binding health.listen {}", config.health_listen))?;
    tracing::info!(edge = %config.edge.listen, health = %config.health_listen, platform = %config.platform.url, "starting");
    let shutdown = net::CancellationToken::new();
    let _signals = net::shutdown::cancel_on_signal(shutdown.clone());
    CxServer::new(config, tls)
        .run(Listeners { edge, health }, shutdown)
        .await?;
    tracing::info!("stopped");
    Ok(())
}
