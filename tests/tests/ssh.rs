//! Remote access end to end with real OpenSSH: platform (broker) + EMS
//! (tunnel module) + RAC, `ssh` and `scp` through the RAC's local port.
//! Missing OpenSSH fails the tests (see `tether_e2e::INSTALL_HINT`).

use std::time::Duration;

use tether_e2e::{Sshd, Stack, free_port, port_open, random_file, sha256_file};

/// Size of the copied file: 200 MiB in release, 8 MiB in debug.
fn copy_size() -> u64 {
    if cfg!(debug_assertions) {
        8 << 20
    } else {
        200 << 20
    }
}

const STEP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssh_command_scp_and_concurrent_sessions_through_one_tunnel() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let stack = Stack::start(sshd.port, free_port()?).await?;
    let mut rac = stack.rac("ssh").await?;
    let id = rac.session_id(STEP).await?;
    let port = rac.addr.port();

    // A command's output comes back.
    let (ok, out, err) = sshd.ssh(port, "echo hello").await?;
    assert!(ok, "ssh failed: {err}");
    assert_eq!(out.trim(), "hello");

    // scp a file; the copy is byte-identical.
    let src = sshd.dir.path().join("src.bin");
    let dst = sshd.dir.path().join("dst.bin");
    random_file(&src, copy_size())?;
    let started = std::time::Instant::now();
    let (ok, err) = sshd.scp_to(port, &src, &dst).await?;
    assert!(ok, "scp failed: {err}");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "scp {} MiB through the tunnel in {secs:.2} s ({:.1} MiB/s)",
        copy_size() >> 20,
        (copy_size() >> 20) as f64 / secs
    );
    assert_eq!(sha256_file(&src)?, sha256_file(&dst)?);

    // Two ssh sessions and one scp at once over the same session.
    let dst2 = sshd.dir.path().join("dst2.bin");
    let (a, b, c) = tokio::join!(
        sshd.ssh(port, "sleep 0.3; echo one"),
        sshd.ssh(port, "sleep 0.3; echo two"),
        sshd.scp_to(port, &src, &dst2),
    );
    let (a, b, c) = (a?, b?, c?);
    assert!(a.0 && a.1.trim() == "one", "first ssh: {a:?}");
    assert!(b.0 && b.1.trim() == "two", "second ssh: {b:?}");
    assert!(c.0, "concurrent scp: {}", c.1);
    assert_eq!(sha256_file(&src)?, sha256_file(&dst2)?);

    // The platform counted the streams and bytes of this one session.
    let list = stack.sessions().await?;
    let s = list
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(s["state"], "active", "{list}");
    assert!(s["streams_opened"].as_u64().unwrap_or(0) >= 5, "{s}");
    assert!(
        s["bytes_client_to_server"].as_u64().unwrap_or(0) >= 2 * copy_size(),
        "{s}"
    );

    rac.stop.cancel();
    let ended = rac.ended(STEP).await?;
    assert!(ended.is_ok(), "{ended:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_outside_the_edge_allow_list_is_refused_clearly() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let denied = free_port()?;
    let stack = Stack::start(sshd.port, denied).await?;
    let rac = stack.rac("denied").await?;
    let result = rac.ended(STEP).await?;
    let err = match result {
        Ok(ended) => panic!("a session to a refused target ran: {ended:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("allowed_targets") && err.contains(&format!("127.0.0.1:{denied}")),
        "unclear refusal: {err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_delete_ends_the_session_and_frees_the_port() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let stack = Stack::start(sshd.port, free_port()?).await?;
    stack
        .create_user("olga", "operator-password", "operator")
        .await?;
    let mut rac = stack.rac_as("ssh", "olga", "operator-password").await?;
    let id = rac.session_id(STEP).await?;
    let (ok, out, err) = sshd.ssh(rac.addr.port(), "echo up").await?;
    assert!(ok && out.trim() == "up", "{err}");

    let r = stack
        .platform
        .http_client()?
        .delete(stack.platform.url(&format!("/api/v1/sessions/{id}")))
        .basic_auth(
            &stack.platform.admin_user,
            Some(&stack.platform.admin_password),
        )
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await?;
    assert_eq!(v["end_reason"], "ended_by_admin", "{v}");

    let addr = rac.addr;
    let ended = rac.ended(STEP).await??;
    assert_eq!(ended.code, Some(tunnel_code_ended()), "{ended:?}");
    assert!(!port_open(addr).await, "the RAC still listens on {addr}");

    // The audit log has the record.
    let audit = stack
        .platform
        .platform
        .store()
        .audit_log(50)
        .await?
        .into_iter()
        .find(|e| e.kind == "session.ended");
    let audit = audit.expect("a session.ended audit entry");
    assert!(audit.detail.contains(&id), "{audit:?}");
    Ok(())
}

fn tunnel_code_ended() -> u16 {
    4005
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edge_stopped_mid_copy_is_reported_and_the_port_freed() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let mut stack = Stack::start(sshd.port, free_port()?).await?;
    let mut rac = stack.rac("ssh").await?;
    rac.session_id(STEP).await?;
    let port = rac.addr.port();
    let src = sshd.dir.path().join("big.bin");
    random_file(&src, 64 << 20)?;
    let dst = sshd.dir.path().join("partial.bin");

    let copy = {
        let (key_opts, user) = (sshd.opts(), sshd.user.clone());
        let (src, dst) = (src.clone(), dst.clone());
        tokio::spawn(async move {
            tokio::process::Command::new("scp")
                .arg("-q")
                .arg("-l")
                .arg("40000") // 40 Mbit/s: the copy is still running when the edge stops
                .arg("-P")
                .arg(port.to_string())
                .args(key_opts)
                .arg(&src)
                .arg(format!("{user}@127.0.0.1:{}", dst.display()))
                .stdin(std::process::Stdio::null())
                .output()
                .await
        })
    };
    // Wait until bytes arrive, then stop the edge.
    let deadline = std::time::Instant::now() + STEP;
    while std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0) < (1 << 20) {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.stop_ems().await?;

    let addr = rac.addr;
    let ended = rac.ended(STEP).await??;
    assert!(!ended.by_us, "{ended:?}");
    assert_ne!(ended.exit_code(), rac::EXIT_OK, "{ended:?}");
    assert!(!ended.message().is_empty());
    eprintln!("RAC: {}", ended.message());
    assert!(!port_open(addr).await, "the RAC still listens on {addr}");
    let out = tokio::time::timeout(STEP, copy).await???;
    assert!(
        !out.status.success(),
        "scp finished although the edge stopped"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn viewers_may_not_open_sessions() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let stack = Stack::start(sshd.port, free_port()?).await?;
    stack
        .create_user("vera", "viewer-password", "viewer")
        .await?;
    let rac = stack.rac_as("ssh", "vera", "viewer-password").await?;
    let err = match rac.ended(STEP).await? {
        Ok(ended) => panic!("a viewer opened a session: {ended:?}"),
        Err(e) => e,
    };
    assert_eq!(err.exit_code(), rac::EXIT_REFUSED, "{err}");
    assert!(err.to_string().contains("viewer"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_edge_ends_an_idle_tunnel() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let stack = Stack::start_with(sshd.port, free_port()?, r#", "idle_timeout": 1000"#).await?;
    let mut rac = stack.rac("ssh").await?;
    rac.session_id(STEP).await?;
    let (ok, out, err) = sshd.ssh(rac.addr.port(), "echo busy").await?;
    assert!(ok && out.trim() == "busy", "{err}");
    let addr = rac.addr;
    let ended = rac.ended(STEP).await??;
    assert!(!ended.by_us, "{ended:?}");
    assert!(ended.message().contains("idle"), "{}", ended.message());
    assert!(!port_open(addr).await);
    Ok(())
}
