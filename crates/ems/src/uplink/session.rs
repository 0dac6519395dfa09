//! One authenticated connection (spec/alwayson.md §4, §5, §12):
//!
//! 1. AUTH with the app key; the session id comes from the reply header.
//! 2. One BIND with every bound name (gateway first, gatewayType `EMSGateway`).
//! 3. The offline store is sent, oldest first, with fresh request ids and the new
//!    session id; each record is forgotten once the platform answered it.
//! 4. Then, until the connection ends: a WebSocket ping every `ping_rate` carrying
//!    the local time `HH:MM:SS` (the first right after the BIND reply), a reconnect
//!    when no pong comes within `pingpong_timeout`; platform requests dispatched
//!    (one task each, at most `max_threads` at once); edge requests sent and matched
//!    by request id (`msg_timeout`); BIND/UNBIND when the thing table changes.
//! 5. Shutdown and the duty-cycle off time UNBIND everything first.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use alwayson::{Body, Code, Gateway, Header, Limits, Message, Reassembler};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use net::tokio_tungstenite::tungstenite::Message as WsMessage;
use net::ws::ClientWs;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use super::actor::{Actor, End};
use super::{Command, Outcome, Reply, UplinkError};
use crate::config::defaults::GATEWAY_TYPE;

/// How long an UNBIND before closing may wait for its answer.
const UNBIND_WAIT: Duration = Duration::from_secs(2);

enum Pending {
    Caller(oneshot::Sender<Result<Outcome, UplinkError>>),
    Offline(u64),
    Bind,
}

struct Session {
    ws: ClientWs,
    session_id: u32,
    chunk_size: usize,
    pending: HashMap<u32, (Pending, Instant)>,
    bound: BTreeSet<String>,
    reassembler: Reassembler,
}

impl Session {
    async fn send(&mut self, msg: &Message) -> Result<(), String> {
        let frames = alwayson::split(msg, self.chunk_size).map_err(|e| e.to_string())?;
        for f in frames {
            self.ws
                .feed(WsMessage::Binary(f))
                .await
                .map_err(|e| e.to_string())?;
        }
        self.ws.flush().await.map_err(|e| e.to_string())
    }
}

impl Actor {
    pub(crate) async fn session(&mut self, ws: ClientWs) -> End {
        let limits = Limits {
            max_message_size: self.cfg.connection.max_msg_size,
            ..Limits::default()
        };
        let mut s = Session {
            ws,
            session_id: alwayson::SESSION_NONE,
            chunk_size: self.cfg.connection.message_chunk_size,
            pending: HashMap::new(),
            bound: BTreeSet::new(),
            reassembler: Reassembler::new(limits, Reassembler::DEFAULT_TIMEOUT),
        };
        let end = self.run_session(&mut s).await;
        for (_, (p, _)) in s.pending.drain() {
            if let Pending::Caller(tx) = p {
                let _ = tx.send(Err(UplinkError::ConnectionLost));
            }
        }
        end
    }

