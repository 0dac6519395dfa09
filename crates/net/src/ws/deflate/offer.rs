//! Negotiation of permessage-deflate (RFC 7692 §5, §7.1): parse the client's
//! `Sec-WebSocket-Extensions` offers, pick the first one this server can
//! honour, and write the response parameters.

use super::DeflateConfig;

/// The extension token.
pub(crate) const NAME: &str = "permessage-deflate";
/// Longest header text looked at; longer offers are declined.
const MAX_OFFER_LEN: usize = 4096;

/// The parameters agreed for one connection (the server's view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses every message on its own (no LZ77 window carried
    /// from one message to the next).
    pub server_no_context_takeover: bool,
    /// The client promised to compress every message on its own; the server
    /// then frees its inflate state between messages.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits` echoed in the response (only 15 is accepted:
    /// the rust deflate backend always uses a 32 KiB window).
    pub server_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` response value for these parameters.
    pub fn response_value(&self) -> String {
        let mut v = String::from(NAME);
        if self.server_no_context_takeover {
            v.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            v.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            v.push_str("; server_max_window_bits=");
            v.push_str(&bits.to_string());
        }
        v
    }
}

/// One offered extension: name and parameters (value without quotes).
#[derive(Debug, PartialEq, Eq)]
struct Offer {
    name: String,
    params: Vec<(String, Option<String>)>,
}

/// Splits `text` at `sep` outside double quotes.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if !escaped && c == '\\' {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out
        }
        None => v.to_owned(),
    }
}

/// Parses the (comma-joined) header values into offers, in order.
fn parse(text: &str) -> Vec<Offer> {
    let mut offers = Vec::new();
    for ext in split_outside_quotes(text, ',') {
        let mut pieces = split_outside_quotes(ext, ';').into_iter();
        let name = pieces.next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        let params = pieces
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(unquote(v))),
                None => (p.trim().to_ascii_lowercase(), None),
            })
            .collect();
        offers.push(Offer {
            name: name.to_ascii_lowercase(),
            params,
        });
    }
    offers
}

fn window_bits(v: &str) -> Option<u8> {
    // RFC 7692 §7.1.2: 1*DIGIT without leading zeros, 8..=15.
    if v.starts_with('0') {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

/// Decides on one permessage-deflate offer: `None` if it must be declined.
fn accept_one(offer: &Offer, cfg: &DeflateConfig) -> Option<DeflateParams> {
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits: Option<u8> = None;
    let mut client_bits_seen = false;
    let mut seen: Vec<&str> = Vec::with_capacity(4);
    for (key, value) in &offer.params {
        if seen.contains(&key.as_str()) {
            return None; // §7: a duplicate parameter makes the offer invalid
        }
        seen.push(key);
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => server_nct = true,
            ("client_no_context_takeover", None) => client_nct = true,
            ("server_max_window_bits", Some(v)) => server_bits = Some(window_bits(v)?),
            ("client_max_window_bits", None) => client_bits_seen = true,
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
                client_bits_seen = true;
            }
            _ => return None,
        }
    }
    // The client may limit the client window; the inflater always keeps a
    // 32 KiB window, which decodes any smaller one, so nothing is answered.
    let _ = client_bits_seen;
    match server_bits {
        // The rust backend cannot shrink its LZ77 window below 32 KiB.
        Some(b) if b < 15 => return None,
        _ => {}
    }
    Some(DeflateParams {
        server_no_context_takeover: server_nct || !cfg.server_context_takeover,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
    })
}

/// Picks the first acceptable permessage-deflate offer in the request's
/// `Sec-WebSocket-Extensions` values (several header lines are joined).
pub(crate) fn negotiate<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    cfg: &DeflateConfig,
) -> Option<DeflateParams> {
    let mut text = String::new();
    for v in values {
        let v = std::str::from_utf8(v).ok()?;
        if text.len() + v.len() + 1 > MAX_OFFER_LEN {
            return None;
        }
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(v);
    }
    parse(&text)
        .iter()
        .filter(|o| o.name == NAME)
        .find_map(|o| accept_one(o, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(h: &str, takeover: bool) -> Option<DeflateParams> {
        let cfg = DeflateConfig {
            server_context_takeover: takeover,
            ..DeflateConfig::default()
        };
        negotiate(std::iter::once(h.as_bytes()), &cfg)
    }

    #[test]
    fn browser_and_python_offer() {
        let p = neg("permessage-deflate; client_max_window_bits", true).unwrap();
        assert_eq!(p.response_value(), "permessage-deflate");
        let p = neg("permessage-deflate; client_max_window_bits", false).unwrap();
        assert_eq!(
            p.response_value(),
            "permessage-deflate; server_no_context_takeover"
        );
    }

    #[test]
    fn c_sdk_offer_keeps_client_context() {
        let p = neg("permessage-deflate", false).unwrap();
        assert!(!p.client_no_context_takeover);
        assert!(!p.response_value().contains("client_no_context_takeover"));
    }

    #[test]
    fn parameters_echoed() {
        let p = neg(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=\"15\"",
            true,
        )
        .unwrap();
        assert_eq!(
            p.response_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15"
        );
    }

    #[test]
    fn falls_back_to_next_offer() {
        let p = neg(
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits=9",
            true,
        )
        .unwrap();
        assert_eq!(p.server_max_window_bits, None);
        assert!(!p.server_no_context_takeover);
    }

    #[test]
    fn invalid_offers_declined() {
        for h in [
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=08",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; bogus",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "deflate-frame",
            "",
        ] {
            assert_eq!(neg(h, true), None, "{h}");
        }
    }

    #[test]
    fn several_header_lines() {
        let cfg = DeflateConfig::default();
        let lines: [&[u8]; 2] = [b"foo; a=\"x,y\"", b"permessage-deflate"];
        assert!(negotiate(lines.into_iter(), &cfg).is_some());
        let long = "x".repeat(MAX_OFFER_LEN);
        let lines: [&[u8]; 2] = [long.as_bytes(), b"permessage-deflate"];
        assert_eq!(negotiate(lines.into_iter(), &cfg), None);
    }
}
