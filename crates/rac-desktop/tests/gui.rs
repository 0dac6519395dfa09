//! The tray app under Xvfb with a private D-Bus session bus and a minimal
//! StatusNotifierWatcher (recording `RegisterStatusNotifierItem`): the tray
//! item registers, exports its icon and title, a second instance hands a
//! URL over and exits, SIGTERM ends it and removes its socket. Screenshots
//! and the exported icon go to `<target>/rac-desktop/`.
//!
//! Needs `Xvfb`, `dbus-daemon`, ImageMagick and `xwininfo` (Debian: `xvfb
//! dbus-x11 imagemagick x11-utils`); FAILS with a clear message when they are missing.
#![cfg(feature = "tray")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rac-desktop-tray");

/// Kills and reaps a child when dropped.
struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "the GUI test needs `{tool}` (apt-get install -y {package}); it is not on PATH"
    );
}

/// Spawn `cmd` and read the first stdout line within 10 s.
fn first_line(mut cmd: Command, what: &str) -> (Reaped, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} printed nothing within 10 s"));
    assert!(!line.trim().is_empty(), "{what} failed to start");
    (Reaped(child), line.trim().to_owned())
}

#[derive(Clone, Default)]
struct Watcher {
    items: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        self.items
            .lock()
            .unwrap()
            .push((sender, service.to_owned()));
    }
    fn register_status_notifier_host(&self, _service: &str) {}
    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.1.clone())
            .collect()
    }
    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// A notification server recording `Notify` calls (summary, body).
#[derive(Clone, Default)]
struct Notifications {
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app: &str,
        _replaces: u32,
        _icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        _timeout: i32,
    ) -> u32 {
        let mut seen = self.seen.lock().unwrap();
        seen.push((summary.to_owned(), body.to_owned()));
        seen.len() as u32
    }
}

fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let d = target.join("rac-desktop");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn item_property(
    bus: &zbus::blocking::Connection,
    sender: &str,
    path: &str,
    name: &str,
) -> zbus::zvariant::OwnedValue {
    let proxy = zbus::blocking::fdo::PropertiesProxy::builder(bus)
        .destination(sender.to_owned())
        .unwrap()
        .path(path.to_owned())
        .unwrap()
        .build()
        .unwrap();
    proxy
        .get(
            zbus::names::InterfaceName::try_from("org.kde.StatusNotifierItem").unwrap(),
            name,
        )
        .unwrap_or_else(|e| panic!("property {name}: {e}"))
}

/// The exported menu (com.canonical.dbusmenu GetLayout), as debug text.
fn menu_layout(bus: &zbus::blocking::Connection, sender: &str, path: &str) -> String {
    let reply = bus
        .call_method(
            Some(sender),
            path,
            Some("com.canonical.dbusmenu"),
            "GetLayout",
            &(0i32, -1i32, Vec::<&str>::new()),
        )
        .unwrap();
    let body = reply.body();
    let body: zbus::zvariant::Structure<'_> = body.deserialize().unwrap();
    format!("{body:?}")
}

/// The item's current icon file (tray-icon exports a PNG path as IconName).
fn icon_file(bus: &zbus::blocking::Connection, sender: &str, path: &str) -> PathBuf {
    let name: String = item_property(bus, sender, path, "IconName")
        .try_into()
        .unwrap();
    let theme: String = item_property(bus, sender, path, "IconThemePath")
        .try_into()
        .unwrap_or_default();
    if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        Path::new(&theme).join(format!("{name}.png"))
    }
}

fn layout_now(bus: &zbus::blocking::Connection, sender: &str, path: &str) -> String {
    let menu: zbus::zvariant::OwnedObjectPath =
        item_property(bus, sender, path, "Menu").try_into().unwrap();
    menu_layout(bus, sender, menu.as_str())
}

/// The dbusmenu id of the item labelled `label` in a layout's debug text.
fn item_id(layout: &str, label: &str) -> i32 {
    let at = layout
        .find(&format!("Str(\"{label}\")"))
        .unwrap_or_else(|| panic!("no {label:?} in {layout}"));
    let open = layout[..at].rfind("I32(").unwrap() + 4;
    let close = open + layout[open..].find(')').unwrap();
    layout[open..close].parse().unwrap()
}

