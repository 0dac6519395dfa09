//! An AlwaysOn edge with permessage-deflate through the connection server: Python's
//! `websockets` (an independent implementation) offers the extension like the C SDK, then
//! AUTH and BIND go through compressed, and a large platform → edge message comes back
//! compressed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use alwayson::{Code, Limits, Message};
use anyhow::{Context, Result, bail};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(20);

struct PyEdge {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

impl PyEdge {
    async fn start(cx: &Cx) -> Result<PyEdge> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deflate_edge.py");
        let url = format!("wss://127.0.0.1:{}/Thingworx/WS", cx.edge_addr.port());
        let mut child = Command::new(python())
            .args([script, &url, EDGE_KEY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("python3 runs")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(PyEdge {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn line(&mut self, prefix: &str) -> Result<Vec<String>> {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .context("python edge silent")??
            .context("python edge ended")?;
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if words.first().map(String::as_str) != Some(prefix) {
            bail!("expected {prefix}, got {line}");
        }
        Ok(words[1..].to_vec())
    }

    async fn command(&mut self, cmd: &str) -> Result<()> {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn send(&mut self, m: &Message) -> Result<()> {
        let hex: String = m.to_bytes()?.iter().map(|b| format!("{b:02x}")).collect();
        self.command(&format!("send {hex}")).await
    }

    async fn recv(&mut self) -> Result<Vec<u8>> {
        self.command("recv").await?;
        let hex = self.line("got").await?.pop().unwrap_or_default();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).context("hex"))
            .collect()
    }

    async fn stats(&mut self) -> Result<[u64; 4]> {
        self.command("stats").await?;
        let w = self.line("stats").await?;
        let n: Vec<u64> = w.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
        Ok([n[0], n[1], n[2], n[3]])
    }
}

#[tokio::test]
async fn compressing_edge_authenticates_binds_and_receives() -> Result<()> {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |c| c.edge.compression = true).await;
    cx.wait_links_up(2).await?;
    let mut edge = PyEdge::start(&cx).await?;
    // Accepted with the server's window reset per message (the default), the client's kept:
    // the C SDK refuses compression when `client_no_context_takeover` is answered.
    assert_eq!(edge.line("ext").await?, ["permessage-deflate", "1", "0"]);

    edge.send(&Message::auth_app_key(3, EDGE_KEY)).await?;
    let auth = Message::decode(&edge.recv().await?, &Limits::default())?;
    assert_eq!(auth.header.code, Code::SUCCESS, "{auth:?}");
    let session = auth.header.session_id;
    edge.send(&Message::bind(
        4,
        session,
        None,
        vec!["Squeezed".to_owned()],
    ))
    .await?;
    let bind = Message::decode(&edge.recv().await?, &Limits::default())?;
    assert_eq!(bind.header.code, Code::SUCCESS, "{bind:?}");
    assert!(platform.bound("Squeezed").is_some());

    // Platform → edge, large and compressible: arrives intact and compressed.
    let name = "Temperature=21.5;Pressure=1013;".repeat(200);
    let down = Message::request(Code::PUT, 77, 0, get_property("Squeezed", &name));
    let sent = down.to_bytes()?;
    platform.send_frames("Squeezed", vec![sent.clone()])?;
    let got = edge.recv().await?;
    assert_eq!(got.len(), sent.len());
    assert_eq!(got[14..], sent[14..], "body intact");
    let decoded = Message::decode(&got, &Limits::default())?;
    assert_eq!(decoded.header.session_id, session);

    let [in_frames, in_bytes, out_frames, _out_bytes] = edge.stats().await?;
    assert_eq!(out_frames, 2, "AUTH and BIND went out compressed");
    assert!(in_frames >= 1, "the large message came compressed");
    assert!(
        in_bytes * 10 < sent.len() as u64,
        "{in_bytes} wire bytes for a {}-byte message",
        sent.len()
    );
    edge.command("close").await?;
    let status = tokio::time::timeout(WAIT, edge.child.wait()).await??;
    assert!(status.success());
    Ok(())
}

#[tokio::test]
async fn compression_off_declines_and_still_works() -> Result<()> {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |c| c.edge.compression = false).await;
    cx.wait_links_up(2).await?;
    let mut edge = PyEdge::start(&cx).await?;
    assert_eq!(edge.line("ext").await?, ["none", "0", "0"]);
    edge.send(&Message::auth_app_key(3, EDGE_KEY)).await?;
    let auth = Message::decode(&edge.recv().await?, &Limits::default())?;
    assert_eq!(auth.header.code, Code::SUCCESS);
    edge.command("close").await?;
    tokio::time::timeout(WAIT, edge.child.wait()).await??;
    // The tungstenite test edge (no offer) is unaffected by compression being on.
    let cx_on = spawn_cx(&platform, |c| c.edge.compression = true).await;
    cx_on.wait_links_up(2).await?;
    let _edge = Edge::connect_bound(&cx_on, &["Plain1"]).await?;
    Ok(())
}
