//! Broker counters, rendered in the Prometheus text format for the
//! platform's `/metrics` (prefix `tether_platform_tunnel_`, no per-thing
//! labels).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::session::{State, lock};

/// Counters shared by every session.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub sessions_created: AtomicU64,
    /// DATA payload bytes sent by each side ([`crate::Side::idx`]).
    pub bytes: [AtomicU64; 2],
    pub streams_opened: AtomicU64,
    pub attaches_refused: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub ended: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub(crate) fn session_ended(&self, reason: &'static str) {
        *lock(&self.ended).entry(reason).or_insert(0) += 1;
    }

    /// Render with the current per-state session counts.
    pub(crate) fn render(&self, states: &[(State, u64)]) -> String {
        let mut out = String::new();
        let p = "tether_platform_tunnel";
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {p}_sessions Sessions that have not ended, by state.\n# TYPE {p}_sessions gauge"
        );
        for (state, n) in states {
            let s = match state {
                State::Pending => "pending",
                State::Half => "half",
                State::Active => "active",
                State::Ended => "ended",
            };
            let _ = writeln!(out, "{p}_sessions{{state=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP {p}_sessions_created_total Sessions created.\n# TYPE {p}_sessions_created_total counter\n{p}_sessions_created_total {}",
            get(&self.sessions_created)
        );
        let _ = writeln!(
            out,
            "# HELP {p}_sessions_ended_total Sessions ended, by reason.\n# TYPE {p}_sessions_ended_total counter"
        );
        for (reason, n) in lock(&self.ended).iter() {
            let _ = writeln!(out, "{p}_sessions_ended_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP {p}_bytes_total DATA payload bytes forwarded.\n# TYPE {p}_bytes_total counter\n{p}_bytes_total{{direction=\"client_to_server\"}} {}\n{p}_bytes_total{{direction=\"server_to_client\"}} {}",
            get(&self.bytes[0]),
            get(&self.bytes[1])
        );
        let _ = writeln!(
            out,
            "# HELP {p}_streams_opened_total Streams opened.\n# TYPE {p}_streams_opened_total counter\n{p}_streams_opened_total {}",
            get(&self.streams_opened)
        );
        let _ = writeln!(
            out,
            "# HELP {p}_attaches_refused_total Attaches refused (bad, reused or expired token).\n# TYPE {p}_attaches_refused_total counter\n{p}_attaches_refused_total {}",
            get(&self.attaches_refused)
        );
        let _ = writeln!(
            out,
            "# HELP {p}_protocol_errors_total Sessions ended by a protocol error.\n# TYPE {p}_protocol_errors_total counter\n{p}_protocol_errors_total {}",
            get(&self.protocol_errors)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.sessions_created.fetch_add(2, Ordering::Relaxed);
        m.bytes[1].fetch_add(7, Ordering::Relaxed);
        m.session_ended("idle_timeout");
        let text = m.render(&[(State::Active, 1)]);
        assert!(text.contains("tether_platform_tunnel_sessions_created_total 2\n"));
        assert!(text.contains("tether_platform_tunnel_sessions{state=\"active\"} 1\n"));
        assert!(
            text.contains("tether_platform_tunnel_bytes_total{direction=\"server_to_client\"} 7\n")
        );
        assert!(
            text.contains(
                "tether_platform_tunnel_sessions_ended_total{reason=\"idle_timeout\"} 1\n"
            )
        );
    }
}