/// Show `png` enlarged on the X display (a window we can screenshot, since
/// no tray host draws the item here).
fn show(display: &str, png: &Path, x: u32) -> Reaped {
    Reaped(
        Command::new("display")
            .args(["-display", display, "-resize", "400%", "-geometry"])
            .arg(format!("+{x}+20"))
            .arg(png)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn tray_registers_under_xvfb() {
    require("Xvfb", "xvfb");
    require("dbus-daemon", "dbus-x11");
    require("import", "imagemagick");
    require("display", "imagemagick");
    require("xwininfo", "x11-utils");
    let out = out_dir();

    // A real broker and echo target on a runtime of the test.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut b = rt.block_on(async { common::broker(common::echo_server().await).await });

    let mut x = Command::new("Xvfb");
    x.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        "640x480x24",
        "-nolisten",
        "tcp",
    ]);
    let (_xvfb, display) = first_line(x, "Xvfb");
    let display = format!(":{display}");
    let mut d = Command::new("dbus-daemon");
    d.args(["--session", "--nofork", "--print-address=1"]);
    let (_dbus, address) = first_line(d, "dbus-daemon");

    let watcher = Watcher::default();
    let items = watcher.items.clone();
    let notifications = Notifications::default();
    let notes = notifications.seen.clone();
    let bus = zbus::blocking::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", watcher)
        .unwrap()
        .serve_at("/org/freedesktop/Notifications", notifications)
        .unwrap()
        .build()
        .unwrap();

    let home = tempfile::tempdir().unwrap();
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Settings trusting the broker.
    let settings = home.path().join("config/tether/rac.toml");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, format!("[[platform]]\nurl = \"{}\"\n", b.base)).unwrap();
    let env = |c: &mut Command| {
        c.env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("RUST_LOG", "info");
    };
    let mut cmd = Command::new(BIN);
    env(&mut cmd);
    let log = std::fs::File::create(out.join("tray.log")).unwrap();
    let tray = Reaped(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap());

    let (sender, service) = wait_for(
        Duration::from_secs(15),
        "RegisterStatusNotifierItem",
        || items.lock().unwrap().first().cloned(),
    );
    // appindicator registers its object path; others a bus name.
    let path = if service.starts_with('/') {
        service.clone()
    } else {
        "/StatusNotifierItem".to_owned()
    };
    let title: String = item_property(&bus, &sender, &path, "Title")
        .try_into()
        .unwrap();
    assert!(title.to_lowercase().contains("tether"), "title {title:?}");
    let idle = icon_file(&bus, &sender, &path);
    std::fs::copy(&idle, out.join("icon-idle.png")).unwrap();
    let layout = layout_now(&bus, &sender, &path);
    assert!(
        layout.contains("\"No active session\"") && layout.contains("\"Quit\""),
        "{layout}"
    );

    // The socket is up: a second instance hands a URL over and exits 0.
    let sock = runtime.join(rac_desktop::SOCKET_NAME);
    wait_for(Duration::from_secs(5), "the instance socket", || {
        sock.exists().then_some(())
    });
    let hand = |url: &str| {
        let mut c = Command::new(BIN);
        env(&mut c);
        let st = c.arg(url).stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "the second instance failed: {st}");
    };
    // An unknown platform: the menu asks, nothing is trusted silently.
    hand("tether://open?platform=http%3A%2F%2F127.0.0.1%3A9&session=s-1&nonce=n1");
    wait_for(
        Duration::from_secs(10),
        "the trust question in the menu",
        || {
            layout_now(&bus, &sender, &path)
                .contains("Trust platform http://127.0.0.1:9 (plain HTTP")
                .then_some(())
        },
    );
    // A second instance without a URL refuses to start.
    let mut third = Command::new(BIN);
    env(&mut third);
    let o = third.output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already running"));

    // The trusted broker: a session becomes active, the icon changes.
    let url = rt.block_on(b.launch_url());
    hand(&url);
    let start = rt.block_on(b.next_start());
    let _edge = rt.enter();
    let _edge = common::spawn_edge(start, tokio_util::sync::CancellationToken::new());
    let layout = wait_for(Duration::from_secs(10), "the session in the menu", || {
        let l = layout_now(&bus, &sender, &path);
        l.contains("\"1 active session\"").then_some(l)
    });
    // Labelled with the device and interface from the nonce trade.
    assert!(
        layout.contains("Pump1 / ssh \u{2192} 127.0.0.1:"),
        "{layout}"
    );
    assert!(layout.contains("Copy address 127.0.0.1:"), "{layout}");
    assert!(layout.contains("\"End session\""), "{layout}");
    let active = wait_for(Duration::from_secs(5), "the active icon", || {
        let f = icon_file(&bus, &sender, &path);
        (f != idle).then_some(f)
    });
    std::fs::copy(&active, out.join("icon-active.png")).unwrap();
    assert_ne!(
        std::fs::read(&active).unwrap(),
        std::fs::read(out.join("icon-idle.png")).unwrap()
    );
    std::fs::write(out.join("menu-active.txt"), &layout).unwrap();

    let shot = out.join("xvfb.png");
    let _a = show(&display, &out.join("icon-idle.png"), 20);
    let _b = show(&display, &out.join("icon-active.png"), 220);
    wait_for(
        Duration::from_secs(10),
        "the icon viewers on screen",
        || {
            let o = Command::new("xwininfo")
                .args(["-display", &display, "-root", "-tree"])
                .output()
                .ok()?;
            let tree = String::from_utf8_lossy(&o.stdout);
            (tree.matches("icon-idle.png").count() > 0
                && tree.matches("icon-active.png").count() > 0)
                .then_some(())
        },
    );
    let st = Command::new("import")
        .args(["-display", &display, "-window", "root"])
        .arg(&shot)
        .status()
        .unwrap();
    assert!(st.success() && shot.is_file(), "screenshot failed");

    let noted = |summary: &str| {
        let notes = notes.clone();
        let summary = summary.to_owned();
        move || {
            notes
                .lock()
                .unwrap()
                .iter()
                .find(|n| n.0 == summary)
                .cloned()
        }
    };
    let (_, body) = wait_for(
        Duration::from_secs(5),
        "a ready notification",
        noted("Tether: session ready"),
    );
    assert!(body.contains("127.0.0.1:"), "{body}");
    assert!(body.contains("Pump1 / ssh"), "{body}");
    wait_for(
        Duration::from_secs(5),
        "a trust notification",
        noted("Tether: unknown platform"),
    );

    // Click "End session" through the exported menu: the session ends, a
    // notification says why, the icon goes back to idle.
    let menu: zbus::zvariant::OwnedObjectPath = item_property(&bus, &sender, &path, "Menu")
        .try_into()
        .unwrap();
    let end = item_id(&layout_now(&bus, &sender, &path), "End session");
    bus.call_method(
        Some(sender.as_str()),
        menu.as_str(),
        Some("com.canonical.dbusmenu"),
        "Event",
        &(end, "clicked", zbus::zvariant::Value::from(0i32), 0u32),
    )
    .unwrap();
    let (_, why) = wait_for(
        Duration::from_secs(10),
        "an ended notification",
        noted("Tether: session ended"),
    );
    assert!(why.contains("session ended"), "{why}");
    wait_for(Duration::from_secs(5), "the menu without sessions", || {
        layout_now(&bus, &sender, &path)
            .contains("\"No active session\"")
            .then_some(())
    });
    let again = icon_file(&bus, &sender, &path);
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(out.join("icon-idle.png")).unwrap()
    );

    // SIGTERM: the app quits and removes its socket.
    let pid = tray.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut tray = tray;
    let code = wait_for(Duration::from_secs(10), "the tray app to exit", || {
        tray.0.try_wait().unwrap()
    });
    assert!(code.success(), "tray exit: {code}");
    assert!(!sock.exists(), "the socket was not removed");
}
