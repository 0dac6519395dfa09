//! End-to-end remote-access harness: a real platform (TLS, SQLite), a real
//! EMS (AlwaysOn uplink, tunnel module) and the RAC engine in one process,
//! plus a throwaway OpenSSH server (`sshd -D -e`) on a loopback port.
//!
//! - [`require_openssh`]: fails (never skips) when sshd/ssh/scp are missing.
//! - [`Sshd`]: host key, user key, `authorized_keys`, config, the process.
//! - [`Stack`]: platform + EMS binding `Pump1` with interfaces `ssh` (the
//!   sshd) and `denied` (a port outside the EMS allow-list).
//! - [`Rac`]: one `tether-rac connect` session on a local port.
//! - [`bench`]: `tether-bench tunnel` (tunnel vs raw TCP loopback).
//! - [`vnc`]: a throwaway Xvnc and `vncsnapshot` (VNC end to end).
//!
//! Test and tool code: `anyhow` errors, blunt.

pub mod bench;
pub mod vnc;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use platform::model::{Protocol, RemoteInterface};
use test_support::{PlatformHandle, PlatformOptions, spawn_platform};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What to tell a developer whose machine lacks OpenSSH.
pub const INSTALL_HINT: &str = "install openssh-server openssh-client (scripts/test.sh does)";

/// The thing every test uses.
pub const THING: &str = "Pump1";

/// Path of the OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Fails with [`INSTALL_HINT`] unless sshd, ssh, scp and ssh-keygen exist.
pub fn require_openssh() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    if !Path::new(SSHD).is_file() {
        missing.push(SSHD);
    }
    for tool in ["ssh", "scp", "ssh-keygen"] {
        if !on_path(tool) {
            missing.push(tool);
        }
    }
    if !missing.is_empty() {
        bail!("missing {}: {INSTALL_HINT}", missing.join(", "));
    }
    Ok(())
}

/// A free loopback port (bound then released; sshd binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// The current user's name.
pub fn current_user() -> anyhow::Result<String> {
    if let Ok(u) = std::env::var("USER")
        && !u.is_empty()
    {
        return Ok(u);
    }
    let out = std::process::Command::new("id").arg("-un").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A running OpenSSH server with its own keys.
pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The user's private key (for `ssh -i`).
    pub key: PathBuf,
    pub user: String,
    child: Child,
}

async fn keygen(path: &Path) -> anyhow::Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .context("ssh-keygen")?;
    if !st.success() {
        bail!("ssh-keygen failed: {st}");
    }
    Ok(())
}

