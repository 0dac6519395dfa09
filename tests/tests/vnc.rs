//! VNC end to end: a real TigerVNC server (`Xvnc`) reached through a
//! remote-access session, with a real VNC client (`vncsnapshot`) on the
//! RAC's local port taking a screenshot. Once over the native tunnel, once
//! with the EMS in legacy ThingWorx mode. Skipped with a message when Xvnc
//! or vncsnapshot is missing, unless `TETHER_REQUIRE_E2E` is set.

use std::time::Duration;

use platform::model::{Protocol, RemoteInterface};
use tether_e2e::vnc::{Xvnc, jpeg_size, snapshot, vnc_tools};
use tether_e2e::{Stack, THING, free_port};

const STEP: Duration = Duration::from_secs(60);
const WIDTH: u16 = 800;
const HEIGHT: u16 = 600;

async fn screenshot_through_a_session(tunnel_extra: &str) -> anyhow::Result<()> {
    if !vnc_tools()? {
        return Ok(());
    }
    let xvnc = Xvnc::start(WIDTH, HEIGHT).await?;
    let stack = Stack::start_with(xvnc.port, free_port()?, tunnel_extra).await?;
    stack
        .platform
        .platform
        .store()
        .put_interface(
            THING,
            &RemoteInterface {
                name: "vnc".to_owned(),
                host: "127.0.0.1".to_owned(),
                port: xvnc.port,
                protocol: Protocol::Vnc,
                description: "TigerVNC".to_owned(),
            },
        )
        .await?;
    let mut rac = stack.rac("vnc").await?;
    let id = rac.session_id(STEP).await?;

    let out = xvnc.dir.path().join("through-the-tunnel.jpg");
    let started = std::time::Instant::now();
    snapshot(rac.addr.port(), &out, STEP).await?;
    eprintln!(
        "vncsnapshot {WIDTH}x{HEIGHT} through the tunnel{tunnel_extra} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(jpeg_size(&out)?, (WIDTH, HEIGHT));
    let len = std::fs::metadata(&out)?.len();
    assert!(len > 1000, "a {len}-byte screenshot");

    // The raw framebuffer (32 bits per pixel) crossed the tunnel.
    let list = stack.sessions().await?;
    let s = list
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    let fb = u64::from(WIDTH) * u64::from(HEIGHT) * 4;
    assert!(
        s["bytes_server_to_client"].as_u64().unwrap_or(0) >= fb,
        "{s}"
    );

    rac.stop.cancel();
    let ended = rac.ended(STEP).await?;
    assert!(ended.is_ok(), "{ended:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vnc_screenshot_through_a_native_tunnel() -> anyhow::Result<()> {
    screenshot_through_a_session("").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vnc_screenshot_through_a_legacy_tunnel() -> anyhow::Result<()> {
    screenshot_through_a_session(r#", "mode": "legacy""#).await
}
