//! `StartTunnel` passes through the connection server: the platform tells the
//! edge where to attach its tunnel (`server_url`, a
//! `wss://…/remote-access/v1/sessions/<sid>/server` URL on the platform), but an
//! edge behind a connection server may only reach the connection server. So in
//! platform → edge `StartTunnel` requests the URL's origin is replaced by the
//! connection server's own edge address; the tunnel relay then carries the
//! websocket to the same path on the platform (docs/cxserver.md, "Tunnels pass
//! through").

use alwayson::{Body, Code, Limits, Message, Primitive};
use bytes::Bytes;

/// The service whose parameters carry the tunnel URL.
const START_TUNNEL: &[u8] = b"StartTunnel";
/// The parameter rewritten.
const SERVER_URL: &str = "server_url";
/// Paths the connection server relays (native tunnels).
const NATIVE_PREFIX: &str = "/remote-access/v1/sessions/";

/// If `frame` is a whole (not chunked) `POST …/Services/StartTunnel` whose
/// `server_url` is a native tunnel URL, returns the frame re-encoded with the
/// URL's origin replaced by `wss://<origin>`; otherwise `None` (the frame is
/// relayed as is). Only frames that contain the bytes `StartTunnel` are decoded.
pub(crate) fn rewrite_start_tunnel(frame: &[u8], origin: &str) -> Option<Bytes> {
    if frame.get(1) != Some(&Code::POST.0)
        || frame.get(alwayson::HEADER_LEN - 1) != Some(&0)
        || !frame.windows(START_TUNNEL.len()).any(|w| w == START_TUNNEL)
    {
        return None;
    }
    let mut msg = Message::decode(frame, &Limits::default()).ok()?;
    let Body::Request(req) = &mut msg.body else {
        return None;
    };
    if req.target != "StartTunnel" {
        return None;
    }
    let params = req.params.as_mut()?;
    let col = params
        .shape
        .fields
        .iter()
        .position(|f| f.name == SERVER_URL)?;
    let cell = params.rows.first_mut()?.get_mut(col)?;
    let Primitive::String(url) = cell else {
        return None;
    };
    let parsed = url::Url::parse(url).ok()?;
    if !parsed.path().starts_with(NATIVE_PREFIX) {
        return None;
    }
    let mut rewritten = format!("wss://{origin}{}", parsed.path());
    if let Some(q) = parsed.query() {
        rewritten.push('?');
        rewritten.push_str(q);
    }
    *url = rewritten;
    msg.to_bytes().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alwayson::{Characteristic, EntityType, InfoTable, RequestBody};

    use super::*;

    fn start_tunnel(url: &str) -> Message {
        let params = InfoTable::single_row([
            ("tid", Primitive::String("abc".into())),
            ("server_url", Primitive::String(url.into())),
            ("server_token", Primitive::String("secret".into())),
        ]);
        let body = RequestBody::new(
            EntityType::THING,
            "Pump1",
            Characteristic::SERVICES,
            "StartTunnel",
        )
        .with_params(params);
        let mut m = Message::request(Code::POST, 9, 77, body);
        m.header.endpoint_id = 5;
        m
    }

    #[test]
    fn server_url_origin_is_replaced_and_the_rest_kept() {
        let m = start_tunnel("wss://platform.example:8443/remote-access/v1/sessions/s1/server");
        let out = rewrite_start_tunnel(&m.to_bytes().unwrap(), "10.0.0.9:9443").unwrap();
        let back = Message::decode(&out, &Limits::default()).unwrap();
        assert_eq!(back.header, m.header);
        let Body::Request(req) = back.body else {
            panic!()
        };
        let p = req.params.unwrap();
        assert_eq!(
            p.value("server_url"),
            Some(&Primitive::String(
                "wss://10.0.0.9:9443/remote-access/v1/sessions/s1/server".into()
            ))
        );
        assert_eq!(
            p.value("server_token"),
            Some(&Primitive::String("secret".into()))
        );
    }

    #[test]
    fn other_messages_are_left_alone() {
        // Not a native tunnel path.
        let m = start_tunnel("wss://platform.example/elsewhere");
        assert!(rewrite_start_tunnel(&m.to_bytes().unwrap(), "x:1").is_none());
        // Another service.
        let body = RequestBody::new(
            EntityType::THING,
            "StartTunnel",
            Characteristic::SERVICES,
            "Other",
        );
        let m = Message::request(Code::POST, 1, 1, body);
        assert!(rewrite_start_tunnel(&m.to_bytes().unwrap(), "x:1").is_none());
        // Garbage never panics.
        assert!(rewrite_start_tunnel(b"\x01\x03StartTunnel", "x:1").is_none());
        assert!(rewrite_start_tunnel(&[], "x:1").is_none());
    }
}
