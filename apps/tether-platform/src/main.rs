//! `tether-platform`: the Tether platform server.
//!
//! `serve --config platform.toml` for real use, `quickstart` for a first look,
//! `admin …` to manage users, app keys, things and interfaces in a data directory.

use clap::{Parser, Subcommand};

/// Exit status for configuration and usage errors (EX_USAGE / EX_CONFIG family).
const EXIT_CONFIG: i32 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "tether-platform",
    version,
    about = "The Tether platform server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage users, app keys, things and interfaces in a data directory.
    Admin(platform::admin::AdminArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Admin(args) => match platform::admin::run(args).await {
                Ok(out) => {
                    if !out.is_empty() {
                        println!("{out}");
                    }
                    0
                }
                Err(platform::admin::AdminError::Invalid(msg)) => {
                    eprintln!("error: {msg}");
                    EXIT_CONFIG
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            },
        }
    });
    std::process::exit(code);
}
