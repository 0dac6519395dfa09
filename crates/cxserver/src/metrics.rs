//! Prometheus metrics (`tether_cx_` prefix, base units, `_total` on counters, no per-thing
//! labels). Handles are cloned out of the families once so the hot path is an atomic add.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

type Label = [(&'static str, &'static str); 1];

/// One direction of traffic.
#[derive(Clone, Debug)]
pub struct Flow {
    /// Messages (websocket data messages).
    pub messages: Counter,
    /// Payload bytes.
    pub bytes: Counter,
}

impl Flow {
    /// Counts one message of `len` bytes.
    pub fn count(&self, len: usize) {
        self.messages.inc();
        self.bytes.inc_by(len as u64);
    }
}

/// Every metric of the connection server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open AlwaysOn edge websockets.
    pub connections: Gauge,
    /// Edge websockets accepted since start.
    pub connections_opened: Counter,
    /// Edge sockets authenticated by the platform and still open.
    pub authenticated: Gauge,
    /// Things currently bound through this server.
    pub binds: Gauge,
    /// AUTH refused by the platform, plus AUTH never sent in time.
    pub auth_failures: Counter,
    /// Sockets closed because no AUTH arrived in time.
    pub auth_timeouts: Counter,
    /// Sockets closed by the idle timeout.
    pub idle_timeouts: Counter,
    /// Edge → platform traffic.
    pub to_platform: Flow,
    /// Platform → edge traffic.
    pub to_edge: Flow,
    /// Latency of platform → edge requests (until the edge answered).
    pub latency_platform_to_edge: Histogram,
    /// Latency of edge → platform requests (until the platform answered).
    pub latency_edge_to_platform: Histogram,
    /// Upstream links currently authenticated.
    pub links_up: Gauge,
    /// Upstream (re)connect attempts that failed.
    pub link_failures: Counter,
    /// Open tunnel relays.
    pub tunnels: Gauge,
    /// Tunnel relays opened since start.
    pub tunnels_opened: Counter,
    /// Tunnel bytes edge/client → platform.
    pub tunnel_bytes_up: Counter,
    /// Tunnel bytes platform → edge/client.
    pub tunnel_bytes_down: Counter,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tether_cx");
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Open AlwaysOn edge websockets",
            connections.clone(),
        );
        let connections_opened = Counter::default();
        registry.register(
            "connections_opened",
            "Edge websockets accepted",
            connections_opened.clone(),
        );
        let authenticated = Gauge::default();
        registry.register(
            "authenticated",
            "Edge sockets authenticated by the platform",
            authenticated.clone(),
        );
        let binds = Gauge::default();
        registry.register("binds", "Things bound through this server", binds.clone());
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Edge AUTH refused or not sent in time",
            auth_failures.clone(),
        );
        let auth_timeouts = Counter::default();
        registry.register(
            "auth_timeouts",
            "Edge sockets closed for not sending AUTH in time",
            auth_timeouts.clone(),
        );
        let idle_timeouts = Counter::default();
        registry.register(
            "idle_timeouts",
            "Edge sockets closed by the idle timeout",
            idle_timeouts.clone(),
        );

        let messages = Family::<Label, Counter>::default();
        registry.register("messages", "AlwaysOn messages relayed", messages.clone());
        let bytes = Family::<Label, Counter>::default();
        registry.register_with_unit(
            "relayed",
            "AlwaysOn bytes relayed",
            Unit::Bytes,
            bytes.clone(),
        );
        let flow = |d: &'static str| Flow {
            messages: messages.get_or_create(&[("direction", d)]).clone(),
            bytes: bytes.get_or_create(&[("direction", d)]).clone(),
        };
        let to_platform = flow("to_platform");
        let to_edge = flow("to_edge");

        let latency =
            Family::<Label, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register_with_unit(
            "request_duration",
            "Time from forwarding a request to relaying its response",
            Unit::Seconds,
            latency.clone(),
        );
        let latency_platform_to_edge = latency
            .get_or_create(&[("direction", "platform_to_edge")])
            .clone();
        let latency_edge_to_platform = latency
            .get_or_create(&[("direction", "edge_to_platform")])
            .clone();

        let links_up = Gauge::default();
        registry.register(
            "links_up",
            "Upstream links to the platform that are authenticated",
            links_up.clone(),
        );
        let link_failures = Counter::default();
        registry.register(
            "link_failures",
            "Upstream link attempts or links that failed",
            link_failures.clone(),
        );
        let tunnels = Gauge::default();
        registry.register("tunnels", "Open tunnel relays", tunnels.clone());
        let tunnels_opened = Counter::default();
        registry.register(
            "tunnels_opened",
            "Tunnel relays opened",
            tunnels_opened.clone(),
        );
        let tunnel_bytes = Family::<Label, Counter>::default();
        registry.register_with_unit(
            "tunnel",
            "Tunnel payload bytes relayed",
            Unit::Bytes,
            tunnel_bytes.clone(),
        );
        let tunnel_bytes_up = tunnel_bytes
            .get_or_create(&[("direction", "to_platform")])
            .clone();
        let tunnel_bytes_down = tunnel_bytes
            .get_or_create(&[("direction", "from_platform")])
            .clone();

        Metrics {
            registry,
            connections,
            connections_opened,
            authenticated,
            binds,
            auth_failures,
            auth_timeouts,
            idle_timeouts,
            to_platform,
            to_edge,
            latency_platform_to_edge,
            latency_edge_to_platform,
            links_up,
            link_failures,
            tunnels,
            tunnels_opened,
            tunnel_bytes_up,
            tunnel_bytes_down,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        if encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_names() {
        let m = Metrics::new();
        m.to_platform.count(10);
        m.latency_platform_to_edge.observe(0.002);
        let text = m.render();
        assert!(
            text.contains("tether_cx_messages_total{direction=\"to_platform\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tether_cx_relayed_bytes_total{direction=\"to_platform\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("tether_cx_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("tether_cx_connections 0"), "{text}");
    }
}
