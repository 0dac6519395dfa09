//! Desktop notifications over D-Bus (`org.freedesktop.Notifications`),
//! best effort: a dedicated thread sends them; failures are logged.

use std::collections::HashMap;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tracing::{debug, warn};

/// Notifications queued before new ones are dropped.
pub const QUEUE: usize = 16;

/// Sends notifications from a background thread.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: SyncSender<(String, String)>,
}

impl Notifier {
    /// Start the sender thread (it connects to the session bus lazily and
    /// retries on the next notification after a failure).
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<(String, String)>(QUEUE);
        std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || {
                let mut conn: Option<zbus::blocking::Connection> = None;
                for (summary, body) in rx {
                    if conn.is_none() {
                        match zbus::blocking::Connection::session() {
                            Ok(c) => conn = Some(c),
                            Err(e) => {
                                warn!(error = %e, "no D-Bus session bus; notification dropped");
                                continue;
                            }
                        }
                    }
                    if let Some(c) = &conn
                        && let Err(e) = send(c, &summary, &body)
                    {
                        warn!(error = %e, "notification failed");
                        conn = None;
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Queue a notification; never blocks.
    pub fn notify(&self, summary: &str, body: &str) {
        match self.tx.try_send((summary.to_owned(), body.to_owned())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => debug!("notification queue full; dropped"),
            Err(TrySendError::Disconnected(_)) => warn!("notifier thread gone"),
        }
    }
}

fn send(c: &zbus::blocking::Connection, summary: &str, body: &str) -> zbus::Result<()> {
    let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    c.call_method(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        Some("org.freedesktop.Notifications"),
        "Notify",
        &(
            "Tether",
            0u32,
            "network-vpn",
            summary,
            body,
            Vec::<&str>::new(),
            hints,
            8000i32,
        ),
    )?;
    Ok(())
}
