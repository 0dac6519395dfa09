//! `tether-lsr`: the Tether Lua Script Resource.
//!
//! `tether-lsr -cfg ./etc/config.lua` (ThingWorx spelling) or `tether-lsr --config FILE`.
//! `tether-lsr --version` prints the version. Exit status 64 on a bad
//! configuration or template, 1 on other errors.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: tether-lsr -cfg <config.lua>   (or --config <config.lua>)";
/// Exit status for configuration errors (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

/// What the command line asks for.
enum Args {
    /// Run with this configuration.
    Run(PathBuf),
    /// Print the version and exit.
    Version,
    /// Print the usage and exit.
    Help,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-cfg" | "--cfg" | "-config" | "--config" | "-c" => {
                path = Some(args.next().ok_or_else(|| format!("{a} needs a file"))?);
            }
            "-V" | "--version" | "-version" => return Ok(Args::Version),
            "-h" | "--help" => return Ok(Args::Help),
            other => {
                if let Some(v) = other.strip_prefix("--config=") {
                    path = Some(v.to_string());
                } else {
                    return Err(format!("unknown argument {other:?}\n{USAGE}"));
                }
            }
        }
    }
    path.map(|p| Args::Run(PathBuf::from(p)))
        .ok_or_else(|| format!("no configuration given\n{USAGE}"))
}

fn main() -> ExitCode {
    let path = match parse_args() {
        Ok(Args::Run(p)) => p,
        Ok(Args::Version) => {
            println!("tether-lsr {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Args::Help) => {
            println!("{USAGE}\n       tether-lsr --version");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("tether-lsr: {msg}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match lsr::Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tether-lsr: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let default_level = match config.log_level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FORCE" | "AUDIT" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether-lsr: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-lsr: {e:#}");
            match e.downcast_ref::<lsr::Error>() {
                Some(lsr::Error::Config(_)) => ExitCode::from(EXIT_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn serve(config: lsr::Config) -> anyhow::Result<()> {
    let addr = format!("{}:{}", config.resource.host, config.resource.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let shutdown = CancellationToken::new();
    let signal_token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal_token.cancel();
    });
    lsr::run(config, listener, shutdown).await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
