//! SSH and VNC clients: configured in the settings or detected on `PATH`.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::settings::Settings;

/// Command templates (program and arguments) with `{host}` and `{port}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clients {
    /// Opens an SSH client, if one is available.
    pub ssh: Option<Vec<String>>,
    /// Opens a VNC viewer, if one is available.
    pub vnc: Option<Vec<String>>,
}

/// VNC viewers tried in order, with their argument templates.
const VNC_VIEWERS: &[(&str, &[&str])] = &[
    ("vncviewer", &["{host}::{port}"]),
    ("xtightvncviewer", &["{host}::{port}"]),
    ("remmina", &["-c", "vnc://{host}:{port}"]),
    ("gvncviewer", &["{host}::{port}"]),
];

fn split(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_owned).collect()
}

/// `name` as an executable file in one of the `PATH` directories.
pub fn which(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

impl Clients {
    /// The settings' commands, else what `path` (a `PATH` value) offers:
    /// `x-terminal-emulator -e ssh` when both exist, the first VNC viewer found.
    pub fn detect(settings: &Settings, path: Option<&OsStr>) -> Self {
        let ssh = settings.ssh_client.as_deref().map(split).or_else(|| {
            (which("x-terminal-emulator", path).is_some() && which("ssh", path).is_some())
                .then(|| split("x-terminal-emulator -e ssh -p {port} {host}"))
        });
        let vnc = settings.vnc_client.as_deref().map(split).or_else(|| {
            VNC_VIEWERS.iter().find_map(|(prog, args)| {
                which(prog, path).map(|_| {
                    std::iter::once(prog.to_string())
                        .chain(args.iter().map(|a| a.to_string()))
                        .collect()
                })
            })
        });
        Self { ssh, vnc }
    }
}

/// The program and arguments of `template` for `addr`.
pub fn command_for(template: &[String], addr: SocketAddr) -> Option<(PathBuf, Vec<String>)> {
    let (prog, args) = template.split_first()?;
    let fill = |s: &str| {
        s.replace("{host}", &addr.ip().to_string())
            .replace("{port}", &addr.port().to_string())
    };
    Some((
        Path::new(&fill(prog)).to_owned(),
        args.iter().map(|a| fill(a)).collect(),
    ))
}

/// Start the client for `addr` (detached; its exit is not waited for by
/// the caller, a reaper thread collects it).
pub fn launch(template: &[String], addr: SocketAddr) -> std::io::Result<()> {
    let (prog, args) =
        command_for(template, addr).ok_or_else(|| std::io::Error::other("empty client command"))?;
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()?;
    std::thread::Builder::new()
        .name("client-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn detects_on_path_and_settings_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().as_os_str();
        assert_eq!(
            Clients::detect(&Settings::default(), Some(path)),
            Clients::default()
        );
        exe(dir.path(), "ssh");
        assert_eq!(Clients::detect(&Settings::default(), Some(path)).ssh, None);
        exe(dir.path(), "x-terminal-emulator");
        exe(dir.path(), "remmina");
        std::fs::write(dir.path().join("vncviewer"), "not executable").unwrap();
        let c = Clients::detect(&Settings::default(), Some(path));
        let addr: SocketAddr = "127.0.0.1:2222".parse().unwrap();
        let (prog, args) = command_for(c.ssh.as_ref().unwrap(), addr).unwrap();
        assert_eq!(prog, Path::new("x-terminal-emulator"));
        assert_eq!(args, ["-e", "ssh", "-p", "2222", "127.0.0.1"]);
        let (prog, args) = command_for(c.vnc.as_ref().unwrap(), addr).unwrap();
        assert_eq!(prog, Path::new("remmina"));
        assert_eq!(args, ["-c", "vnc://127.0.0.1:2222"]);

        let s = Settings {
            vnc_client: Some("myvnc --port {port}".into()),
            ..Settings::default()
        };
        let c = Clients::detect(&s, Some(path));
        assert_eq!(
            command_for(c.vnc.as_ref().unwrap(), addr).unwrap().1,
            ["--port", "2222"]
        );
    }
}
