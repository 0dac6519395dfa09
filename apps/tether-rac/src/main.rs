//! `tether-rac`: the Tether Remote Access Client (CLI over `crates/rac`).
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rac::{Credentials, Join, LaunchUrl, Notice, RunOptions, Trust};

#[derive(Parser)]
#[command(
    version,
    about = "Join a Tether remote-access session and expose it on a local port"
)]
struct Cli {
    /// Accept the platform's certificate only if its SHA-256 fingerprint matches (repeatable).
    #[arg(long = "pin-sha256", value_name = "FP", global = true)]
    pin_sha256: Vec<String>,
    /// Do not validate the platform's certificate (labs and tests only).
    #[arg(long, global = true, conflicts_with = "pin_sha256")]
    insecure: bool,
    /// Seconds between pings; the session is dropped after two silent intervals.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 15,
        global = true,
        hide = true
    )]
    ping_interval: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join the session of a launch URL from the web page: tether-rac open 'tether://open?...'
    Open {
        /// The tether://open?... URL.
        url: String,
        /// Local port (0 = any free port).
        #[arg(long, default_value_t = 0)]
        local_port: u16,
    },
    /// Create a session with an app key or a password and join it.
    Connect {
        #[command(flatten)]
        create: Create,
        /// Local port (0 = any free port).
        #[arg(long, default_value_t = 0)]
        local_port: u16,
    },
    /// Run as a tray app; URLs are handed to a running one (the tether: URL handler).
    Tray {
        /// tether://open?... URLs to open.
        urls: Vec<String>,
    },
    /// Pipe one connection over stdin/stdout, for ssh -o ProxyCommand.
    Stdio {
        /// A tether://open?... URL instead of creating the session.
        #[arg(long, conflicts_with_all = ["platform", "thing"])]
        launch: Option<String>,
        #[command(flatten)]
        create: Create,
    },
}

#[derive(Args)]
struct Create {
    /// Platform base URL, e.g. https://platform.example:8443 (required without --launch)
    #[arg(long)]
    platform: Option<String>,
    /// Thing name (required without --launch).
    #[arg(long)]
    thing: Option<String>,
    /// Interface name.
    #[arg(long, default_value = "ssh")]
    interface: String,
    /// App key (or env TETHER_APP_KEY).
    #[arg(
        long,
        env = "TETHER_APP_KEY",
        hide_env_values = true,
        conflicts_with = "user"
    )]
    app_key: Option<String>,
    /// User name; the password comes from TETHER_PASSWORD or a prompt.
    #[arg(long)]
    user: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; bad usage is EX_USAGE.
            return if e.use_stderr() {
                ExitCode::from(rac::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if let Command::Tray { urls } = cli.command {
        return match rac_desktop::run_tray(urls, None) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tether-rac: {e}");
                let usage = matches!(e, rac_desktop::TrayError::Settings(_));
                ExitCode::from(if usage {
                    rac::EXIT_USAGE
                } else {
                    rac::EXIT_OSERR
                })
            }
        };
    }
    // A running tray app takes `open` links (unless this run has its own options).
    if let Command::Open { url, local_port: 0 } = &cli.command
        && cli.pin_sha256.is_empty()
        && !cli.insecure
    {
        match rac_desktop::try_hand_over(url) {
            Ok(true) => {
                eprintln!("tether-rac: handed over to the running tether-rac tray");
                return ExitCode::SUCCESS;
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!("tether-rac: {e}");
                return ExitCode::from(rac::EXIT_USAGE);
            }
        }
    }
    match prepare(&cli) {
        Ok((how, opts)) => {
            let from_settings = cli.pin_sha256.is_empty() && !cli.insecure;
            run(cli.command, how, opts, from_settings)
        }
        Err(err) => fail(&err),
    }
}

fn fail(err: &rac::RacError) -> ExitCode {
    eprintln!("tether-rac: {err}");
    ExitCode::from(err.exit_code())
}

