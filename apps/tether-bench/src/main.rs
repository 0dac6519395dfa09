//! `tether-bench`: benchmarks that start the real components on loopback.
//! The logic lives in `tether_e2e::bench`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tether_e2e::bench::{TunnelBench, run};

#[derive(Parser)]
#[command(version, about = "Tether benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Platform + EMS + RAC on loopback (TLS on both WebSocket legs) against
    /// raw TCP loopback: throughput, round-trip latency, session set-up.
    Tunnel {
        /// MiB of the single bulk stream.
        #[arg(long, default_value_t = 1024)]
        bulk_mib: u64,
        /// Parallel streams.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
        /// MiB per parallel stream.
        #[arg(long, default_value_t = 256)]
        parallel_mib: u64,
        /// Round trips per latency figure.
        #[arg(long, default_value_t = 2000)]
        rtt_samples: usize,
        /// Session set-ups measured.
        #[arg(long, default_value_t = 5)]
        setups: usize,
        /// Write the figures as JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Tunnel {
            bulk_mib,
            parallel,
            parallel_mib,
            rtt_samples,
            setups,
            out,
        } => {
            let cfg = TunnelBench {
                bulk_bytes: bulk_mib << 20,
                parallel_bytes: parallel_mib << 20,
                parallel: parallel.max(1),
                rtt_samples: rtt_samples.max(1),
                setups: setups.max(1),
                ..TunnelBench::default()
            };
            let report = run(&cfg).await?;
            print!("{}", report.table());
            if let Some(path) = out {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
                println!("figures written to {}", path.display());
            }
        }
    }
    Ok(())
}
