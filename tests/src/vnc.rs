//! A throwaway TigerVNC server (`Xvnc`) on a free display and a loopback
//! port, and `vncsnapshot` as the VNC client.
//!
//! - [`vnc_tools`]: whether Xvnc and vncsnapshot exist; a missing tool
//!   skips the test with a message, or fails it when `TETHER_REQUIRE_E2E`
//!   is set (CI sets it).
//! - [`Xvnc`]: the server, killed (and its display lock removed) on drop.
//! - [`snapshot`], [`jpeg_size`]: a screenshot through a port, its size.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::free_port;

/// What to tell a developer whose machine lacks the VNC tools.
pub const VNC_HINT: &str =
    "install tigervnc-standalone-server vncsnapshot (scripts/install-deps.sh does)";

/// Set to make a missing tool fail the end-to-end tests instead of skipping them.
pub const REQUIRE_ENV: &str = "TETHER_REQUIRE_E2E";

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// `Ok(true)` when Xvnc and vncsnapshot exist. When one is missing: an
/// error if `TETHER_REQUIRE_E2E` is set, otherwise `Ok(false)` after
/// printing why the test is skipped.
pub fn vnc_tools() -> anyhow::Result<bool> {
    let missing: Vec<&str> = ["Xvnc", "vncsnapshot"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if missing.is_empty() {
        return Ok(true);
    }
    if std::env::var_os(REQUIRE_ENV).is_some() {
        bail!("missing {}: {VNC_HINT}", missing.join(", "));
    }
    eprintln!(
        "SKIPPED: missing {} ({VNC_HINT}; set {REQUIRE_ENV}=1 to fail instead)",
        missing.join(", ")
    );
    Ok(false)
}

/// A running Xvnc without authentication on a loopback port.
pub struct Xvnc {
    pub port: u16,
    pub display: u32,
    /// Scratch directory for screenshots.
    pub dir: tempfile::TempDir,
    child: Child,
}

fn display_free(n: u32) -> bool {
    !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
}

fn display_files(n: u32) -> [PathBuf; 2] {
    [
        PathBuf::from(format!("/tmp/.X{n}-lock")),
        PathBuf::from(format!("/tmp/.X11-unix/X{n}")),
    ]
}

impl Xvnc {
    /// Start `Xvnc :N -rfbport P -SecurityTypes None` on the first free
    /// display from a per-process starting point, `width`×`height`, and wait
    /// for its RFB banner.
    pub async fn start(width: u16, height: u16) -> anyhow::Result<Xvnc> {
        let dir = tempfile::tempdir()?;
        let first = 30 + std::process::id() % 50;
        let mut last = String::from("no free display");
        for n in (first..first + 40).filter(|n| display_free(*n)) {
            let port = free_port()?;
            let log = std::fs::File::create(dir.path().join(format!("xvnc{n}.log")))?;
            let child = Command::new("Xvnc")
                .arg(format!(":{n}"))
                .args(["-rfbport", &port.to_string()])
                .args(["-SecurityTypes", "None"])
                .args(["-geometry", &format!("{width}x{height}")])
                .args(["-depth", "24"])
                .arg("-localhost")
                .args(["-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .context("start Xvnc")?;
            let mut child = child;
            match wait_banner(&mut child, port).await {
                Ok(()) => {
                    return Ok(Xvnc {
                        port,
                        display: n,
                        dir,
                        child,
                    });
                }
                Err(e) => {
                    last = format!(":{n}: {e}");
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
        }
        bail!("cannot start Xvnc: {last}")
    }
}

async fn wait_banner(child: &mut Child, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
            let mut b = [0u8; 4];
            if tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut b))
                .await
                .is_ok_and(|r| r.is_ok())
                && &b == b"RFB "
            {
                return Ok(());
            }
        }
        if let Some(st) = child.try_wait()? {
            bail!("Xvnc exited at start-up: {st}");
        }
        if Instant::now() > deadline {
            bail!("Xvnc did not answer on port {port} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for Xvnc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // Killed, it cannot remove its display lock: do it for it.
        for f in display_files(self.display) {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// `vncsnapshot` of the VNC server at 127.0.0.1:`port` into `out` (JPEG).
/// Raw encoding and blank screens allowed: an empty Xvnc desktop is black.
pub async fn snapshot(port: u16, out: &Path, within: Duration) -> anyhow::Result<()> {
    let child = Command::new("vncsnapshot")
        .args(["-quiet", "-allowblank", "-encodings", "raw"])
        .arg(format!("127.0.0.1::{port}"))
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start vncsnapshot")?;
    let done = tokio::time::timeout(within, child.wait_with_output())
        .await
        .with_context(|| format!("vncsnapshot did not finish within {within:?}"))??;
    if !done.status.success() {
        bail!(
            "vncsnapshot failed ({}): {}{}",
            done.status,
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
    }
    Ok(())
}

/// Width and height of a JPEG file, from its start-of-frame marker.
pub fn jpeg_size(path: &Path) -> anyhow::Result<(u16, u16)> {
    let b = std::fs::read(path)?;
    if b.get(..2) != Some(&[0xFF, 0xD8]) {
        bail!("{} is not a JPEG file", path.display());
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            bail!("bad JPEG marker at {i}");
        }
        let marker = b[i + 1];
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let f = b.get(i + 5..i + 9).context("short SOF segment")?;
            let height = u16::from_be_bytes([f[0], f[1]]);
            let width = u16::from_be_bytes([f[2], f[3]]);
            return Ok((width, height));
        }
        i += 2 + len;
    }
    bail!("no start-of-frame marker in {}", path.display())
}