fn prepare(cli: &Cli) -> Result<(Join, RunOptions), rac::RacError> {
    let trust = if cli.insecure {
        Trust::InsecureAllowSelfSigned
    } else if !cli.pin_sha256.is_empty() {
        Trust::pinned_from_strs(&cli.pin_sha256)?
    } else {
        Trust::default()
    };
    let mut opts = RunOptions {
        trust,
        ..RunOptions::default()
    };
    opts.client.ping_interval = Duration::from_secs(cli.ping_interval.max(1));
    let how = match &cli.command {
        Command::Open { url, .. }
        | Command::Stdio {
            launch: Some(url), ..
        } => Join::Launch(LaunchUrl::parse(url)?),
        Command::Tray { .. } => return Err(rac::RacError::Usage("tray takes no session".into())),
        Command::Connect { create, .. } | Command::Stdio { create, .. } => {
            let need = |v: &Option<String>, flag: &str| {
                v.clone()
                    .ok_or_else(|| rac::RacError::Usage(format!("{flag} is required")))
            };
            let platform = rac::parse_platform(&need(&create.platform, "--platform")?)?;
            let thing = need(&create.thing, "--thing")?;
            let credentials = match (&create.app_key, &create.user) {
                (Some(k), _) => Credentials::AppKey(k.clone()),
                (None, Some(u)) => Credentials::Password {
                    user: u.clone(),
                    password: password(u)?,
                },
                (None, None) => {
                    return Err(rac::RacError::Usage(
                        "give --app-key (or TETHER_APP_KEY) or --user".into(),
                    ));
                }
            };
            opts.client.label = create.interface.clone();
            Join::Create {
                platform,
                thing,
                interface: create.interface.clone(),
                credentials,
            }
        }
    };
    Ok((how, opts))
}

/// TETHER_PASSWORD, or a prompt on the terminal with echo off.
fn password(user: &str) -> Result<String, rac::RacError> {
    use std::io::{BufRead, BufReader, Write};
    if let Ok(p) = std::env::var("TETHER_PASSWORD") {
        return Ok(p);
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(tty.try_clone()?)
            .status()
    };
    let _ = stty("-echo");
    write!(&tty, "password for {user}: ")?;
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    let _ = stty("echo");
    writeln!(&tty)?;
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn run(cmd: Command, how: Join, mut opts: RunOptions, from_settings: bool) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&rac::RacError::Io(e)),
    };
    rt.block_on(async move {
        if from_settings {
            // rac.toml pins; an unknown self-signed platform is refused with
            // its fingerprint and how to pin it (docs/rac-desktop.md).
            let settings = match rac_desktop::default_path() {
                Some(p) => match rac_desktop::Settings::load(&p) {
                    Ok(s) => s,
                    Err(e) => return fail(&rac::RacError::Usage(e.to_string())),
                },
                None => rac_desktop::Settings::default(),
            };
            let platform = match &how {
                Join::Launch(l) => &l.platform,
                Join::Create { platform, .. } => platform,
            };
            match rac_desktop::cli_trust(&settings, platform, opts.http_timeout).await {
                Ok(t) => opts.trust = t,
                Err(why) => return fail(&rac::RacError::Usage(why)),
            }
        }
        let shutdown = net::CancellationToken::new();
        net::shutdown::cancel_on_signal(shutdown.clone());
        let stdio = matches!(cmd, Command::Stdio { .. });
        let notify: rac::Notify = Arc::new(move |n| match n {
            Notice::Joined {
                session,
                thing,
                interface,
            } => match (thing, interface) {
                (Some(t), Some(i)) => {
                    eprintln!("tether-rac: joined session {session} ({t} / {i})")
                }
                _ => eprintln!("tether-rac: joined session {session}"),
            },
            Notice::Listening(addr) => {
                println!(
                    "listening on {addr}: connect with e.g. `ssh -p {} user@localhost`",
                    addr.port()
                );
                eprintln!("tether-rac: waiting for the device; Ctrl-C ends the session");
            }
            Notice::PeerAttached if !stdio => eprintln!("tether-rac: device attached"),
            Notice::PeerLeft => eprintln!("tether-rac: device left"),
            Notice::AddressNotReported(why) => {
                eprintln!("tether-rac: note: the web page will not show the local address ({why})")
            }
            _ => {}
        });
        let result = match cmd {
            Command::Open { local_port, .. } | Command::Connect { local_port, .. } => {
                rac::listen(how, local_port, opts, shutdown, notify).await
            }
            Command::Tray { .. } => return fail(&rac::RacError::Usage("tray".into())),
            Command::Stdio { .. } => {
                rac::stdio(
                    how,
                    tokio::io::join(tokio::io::stdin(), tokio::io::stdout()),
                    opts,
                    shutdown,
                    notify,
                )
                .await
            }
        };
        match result {
            Ok(ended) => {
                eprintln!("tether-rac: {}", ended.message());
                ExitCode::from(ended.exit_code())
            }
            Err(err) => fail(&err),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