    async fn run_session(&mut self, s: &mut Session) -> End {
        let conn = self.cfg.connection.clone();

        // 1. AUTH
        let auth_id = self.uplink.next_id();
        let auth = Message::auth_app_key(auth_id, self.cfg.app_key.expose());
        if let Err(e) = s.send(&auth).await {
            return End::Lost(format!("sending AUTH: {e}"));
        }
        match self.await_auth(s, auth_id, conn.msg_timeout).await {
            Ok(session_id) => s.session_id = session_id,
            Err(end) => return end,
        }
        tracing::info!(
            session_id = format_args!("0x{:08x}", s.session_id),
            "authenticated"
        );

        // 2. BIND everything
        let gateway = self.things.gateway().map(|name| Gateway {
            name,
            kind: GATEWAY_TYPE.to_owned(),
        });
        if let Err(e) = self.sync_bindings(s, &gateway).await {
            return End::Lost(e);
        }
        // The first ping follows the BIND reply (§12.1), or msg_timeout if none comes.
        let mut first_ping_sent = false;
        let mut next_ping = if s.pending.values().any(|(p, _)| matches!(p, Pending::Bind)) {
            Instant::now() + conn.msg_timeout
        } else {
            Instant::now()
        };
        let _ = self.connected.send(true);

        // 3. Offline store, oldest first
        if let Err(e) = self.flush_store(s).await {
            return End::Lost(e);
        }

        // 4. Main loop
        let (out_tx, mut out_rx) = mpsc::channel::<Message>(conn.max_messages);
        let workers = Arc::new(Semaphore::new(conn.max_threads));
        // Platform requests accepted at once (running or waiting for a worker).
        let queue = Arc::new(Semaphore::new(conn.max_messages));
        let mut pong_deadline: Option<Instant> = None;
        let duty_off_at = conn.duty_cycle.map(|d| Instant::now() + d.on);
        loop {
            let wake = [
                Some(next_ping),
                pong_deadline,
                duty_off_at,
                s.pending.values().map(|(_, d)| *d).min(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    self.unbind_all(s, &gateway).await;
                    let _ = s.ws.close(None).await;
                    return End::Shutdown;
                }
                frame = s.ws.next() => {
                    let data = match frame {
                        Some(Ok(WsMessage::Binary(data))) => data,
                        Some(Ok(WsMessage::Pong(p))) => {
                            // Any pong proves the link; an older ping's echo too.
                            tracing::trace!(payload = %String::from_utf8_lossy(&p), "pong");
                            pong_deadline = None;
                            continue;
                        }
                        Some(Ok(WsMessage::Close(frame))) => {
                            // §12.11: no close frame back; drop TCP and reconnect at once.
                            let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                            return End::Lost(format!("server closed the connection {why}"));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return End::Lost(e.to_string()),
                        None => return End::Lost("connection closed".into()),
                    };
                    match s.reassembler.push(&data, std::time::Instant::now()) {
                        Ok(Some(msg)) => {
                            let first_bind_reply = self.on_message(s, msg, &out_tx, &workers, &queue).await;
                            if first_bind_reply && !first_ping_sent {
                                next_ping = Instant::now();
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "bad message from the platform");
                            if let Ok(h) = Header::peek(&data) {
                                if h.code.is_request() {
                                    let reply = Message::response(&h, e.response_code(), None);
                                    if let Err(e) = s.send(&reply).await {
                                        return End::Lost(e);
                                    }
                                }
                            }
                        }
                    }
                }
                Some(reply) = out_rx.recv() => {
                    if let Err(e) = s.send(&reply).await {
                        return End::Lost(e);
                    }
                }
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { return End::Shutdown };
                    if let Err(e) = self.send_request(s, cmd).await {
                        return End::Lost(e);
                    }
                }
                _ = self.things.changed() => {
                    if let Err(e) = self.sync_bindings(s, &gateway).await {
                        return End::Lost(e);
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if pong_deadline.is_some_and(|d| d <= now) {
                        return End::Lost("pong timeout".into());
                    }
                    if duty_off_at.is_some_and(|d| d <= now) {
                        self.unbind_all(s, &gateway).await;
                        let _ = s.ws.close(None).await;
                        return End::DutyOff;
                    }
                    if next_ping <= now {
                        let payload = chrono::Local::now().format("%H:%M:%S").to_string();
                        if let Err(e) = s.ws.send(WsMessage::Ping(Bytes::from(payload.into_bytes()))).await {
                            return End::Lost(e.to_string());
                        }
                        first_ping_sent = true;
                        // An unanswered earlier ping keeps its (earlier) deadline.
                        pong_deadline.get_or_insert(now + conn.pingpong_timeout);
                        next_ping = now + conn.ping_rate;
                    }
                    self.expire(s, now);
                    s.reassembler.expire(std::time::Instant::now());
                }
            }
        }
    }

    /// Waits for the AUTH reply; returns the session id.
    async fn await_auth(
        &mut self,
        s: &mut Session,
        auth_id: u32,
        timeout: Duration,
    ) -> Result<u32, End> {
        let deadline = Instant::now() + timeout;
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    let _ = s.ws.close(None).await;
                    return Err(End::Shutdown);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(End::Lost("no AUTH reply".into()));
                }
                frame = s.ws.next() => {
                    let data = match frame {
                        Some(Ok(WsMessage::Binary(d))) => d,
                        Some(Ok(WsMessage::Close(_))) | None => return Err(End::Lost("closed during AUTH".into())),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(End::Lost(e.to_string())),
                    };
                    let Ok(Some(msg)) = s.reassembler.push(&data, std::time::Instant::now()) else { continue };
                    if msg.header.request_id != auth_id || !msg.header.code.is_response() {
                        continue;
                    }
                    if msg.header.code == Code::SUCCESS {
                        return Ok(msg.header.session_id);
                    }
                    let _ = s.ws.close(None).await;
                    return Err(End::Lost(format!("AUTH refused: {}", msg.header.code)));
                }
            }
        }
    }

    /// Sends BIND for names that should be bound and are not, UNBIND for the reverse.
    async fn sync_bindings(
        &mut self,
        s: &mut Session,
        gateway: &Option<Gateway>,
    ) -> Result<(), String> {
        let want: Vec<String> = self.things.bound_names();
        let want_set: BTreeSet<String> = want.iter().cloned().collect();
        let add: Vec<String> = want.into_iter().filter(|n| !s.bound.contains(n)).collect();
        let remove: Vec<String> = s.bound.difference(&want_set).cloned().collect();
        let deadline = Instant::now() + self.cfg.connection.msg_timeout;
        if !remove.is_empty() {
            let id = self.uplink.next_id();
            tracing::info!(names = ?remove, "UNBIND");
            s.send(&Message::unbind(
                id,
                s.session_id,
                gateway.clone(),
                remove.clone(),
            ))
            .await?;
            s.pending.insert(id, (Pending::Bind, deadline));
            for n in &remove {
                s.bound.remove(n);
            }
        }
        if !add.is_empty() {
            let id = self.uplink.next_id();
            tracing::info!(names = ?add, "BIND");
            s.send(&Message::bind(
                id,
                s.session_id,
                gateway.clone(),
                add.clone(),
            ))
            .await?;
            s.pending.insert(id, (Pending::Bind, deadline));
            s.bound.extend(add);
        }
        Ok(())
    }

    /// UNBIND every bound name and wait (briefly) for the answer.
    async fn unbind_all(&mut self, s: &mut Session, gateway: &Option<Gateway>) {
        if s.bound.is_empty() {
            return;
        }
        let names: Vec<String> = s.bound.iter().cloned().collect();
        let id = self.uplink.next_id();
        tracing::info!(names = ?names, "UNBIND all");
        if s.send(&Message::unbind(id, s.session_id, gateway.clone(), names))
            .await
            .is_err()
        {
            return;
        }
        s.bound.clear();
        let _ = tokio::time::timeout(UNBIND_WAIT, async {
            while let Some(Ok(frame)) = s.ws.next().await {
                if let WsMessage::Binary(d) = frame {
                    if Header::peek(&d).is_ok_and(|h| h.request_id == id && h.code.is_response()) {
                        return;
                    }
                }
            }
        })
        .await;
    }

    /// Sends what the offline store holds, with fresh ids and this session's id.
    async fn flush_store(&mut self, s: &mut Session) -> Result<(), String> {
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || {
            store.lock().unwrap_or_else(|p| p.into_inner()).pending()
        })
        .await
        .map_err(|e| e.to_string())?;
        if stored.is_empty() {
            return Ok(());
        }
        tracing::info!(count = stored.len(), "sending offline messages");
        let limits = Limits {
            max_message_size: self.cfg.connection.max_msg_size,
            ..Limits::default()
        };
        for rec in stored {
            let mut msg = match Message::decode(&rec.bytes, &limits) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, seq = rec.seq, "unreadable offline record dropped");
                    self.ack_store(rec.seq).await;
                    continue;
                }
            };
            let id = self.uplink.next_id();
            msg.header.request_id = id;
            msg.header.session_id = s.session_id;
            s.send(&msg).await?;
            let deadline = Instant::now() + self.cfg.connection.msg_timeout;
            s.pending.insert(id, (Pending::Offline(rec.seq), deadline));
        }
        Ok(())
    }

    async fn ack_store(&self, seq: u64) {
        let store = self.store.clone();
        let done = tokio::task::spawn_blocking(move || {
            store.lock().unwrap_or_else(|p| p.into_inner()).ack(seq)
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "offline store"),
            Err(e) => tracing::error!(error = %e, "offline store task"),
        }
    }

    /// An edge request from a local caller, sent now.
    async fn send_request(&mut self, s: &mut Session, cmd: Command) -> Result<(), String> {
        if s.pending.len() >= self.cfg.connection.max_messages {
            let _ = cmd.reply.send(Err(UplinkError::Busy));
            return Ok(());
        }
        let id = self.uplink.next_id();
        let msg = Message::request(cmd.code, id, s.session_id, cmd.body);
        let size = msg.to_bytes().map(|b| b.len());
        match size {
            Err(e) => {
                let _ = cmd.reply.send(Err(UplinkError::Encode(e.to_string())));
                return Ok(());
            }
            Ok(n) if n > self.cfg.connection.max_msg_size => {
                let _ = cmd.reply.send(Err(UplinkError::Encode(format!(
                    "{n} bytes exceed ws_connection.max_msg_size"
                ))));
                return Ok(());
            }
            Ok(_) => {}
        }
        s.send(&msg).await?;
        let deadline = Instant::now() + self.cfg.connection.msg_timeout;
        s.pending.insert(id, (Pending::Caller(cmd.reply), deadline));
        Ok(())
    }

    /// Handles one whole message from the platform. Returns true for a BIND reply.
    async fn on_message(
        &mut self,
        s: &mut Session,
        msg: Message,
        out: &mpsc::Sender<Message>,
        workers: &Arc<Semaphore>,
        queue: &Arc<Semaphore>,
    ) -> bool {
        let header = msg.header;
        match msg.body {
            Body::Response(resp) => {
                let Some((pending, _)) = s.pending.remove(&header.request_id) else {
                    tracing::debug!(id = header.request_id, "answer to no pending request");
                    return false;
                };
                match pending {
                    Pending::Caller(tx) => {
                        let reply = Reply {
                            code: header.code,
                            reason: resp.reason,
                            content: resp.content,
                        };
                        let _ = tx.send(Ok(Outcome::Answered(reply)));
                    }
                    Pending::Offline(seq) => {
                        if !header.code.is_success() {
                            tracing::warn!(code = %header.code, "platform refused an offline message");
                        }
                        self.ack_store(seq).await;
                    }
                    Pending::Bind => {
                        if !header.code.is_success() {
                            tracing::warn!(code = %header.code, reason = ?resp.reason, "BIND/UNBIND refused");
                        }
                        return true;
                    }
                }
            }
            Body::Request(body) => {
                let Ok(slot) = queue.clone().try_acquire_owned() else {
                    tracing::warn!(id = header.request_id, "too many platform requests at once");
                    let busy = Message::response(&header, Code::SERVICE_UNAVAILABLE, None);
                    if let Err(e) = s.send(&busy).await {
                        tracing::debug!(error = %e, "sending 0xA3");
                    }
                    return false;
                };
                let dispatcher = self.dispatcher.clone();
                let out = out.clone();
                let workers = workers.clone();
                let span = tracing::debug_span!(
                    "platform_request",
                    id = header.request_id,
                    code = %header.code,
                    thing = %body.entity_name,
                    target = %body.target,
                );
                self.tracker.spawn(
                    async move {
                        let _slot = slot;
                        let Ok(_permit) = workers.acquire_owned().await else {
                            return;
                        };
                        let reply = dispatcher.handle(header, body).await;
                        let _ = out.send(reply).await;
                    }
                    .instrument(span),
                );
            }
            Body::KeepAlive => {
                let reply = Message::response(&header, Code::SUCCESS, None);
                let _ = out.try_send(reply);
            }
            Body::Auth(_) | Body::Bind(_) => {
                tracing::debug!(code = %header.code, "unexpected AUTH/BIND from the platform");
            }
        }
        false
    }

    /// Fails requests whose answer is overdue.
    fn expire(&mut self, s: &mut Session, now: Instant) {
        let overdue: Vec<u32> = s
            .pending
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            if let Some((p, _)) = s.pending.remove(&id) {
                match p {
                    Pending::Caller(tx) => {
                        let _ = tx.send(Err(UplinkError::Timeout));
                    }
                    // Stays in the store: sent again after the next authentication.
                    Pending::Offline(seq) => tracing::warn!(seq, "no answer to an offline message"),
                    Pending::Bind => tracing::warn!(id, "no answer to BIND/UNBIND"),
                }
            }
        }
    }
}
