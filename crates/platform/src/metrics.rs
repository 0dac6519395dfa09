//! Prometheus metrics, prefix `tether_platform_`, base units, `_total` on
//! counters, no per-thing labels.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every metric the platform exports.
pub struct Metrics {
    registry: Registry,
    pub edge_connections: Gauge,
    pub edge_connections_accepted: Counter,
    pub auth_failures: Counter,
    pub auth_successes: Counter,
    pub bound_things: Gauge,
    pub binds: Counter,
    pub bind_rejections: Counter,
    pub edge_requests: Counter,
    pub edge_request_timeouts: Counter,
    pub edge_request_seconds: Histogram,
    pub property_updates: Counter,
    pub protocol_errors: Counter,
    pub http_requests: Counter,
    /// Authenticated connection-server links open.
    pub links: Gauge,
    /// Connection-server links authenticated since start.
    pub links_opened: Counter,
    /// Authenticated virtual edges on links (also counted in `edge_connections`).
    pub virtual_edges: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers all metrics.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tether_platform");
        let m = Metrics {
            edge_connections: Gauge::default(),
            edge_connections_accepted: Counter::default(),
            auth_failures: Counter::default(),
            auth_successes: Counter::default(),
            bound_things: Gauge::default(),
            binds: Counter::default(),
            bind_rejections: Counter::default(),
            edge_requests: Counter::default(),
            edge_request_timeouts: Counter::default(),
            edge_request_seconds: Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
            ]),
            property_updates: Counter::default(),
            protocol_errors: Counter::default(),
            http_requests: Counter::default(),
            links: Gauge::default(),
            links_opened: Counter::default(),
            virtual_edges: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "edge_connections",
            "Authenticated AlwaysOn sockets open",
            m.edge_connections.clone(),
        );
        registry.register(
            "edge_connections_accepted",
            "AlwaysOn websocket upgrades accepted",
            m.edge_connections_accepted.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed authentications (AlwaysOn and HTTP)",
            m.auth_failures.clone(),
        );
        registry.register(
            "auth_successes",
            "Successful AlwaysOn authentications",
            m.auth_successes.clone(),
        );
        registry.register(
            "bound_things",
            "Things bound to an edge socket",
            m.bound_things.clone(),
        );
        registry.register("binds", "Things bound", m.binds.clone());
        registry.register(
            "bind_rejections",
            "Thing binds refused",
            m.bind_rejections.clone(),
        );
        registry.register(
            "edge_requests",
            "Platform to edge requests sent",
            m.edge_requests.clone(),
        );
        registry.register(
            "edge_request_timeouts",
            "Platform to edge requests that timed out",
            m.edge_request_timeouts.clone(),
        );
        registry.register(
            "edge_request_duration_seconds",
            "Platform to edge request round trip",
            m.edge_request_seconds.clone(),
        );
        registry.register(
            "property_updates",
            "Property values received from edges",
            m.property_updates.clone(),
        );
        registry.register(
            "protocol_errors",
            "Malformed or refused AlwaysOn messages",
            m.protocol_errors.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served",
            m.http_requests.clone(),
        );
        registry.register(
            "links",
            "Authenticated connection-server links open",
            m.links.clone(),
        );
        registry.register(
            "links_opened",
            "Connection-server links authenticated",
            m.links_opened.clone(),
        );
        registry.register(
            "virtual_edges",
            "Authenticated edges behind connection-server links (part of edge_connections)",
            m.virtual_edges.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_have_prefix_and_total() {
        let m = super::Metrics::new();
        m.auth_failures.inc();
        let text = m.render();
        assert!(
            text.contains("tether_platform_auth_failures_total 1"),
            "{text}"
        );
        assert!(
            text.contains("tether_platform_edge_connections 0"),
            "{text}"
        );
        for line in [
            "tether_platform_links 0",
            "tether_platform_links_opened_total 0",
            "tether_platform_virtual_edges 0",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }
}
