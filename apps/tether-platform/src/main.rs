//! `tether-platform`: the Tether platform server.
//!
//! `serve --config platform.toml` for real use, `quickstart` for a first look,
//! `admin …` to manage users, app keys, things and interfaces in a data directory.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use platform::{Config, RawConfig};

mod demo;

/// Exit status for configuration and usage errors.
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
    /// Run the platform from a TOML configuration file.
    Serve {
        #[arg(long, env = "TETHER_PLATFORM_CONFIG")]
        config: PathBuf,
        /// Override `listen` (host:port).
        #[arg(long, env = "TETHER_PLATFORM_LISTEN")]
        listen: Option<String>,
        /// Override `data_dir`.
        #[arg(long, env = "TETHER_PLATFORM_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Override `[database] url` (`sqlite:PATH` or `postgres://…`).
        #[arg(long, env = "TETHER_PLATFORM_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Start a local platform with a generated certificate, administrator and demo app key,
    /// plus a demo edge (EMS and Lua Script Resource) in the same process.
    Quickstart {
        /// Data directory (default: <user data dir>/tether-platform).
        #[arg(long, env = "TETHER_PLATFORM_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Port on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 8443)]
        port: u16,
    },
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

fn config_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("configuration error: {msg}");
    EXIT_CONFIG
}

async fn serve(
    config: PathBuf,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
) -> i32 {
    let mut raw = match RawConfig::load(&config) {
        Ok(raw) => raw,
        Err(e) => return config_error(e),
    };
    if listen.is_some() {
        raw.listen = listen;
    }
    if data_dir.is_some() {
        raw.data_dir = data_dir;
    }
    if database_url.is_some() {
        raw.database.url = database_url;
    }
    let config = match raw.validate() {
        Ok(c) => c,
        Err(e) => return config_error(e),
    };
    run(config, None).await
}

async fn quickstart(data_dir: Option<PathBuf>, port: u16) -> i32 {
    let data_dir = data_dir.unwrap_or_else(platform::quickstart::default_data_dir);
    let mut config = Config::with_data_dir(&data_dir);
    config.listen = SocketAddr::from(([127, 0, 0, 1], port));
    run(config, Some(data_dir)).await
}

async fn run(config: Config, quickstart_dir: Option<PathBuf>) -> i32 {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.listen);
            return 1;
        }
    };
    let shutdown = platform_shutdown_token();
    let grace = config.shutdown_grace;
    let prepared = match platform::prepare(config, shutdown.clone()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut demo_edge = None;
    if let Some(dir) = quickstart_dir {
        let b = match platform::quickstart::bootstrap(prepared.platform.store()).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: quickstart bootstrap failed: {e}");
                return 1;
            }
        };
        demo_edge = match listener.local_addr() {
            Ok(addr) => match demo::start(
                prepared.platform.store(),
                &dir,
                addr,
                &prepared.identity.fingerprint,
                b.app_key.as_ref().map(|k| k.expose()),
                shutdown.clone(),
            )
            .await
            {
                Ok(d) => Some(d),
                Err(e) => {
                    eprintln!("warning: the demo edge did not start: {e:#}");
                    None
                }
            },
            Err(e) => {
                eprintln!("warning: the demo edge did not start: {e}");
                None
            }
        };
        print_quickstart(&dir, &listener, &prepared, &b, demo_edge.as_ref());
    }
    tracing::debug!(?grace, "serving");
    let code = match prepared.serve(listener).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    shutdown.cancel();
    if let Some(d) = demo_edge {
        d.wait().await;
    }
    code
}

fn platform_shutdown_token() -> net::CancellationToken {
    let token = net::CancellationToken::new();
    let _signals = net::shutdown::cancel_on_signal(token.clone());
    token
}

fn print_quickstart(
    dir: &std::path::Path,
    listener: &tokio::net::TcpListener,
    prepared: &platform::Prepared,
    b: &platform::quickstart::Bootstrap,
    demo_edge: Option<&demo::DemoEdge>,
) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    println!("Tether platform quickstart");
    println!("  URL:                 https://{addr}/");
    println!("  AlwaysOn endpoint:   wss://{addr}/Thingworx/WS");
    println!("  data directory:      {}", dir.display());
    println!("  certificate SHA-256: {}", prepared.identity.fingerprint);
    println!("  administrator:       {}", b.admin_user);
    match (&b.admin_password, &b.app_key) {
        (Some(password), Some(key)) => {
            println!("  password:            {}", password.expose());
            println!("  demo edge app key:   {}   (may bind Demo*)", key.expose());
            println!(
                "  demo thing:          {}",
                platform::quickstart::DEMO_THING
            );
            println!("These secrets are shown once; only their hashes are stored.");
        }
        _ => {
            println!("  password and demo app key: printed at first run (not stored in clear).");
            println!(
                "  Create new ones with `tether-platform admin --data-dir {} …`.",
                dir.display()
            );
        }
    }
    if let Some(d) = demo_edge {
        println!(
            "  demo edge:           EMS {} (REST http://{}), LSR thing {} (http://{}, docs/examples/lsr)",
            platform::quickstart::DEMO_EMS,
            d.ems_rest,
            platform::quickstart::DEMO_LSR_THING,
            d.lsr
        );
        println!("Read the demo Lua property through the platform:");
        println!(
            "  curl --cacert '{}' -H \"appKey: $(cat '{}')\" https://{addr}/Thingworx/Things/{}/Properties/Temperature",
            dir.join(platform::certs::TLS_DIR)
                .join(platform::certs::CERT_FILE)
                .display(),
            d.app_key_file.display(),
            platform::quickstart::DEMO_LSR_THING
        );
        println!(
            "Open an SSH session to this machine through the demo EMS (needs sshd on 127.0.0.1:22):"
        );
        println!(
            "  tether-rac connect --platform https://{addr} --pin-sha256 {} --thing {} --interface ssh --user {}",
            prepared.identity.fingerprint,
            platform::quickstart::DEMO_EMS,
            b.admin_user
        );
        println!("  then, as it says: ssh -p <port> <user>@127.0.0.1");
    }
    println!("Press Ctrl-C to stop.");
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
            Command::Serve {
                config,
                listen,
                data_dir,
                database_url,
            } => serve(config, listen, data_dir, database_url).await,
            Command::Quickstart { data_dir, port } => quickstart(data_dir, port).await,
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
