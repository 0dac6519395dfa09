//! `tether-ems`: the Tether Edge MicroServer, run as a service on each device.
//!
//! `tether-ems --config config.json` runs it; `--check` only validates the file;
//! `tether-ems encrypt --key-file KEY` encrypts a secret read from stdin for the
//! config (`enc:v1:…`, with `"secrets_key_file": "KEY"` in the config).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use net::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "tether-ems",
    version,
    about = "Tether Edge MicroServer (ThingWorx EMS config.json compatible)"
)]
struct Cli {
    /// ThingWorx EMS style config.json.
    #[arg(short, long, default_value = "config.json", env = "TETHER_EMS_CONFIG")]
    config: PathBuf,
    /// Validate the configuration, print warnings, and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt a secret (read from stdin, first line) for config.json.
    Encrypt {
        /// Key file (64 hex characters); created with --generate-key.
        #[arg(long)]
        key_file: PathBuf,
        /// Create a new random key file (refuses to overwrite one).
        #[arg(long)]
        generate_key: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Encrypt {
        key_file,
        generate_key,
    }) = cli.command
    {
        return match encrypt(&key_file, generate_key) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tether-ems encrypt: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let loaded = match ems::load(&cli.config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tether-ems: {}: {e}", cli.config.display());
            return ExitCode::from(ems::EXIT_CONFIG as u8);
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(loaded.config.logger.tracing_directive()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    if cli.check {
        println!(
            "{}: ok ({} warning(s))",
            cli.config.display(),
            loaded.warnings.len()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether-ems: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(serve(loaded.config))
}

async fn serve(config: ems::Config) -> ExitCode {
    let listener = match ems::bind_http(&config.http_server).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(ems::EXIT_CONFIG as u8);
        }
    };
    let shutdown = CancellationToken::new();
    net::shutdown::cancel_on_signal(shutdown.clone());
    let result = ems::run(config, listener, shutdown).await;
    // Let the last log lines out.
    tokio::time::sleep(Duration::from_millis(10)).await;
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(ems::RunError::Config(e)) => {
            tracing::error!("{e}");
            ExitCode::from(ems::EXIT_CONFIG as u8)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn encrypt(key_file: &std::path::Path, generate: bool) -> anyhow::Result<()> {
    let key = if generate {
        anyhow::ensure!(
            !key_file.exists(),
            "{} exists; not overwriting it",
            key_file.display()
        );
        let key = ems::SecretKey::generate();
        write_private(key_file, &key.to_file_text())?;
        eprintln!("new key written to {}", key_file.display());
        key
    } else {
        ems::SecretKey::load(key_file)?
    };
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!secret.is_empty(), "nothing to encrypt on stdin");
    println!("{}", key.encrypt(secret)?);
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    Ok(())
}
