//! The engine headless, against a real broker and a fake edge: sessions
//! appear and end as events on a UI-side receiver; unknown platforms are
//! asked about, never trusted silently; trusting saves the settings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use rac_desktop::{Command, EngineConfig, Event, Settings, TrustedPlatform};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Ui {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
    stop: CancellationToken,
    engine: tokio::task::JoinHandle<()>,
}

fn start(settings: Settings, settings_path: Option<std::path::PathBuf>) -> Ui {
    let (ctx, crx) = mpsc::channel(rac_desktop::CHANNEL);
    let (etx, erx) = mpsc::channel(rac_desktop::CHANNEL);
    let stop = CancellationToken::new();
    let cfg = EngineConfig {
        settings,
        settings_path,
        run: rac::RunOptions::default(),
    };
    let engine = tokio::spawn(rac_desktop::run(cfg, crx, etx, stop.clone()));
    Ui {
        commands: ctx,
        events: erx,
        stop,
        engine,
    }
}

impl Ui {
    /// The next event other than peer changes.
    async fn next(&mut self) -> Event {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("no event within 10 s")
                .expect("engine gone");
            if !matches!(ev, Event::Peer { .. }) {
                return ev;
            }
        }
    }

    async fn open(&self, url: &str) {
        let l = rac::LaunchUrl::parse(url).unwrap();
        self.commands.send(Command::Open(l)).await.unwrap();
    }
}

fn trusting(base: &str) -> Settings {
    Settings {
        platforms: vec![TrustedPlatform {
            url: base.to_owned(),
            pin_sha256: vec![],
        }],
        ..Settings::default()
    }
}

async fn echo_through(addr: std::net::SocketAddr) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"hello tray").await.unwrap();
    let mut back = [0u8; 10];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"hello tray");
}

#[tokio::test]
async fn sessions_appear_and_end_on_user_request() {
    let mut b = broker(echo_server().await).await;
    let mut ui = start(trusting(&b.base), None);
    let url = b.launch_url().await;
    ui.open(&url).await;
    let edge_stop = CancellationToken::new();
    let _edge = spawn_edge(b.next_start().await, edge_stop.clone());
    let Event::Ready(info) = ui.next().await else {
        panic!("expected Ready")
    };
    assert!(info.addr.ip().is_loopback());
    assert_eq!(info.platform, b.base);
    assert!(url.contains(&info.session));
    // The nonce trade named the device and interface: the menu label uses them.
    assert_eq!(info.thing.as_deref(), Some("Pump1"));
    assert_eq!(info.interface.as_deref(), Some("ssh"));
    assert_eq!(info.label(), format!("Pump1 / ssh \u{2192} {}", info.addr));
    echo_through(info.addr).await;

    ui.commands.send(Command::End(info.id)).await.unwrap();
    match ui.next().await {
        Event::Ended { id, clean, why } => {
            assert_eq!(id, info.id);
            assert!(clean, "{why}");
        }
        other => panic!("expected Ended, got {other:?}"),
    }
    // The local port is closed.
    assert!(tokio::net::TcpStream::connect(info.addr).await.is_err());
    ui.commands.send(Command::Quit).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), ui.engine)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn session_ended_by_the_device_says_why_and_port_range_is_used() {
    let mut b = broker(echo_server().await).await;
    // A port range: find two free ports' neighbourhood by binding 0 first.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = probe.local_addr().unwrap().port();
    drop(probe);
    let mut settings = trusting(&b.base);
    settings.ports = Some(rac_desktop::PortRange { first: p, last: p });
    let mut ui = start(settings, None);
    ui.open(&b.launch_url().await).await;
    let edge_stop = CancellationToken::new();
    let edge = spawn_edge(b.next_start().await, edge_stop.clone());
    let Event::Ready(info) = ui.next().await else {
        panic!("expected Ready")
    };
    assert_eq!(info.addr.port(), p);
    echo_through(info.addr).await;

    // A second launch while the only port of the range is taken fails.
    ui.open(&b.launch_url().await).await;
    match ui.next().await {
        Event::Failed { why } => assert!(why.contains(&format!("{p}-{p}")), "{why}"),
        other => panic!("expected Failed, got {other:?}"),
    }

    edge_stop.cancel(); // the device leaves
    let _ = edge.await;
    match ui.next().await {
        Event::Ended { id, why, .. } => {
            assert_eq!(id, info.id);
            assert!(why.starts_with("session ended"), "{why}");
        }
        other => panic!("expected Ended, got {other:?}"),
    }
    ui.stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), ui.engine)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn unknown_platform_is_asked_then_trusted_and_saved() {
    let mut b = broker(echo_server().await).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether/rac.toml");
    let mut ui = start(Settings::default(), Some(path.clone()));
    ui.open(&b.launch_url().await).await;
    let unknown = match ui.next().await {
        Event::AskTrust(u) => u,
        other => panic!("expected AskTrust, got {other:?}"),
    };
    assert_eq!(unknown.origin, b.base);
    assert!(unknown.question().contains("plain HTTP"));
    // Nothing else happens until the user answers.
    assert!(ui.events.try_recv().is_err());

    ui.commands
        .send(Command::Trust(unknown.origin.clone()))
        .await
        .unwrap();
    assert_eq!(ui.next().await, Event::Trusted(b.base.clone()));
    let _edge = spawn_edge(b.next_start().await, CancellationToken::new());
    let Event::Ready(info) = ui.next().await else {
        panic!("expected Ready")
    };
    echo_through(info.addr).await;
    let saved = Settings::load(&path).unwrap();
    assert_eq!(saved.platforms.len(), 1);
    assert_eq!(saved.platforms[0].url, b.base);

    // Declining drops the waiting launch.
    let mut ui2 = start(Settings::default(), None);
    ui2.open(&b.launch_url().await).await;
    let Event::AskTrust(u) = ui2.next().await else {
        panic!("expected AskTrust")
    };
    ui2.commands
        .send(Command::Distrust(u.origin))
        .await
        .unwrap();
    ui2.commands.send(Command::Quit).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), ui2.engine)
        .await
        .unwrap()
        .unwrap();
    while let Some(ev) = ui2.events.recv().await {
        assert!(
            !matches!(ev, Event::Ready(_)),
            "declined but started: {ev:?}"
        );
    }

    // Quit ends the running session with an Ended event.
    ui.commands.send(Command::Quit).await.unwrap();
    match ui.next().await {
        Event::Ended { id, .. } => assert_eq!(id, info.id),
        other => panic!("expected Ended, got {other:?}"),
    }
}
