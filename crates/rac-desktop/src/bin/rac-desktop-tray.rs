//! `rac-desktop-tray [URL…]`: the tray app on its own (the same as
//! `tether-rac tray`). Exit status 64 on a bad settings file.
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let urls: Vec<String> = std::env::args().skip(1).collect();
    match rac_desktop::run_tray(urls, None) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ rac_desktop::TrayError::Settings(_)) => {
            eprintln!("rac-desktop-tray: {e}");
            ExitCode::from(rac::EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("rac-desktop-tray: {e}");
            ExitCode::from(rac::EXIT_OSERR)
        }
    }
}
