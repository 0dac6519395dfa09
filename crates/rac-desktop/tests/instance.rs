//! Single instance over a real Unix socket in a temporary runtime dir:
//! hand-over, permissions, stale sockets, a second server, bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rac_desktop::{InstanceError, InstanceServer, MAX_LINE, hand_over, socket_dir};
use tokio_util::sync::CancellationToken;

const URL: &str = "tether://open?platform=https%3A%2F%2Fp.example&session=s-1&nonce=n1";

type Seen = Arc<Mutex<Vec<String>>>;

/// Serve on a runtime thread; URLs go to `seen`; "bad" ones are refused.
fn serve(server: InstanceServer) -> (Seen, CancellationToken, std::thread::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let stop = CancellationToken::new();
    let st = stop.clone();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(server.serve(
            move |url| {
                rac::LaunchUrl::parse(&url).map_err(|e| e.to_string())?;
                s.lock().unwrap().push(url);
                Ok(())
            },
            st,
        ))
        .unwrap();
    });
    (seen, stop, t)
}

#[test]
fn hand_over_reaches_the_running_instance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(rac_desktop::SOCKET_NAME);
    let server = InstanceServer::bind(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    // A second instance sees the first one.
    match InstanceServer::bind(&path) {
        Err(InstanceError::AlreadyRunning(p)) => assert_eq!(p, path),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }

    let (seen, stop, t) = serve(server);
    hand_over(&path, URL, Duration::from_secs(5)).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![URL.to_owned()]);

    // A bad URL is refused with the parser's message.
    match hand_over(&path, "tether://open?session=x", Duration::from_secs(5)) {
        Err(InstanceError::Refused(why)) => assert!(why.contains("platform is missing"), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    // An over-long line gets an error reply, not a hang.
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(&vec![b'x'; MAX_LINE + 10]);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.contains("\"status\":\"error\"") && reply.contains("longer"),
        "{reply}"
    );
    // Unknown JSON fields are refused.
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"{\"open\":\"x\",\"extra\":1}\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("bad request"), "{reply}");

    stop.cancel();
    t.join().unwrap();
    // The server removed its socket on the way out.
    assert!(!path.exists());
    match hand_over(&path, URL, Duration::from_secs(1)) {
        Err(InstanceError::NotRunning(_)) => {}
        other => panic!("expected NotRunning, got {other:?}"),
    }
}

#[test]
fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(rac_desktop::SOCKET_NAME);
    // A socket file left by a crashed instance: bound, then the listener
    // is gone without removing the file.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    assert!(matches!(
        hand_over(&path, URL, Duration::from_secs(1)),
        Err(InstanceError::NotRunning(_))
    ));
    let server = InstanceServer::bind(&path).unwrap();
    let (seen, stop, t) = serve(server);
    hand_over(&path, URL, Duration::from_secs(5)).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    stop.cancel();
    t.join().unwrap();
}

#[test]
fn fallback_directory_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let rt = dir.path().join("runtime");
    assert_eq!(socket_dir(Some(rt.clone()), None).unwrap(), rt);
    let cache = dir.path().join("cache");
    let d = socket_dir(None, Some(cache.clone())).unwrap();
    assert!(d.starts_with(&cache));
    let mode = std::fs::metadata(&d).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "dir mode {mode:o}");
    // An existing, too open directory is tightened.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    socket_dir(None, Some(cache)).unwrap();
    let mode = std::fs::metadata(&d).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(matches!(
        socket_dir(None, None),
        Err(InstanceError::NoDirectory)
    ));
}
