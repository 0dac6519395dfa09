//! The broker's HELLO. Each side uses the minimum of its own HELLO and the
//! one it receives, so both sides must receive the same values, at most
//! what either offered (docs/protocol-tunnel.md, "HELLO through the
//! broker"). The broker therefore waits for both sides' HELLOs (or, with a
//! legacy edge, for the client's) and then sends min(client, server,
//! broker) to both. Until then the first side hears PINGs and PONGs only,
//! and its OPENs wait in its own mux.

use tunnel::{Frame, Hello, PROTOCOL_VERSION};

use crate::relay::{Out, Queues};
use crate::session::{Shared, Side, lock};

/// What is known so far.
#[derive(Debug, Default)]
pub(crate) struct Hellos {
    /// Window and payload each side offered.
    offered: [Option<(u32, u32)>; 2],
    /// The server side is a legacy edge (it sends no HELLO, gets none).
    legacy_server: bool,
    sent: bool,
}

/// Record `side`'s HELLO and send the broker's if both are known.
pub(crate) fn offered(
    shared: &Shared,
    side: Side,
    hello: &Hello,
    broker: (u32, u32),
    queues: [&Queues; 2],
) {
    lock(&shared.hellos).offered[side.idx()] = Some((hello.initial_window, hello.max_payload));
    maybe_send(shared, broker, queues);
}

/// The server side is a legacy edge: only the client's HELLO is awaited.
pub(crate) fn legacy_server(shared: &Shared, broker: (u32, u32), queues: [&Queues; 2]) {
    lock(&shared.hellos).legacy_server = true;
    maybe_send(shared, broker, queues);
}

fn maybe_send(shared: &Shared, broker: (u32, u32), queues: [&Queues; 2]) {
    let values = {
        let mut h = lock(&shared.hellos);
        let client = h.offered[Side::Client.idx()];
        let server = h.offered[Side::Server.idx()];
        let ready = !h.sent && client.is_some() && (server.is_some() || h.legacy_server);
        if !ready {
            return;
        }
        h.sent = true;
        let (mut window, mut payload) = broker;
        for (w, p) in [client, server].into_iter().flatten() {
            window = window.min(w);
            payload = payload.min(p);
        }
        (window, payload, h.legacy_server)
    };
    let (window, payload, legacy) = values;
    lock(&shared.streams).set_window(window);
    let frame = Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        initial_window: window,
        max_payload: payload,
        capabilities: 0,
    })
    .to_bytes();
    for side in [Side::Client, Side::Server] {
        if side == Side::Server && legacy {
            continue;
        }
        // The control queue is nearly empty this early; a full one means
        // the side is not reading and will time out anyway.
        if queues[side.idx()]
            .ctrl
            .try_send(Out::Frame(frame.clone()))
            .is_err()
        {
            tracing::warn!(%side, "HELLO could not be queued");
        }
    }
}