impl Sshd {
    /// Generate keys and a config, start `sshd -D -e`, wait for its banner.
    pub async fn start() -> anyhow::Result<Sshd> {
        require_openssh()?;
        let dir = tempfile::tempdir()?;
        let host_key = dir.path().join("host_key");
        let key = dir.path().join("user_key");
        keygen(&host_key).await?;
        keygen(&key).await?;
        let pubkey = std::fs::read_to_string(dir.path().join("user_key.pub"))?;
        let auth = dir.path().join("authorized_keys");
        std::fs::write(&auth, pubkey)?;
        let user = current_user()?;
        // sshd refuses to start as root without its privilege separation dir.
        if user == "root" && !Path::new("/run/sshd").exists() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let port = free_port()?;
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                 AuthorizedKeysFile {auth}\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nSubsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 20\nMaxStartups 50\n",
                hk = host_key.display(),
                pid = dir.path().join("sshd.pid").display(),
                auth = auth.display(),
            ),
        )?;
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start sshd")?;
        let mut sshd = Sshd {
            port,
            dir,
            key,
            user,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
                use tokio::io::AsyncReadExt;
                let mut b = [0u8; 4];
                if tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut b))
                    .await
                    .is_ok_and(|r| r.is_ok())
                    && &b == b"SSH-"
                {
                    break;
                }
            }
            if let Some(st) = sshd.child.try_wait()? {
                bail!("sshd exited at start-up: {st}");
            }
            if Instant::now() > deadline {
                bail!("sshd did not answer on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(sshd)
    }

    /// Common `ssh`/`scp` options for a connection through local `port`.
    pub fn opts(&self) -> Vec<String> {
        vec![
            "-i".into(),
            self.key.display().to_string(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            "ConnectTimeout=20".into(),
        ]
    }

    /// `ssh -p port ... user@127.0.0.1 command`: (exit ok, stdout, stderr).
    pub async fn ssh(&self, port: u16, command: &str) -> anyhow::Result<(bool, String, String)> {
        let out = Command::new("ssh")
            .arg("-p")
            .arg(port.to_string())
            .args(self.opts())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .await
            .context("run ssh")?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// `scp -P port local user@127.0.0.1:remote`: (exit ok, stderr).
    pub async fn scp_to(
        &self,
        port: u16,
        local: &Path,
        remote: &Path,
    ) -> anyhow::Result<(bool, String)> {
        let out = Command::new("scp")
            .arg("-q")
            .arg("-P")
            .arg(port.to_string())
            .args(self.opts())
            .arg(local)
            .arg(format!("{}@127.0.0.1:{}", self.user, remote.display()))
            .stdin(Stdio::null())
            .output()
            .await
            .context("run scp")?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Write `size` pseudo-random bytes to `path`.
pub fn random_file(path: &Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Platform + EMS, `Pump1` bound, interfaces `ssh` → `target_port` (allowed)
/// and `denied` → `denied_port` (not in the EMS allow-list).
pub struct Stack {
    pub platform: PlatformHandle,
    pub ems_stop: CancellationToken,
    pub ems: JoinHandle<Result<(), ems::RunError>>,
    pub ems_dir: tempfile::TempDir,
}

impl Stack {
    /// Start both and wait until the EMS bound `Pump1`.
    pub async fn start(target_port: u16, denied_port: u16) -> anyhow::Result<Stack> {
        Stack::start_with(target_port, denied_port, "").await
    }

    /// [`Stack::start`] with extra keys in the EMS's `tunnel` group
    /// (`extra` is JSON members with a leading comma, e.g. `, "idle_timeout": 1000`).
    pub async fn start_with(
        target_port: u16,
        denied_port: u16,
        extra: &str,
    ) -> anyhow::Result<Stack> {
        let options = PlatformOptions {
            things: vec![THING.to_owned()],
            ..PlatformOptions::default()
        };
        Stack::start_with_platform(target_port, denied_port, extra, options).await
    }

    /// [`Stack::start_with`] with these platform options (`things` should
    /// hold `Pump1`).
    pub async fn start_with_platform(
        target_port: u16,
        denied_port: u16,
        extra: &str,
        options: PlatformOptions,
    ) -> anyhow::Result<Stack> {
        let platform = spawn_platform(options).await?;
        let store = platform.platform.store();
        for (name, port) in [("ssh", target_port), ("denied", denied_port)] {
            store
                .put_interface(
                    THING,
                    &RemoteInterface {
                        name: name.to_owned(),
                        host: "127.0.0.1".to_owned(),
                        port,
                        protocol: Protocol::Ssh,
                        description: String::new(),
                    },
                )
                .await?;
        }
        let cfg = format!(
            r#"{{
  "ws_servers": [{{"host": "127.0.0.1", "port": {port}}}],
  "appKey": "{key}",
  "certificates": {{"pinned_sha256": ["{fp}"]}},
  "ws_connection": {{"ping_rate": 5000, "connect_retry_interval": 50}},
  "auto_bind": [{{"name": "{THING}", "gateway": true}}],
  "tunnel": {{"allowed_targets": ["127.0.0.1:{target_port}"], "max_concurrent": 8{extra}}}
}}"#,
            port = platform.addr.port(),
            key = platform.app_key,
            fp = platform.fingerprint,
        );
        let ems_dir = tempfile::tempdir()?;
        let loaded =
            ems::config::parse(&cfg, ems_dir.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let ems_stop = CancellationToken::new();
        let ems = tokio::spawn(ems::run(loaded.config, listener, ems_stop.clone()));
        let deadline = Instant::now() + Duration::from_secs(15);
        while platform.platform.registry().binding(THING).is_none() {
            if ems.is_finished() {
                bail!("the EMS stopped before binding {THING}");
            }
            if Instant::now() > deadline {
                bail!("{THING} not bound within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Stack {
            platform,
            ems_stop,
            ems,
            ems_dir,
        })
    }

    /// RAC options trusting the platform's certificate.
    pub fn rac_options(&self) -> anyhow::Result<rac::RunOptions> {
        Ok(rac::RunOptions {
            trust: net::Trust::pinned_from_strs(&[&self.platform.fingerprint])?,
            ..rac::RunOptions::default()
        })
    }

    /// How the RAC creates a session to `interface` with the edge app key.
    pub fn join(&self, interface: &str) -> anyhow::Result<rac::Join> {
        Ok(rac::Join::Create {
            platform: url::Url::parse(&self.platform.base_url)?,
            thing: THING.to_owned(),
            interface: interface.to_owned(),
            credentials: rac::Credentials::AppKey(self.platform.app_key.clone()),
        })
    }

    /// Create a platform user (`role`: administrator, operator, viewer).
    pub async fn create_user(&self, name: &str, password: &str, role: &str) -> anyhow::Result<()> {
        let r = self
            .platform
            .http_client()?
            .post(self.platform.url("/api/v1/users"))
            .basic_auth(
                &self.platform.admin_user,
                Some(&self.platform.admin_password),
            )
            .json(&serde_json::json!({"name": name, "password": password, "role": role}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("create user {name}: {} {}", r.status(), r.text().await?);
        }
        Ok(())
    }

    /// Start a RAC session to `interface` on a fresh local port.
    pub async fn rac(&self, interface: &str) -> anyhow::Result<Rac> {
        self.rac_with(self.join(interface)?).await
    }

    /// Start a RAC session as `user` (password) on a fresh local port.
    pub async fn rac_as(&self, interface: &str, user: &str, password: &str) -> anyhow::Result<Rac> {
        self.rac_with(rac::Join::Create {
            platform: url::Url::parse(&self.platform.base_url)?,
            thing: THING.to_owned(),
            interface: interface.to_owned(),
            credentials: rac::Credentials::Password {
                user: user.to_owned(),
                password: password.to_owned(),
            },
        })
        .await
    }

    async fn rac_with(&self, join: rac::Join) -> anyhow::Result<Rac> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let notify: rac::Notify = Arc::new(move |n| {
            let _ = tx.send(n);
        });
        let task = tokio::spawn(rac::listen_on(
            join,
            listener,
            self.rac_options()?,
            stop.clone(),
            notify,
        ));
        Ok(Rac {
            addr,
            stop,
            task,
            notices: rx,
        })
    }

    /// The sessions the platform knows (as the administrator).
    pub async fn sessions(&self) -> anyhow::Result<serde_json::Value> {
        let r = self
            .platform
            .http_client()?
            .get(self.platform.url("/api/v1/sessions"))
            .basic_auth(
                &self.platform.admin_user,
                Some(&self.platform.admin_password),
            )
            .send()
            .await?;
        Ok(r.json().await?)
    }

    /// Stop the EMS (as on a device shutdown) and wait for it.
    pub async fn stop_ems(&mut self) -> anyhow::Result<()> {
        self.ems_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.ems).await;
        Ok(())
    }
}

/// A RAC session serving a local port.
pub struct Rac {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<rac::Ended, rac::RacError>>,
    pub notices: tokio::sync::mpsc::UnboundedReceiver<rac::Notice>,
}

impl Rac {
    /// Wait for the session id (the `Joined` notice).
    pub async fn session_id(&mut self, within: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.notices.recv()).await {
                Ok(Some(rac::Notice::Joined { session, .. })) => return Ok(session),
                Ok(Some(_)) => continue,
                Ok(None) => bail!("the RAC stopped before joining"),
                Err(_) => bail!("the RAC did not join within {within:?}"),
            }
        }
    }

    /// Wait for the RAC to end, with a deadline.
    pub async fn ended(
        self,
        within: Duration,
    ) -> anyhow::Result<Result<rac::Ended, rac::RacError>> {
        match tokio::time::timeout(within, self.task).await {
            Ok(r) => Ok(r?),
            Err(_) => bail!("the RAC did not end within {within:?}"),
        }
    }
}

/// Whether something accepts TCP connections at `addr`.
pub async fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_ok()
}
