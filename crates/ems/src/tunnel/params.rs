//! `StartTunnel` parameters (spec/alwayson.md §8.1 plus Tether's native
//! `server_url` and `server_token`), read leniently as ThingWorx sends them:
//! numbers may come as INTEGER, LONG or NUMBER, `connection` is JSON text.

use std::time::Duration;

use alwayson::{InfoTable, Primitive};

use crate::secret::Secret;

/// Longest `tid` accepted.
const MAX_TID: usize = 128;
/// Longest server URL accepted.
const MAX_URL: usize = 2048;

/// Where and how the native side attaches.
#[derive(Debug, Clone)]
pub(crate) struct Native {
    /// `wss://.../remote-access/v1/sessions/<id>/server`.
    pub url: String,
    /// The single-use server token (never logged: [`Secret`] prints `***`).
    pub token: Secret,
}

/// A parsed `StartTunnel`.
#[derive(Debug, Clone)]
pub(crate) struct StartParams {
    pub tid: String,
    pub host: String,
    pub port: u16,
    pub idle_timeout: Duration,
    pub max_payload: u32,
    /// Legacy `chunksize`: bytes per text frame before base64 (incl. the
    /// 16 the C SDK reserves). None = `tunnel.buffer_size`.
    pub chunksize: Option<usize>,
    /// Legacy `read_timeout` (ms), None when absent.
    pub read_timeout: Option<Duration>,
    /// Legacy `connection.num_connects`: CONNECTs allowed; None = no limit
    /// (absent, or zero / negative).
    pub num_connects: Option<u32>,
    pub native: Option<Native>,
}

fn cell<'a>(t: Option<&'a InfoTable>, name: &str) -> Option<&'a Primitive> {
    let p = t?.value(name)?;
    match p {
        Primitive::Variant(inner) => Some(inner),
        other => Some(other),
    }
}

/// A string parameter (STRING or TEXT), if present and non-empty.
pub(crate) fn string(t: Option<&InfoTable>, name: &str) -> Option<String> {
    match cell(t, name)? {
        Primitive::String(s) | Primitive::Text(_, s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// An integer parameter (INTEGER, LONG, or a whole NUMBER).
fn integer(t: Option<&InfoTable>, name: &str) -> Option<i64> {
    match cell(t, name)? {
        Primitive::Integer(i) => Some(i64::from(*i)),
        Primitive::Long(l) => Some(*l),
        Primitive::Number(n) if n.is_finite() && n.fract() == 0.0 => Some(*n as i64),
        Primitive::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl StartParams {
    /// Parse and check; the error is shown to the platform.
    pub fn parse(t: Option<&InfoTable>) -> Result<Self, String> {
        let tid = string(t, "tid").ok_or("StartTunnel needs tid")?;
        if tid.len() > MAX_TID || tid.chars().any(|c| c.is_control() || c == '/') {
            return Err("StartTunnel: bad tid".to_owned());
        }
        let kind = string(t, "type").unwrap_or_else(|| "tcp".to_owned());
        if kind != "tcp" {
            return Err(format!(
                "StartTunnel: tunnel type {kind:?} is not supported (tcp only)"
            ));
        }
        let connection = string(t, "connection").ok_or("StartTunnel needs connection")?;
        let c: serde_json::Value = serde_json::from_str(&connection)
            .map_err(|e| format!("StartTunnel: connection is not JSON: {e}"))?;
        let host = c
            .get("host")
            .and_then(|h| h.as_str())
            .filter(|h| !h.is_empty() && h.len() <= 253)
            .ok_or("StartTunnel: connection.host missing")?
            .to_owned();
        let port = c
            .get("port")
            .and_then(|p| {
                p.as_u64()
                    .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or("StartTunnel: connection.port missing or out of range")?;
        let num_connects = c
            .get("num_connects")
            .and_then(|n| {
                n.as_i64()
                    .or_else(|| n.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .filter(|n| *n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let chunksize = integer(t, "chunksize")
            .filter(|c| *c > 0)
            .map(|c| usize::try_from(c).unwrap_or(usize::MAX));
        let read_timeout = integer(t, "read_timeout")
            .filter(|r| *r > 0)
            .map(|r| Duration::from_millis(r.unsigned_abs().min(600_000)));
        let idle_ms = integer(t, "idle_timeout")
            .unwrap_or(30_000)
            .clamp(1_000, 86_400_000);
        let max_payload = integer(t, "max_payload")
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(tunnel::DEFAULT_MAX_PAYLOAD);
        let native = match (string(t, "server_url"), string(t, "server_token")) {
            (Some(url), Some(token)) => {
                if url.len() > MAX_URL || !(url.starts_with("wss://") || url.starts_with("ws://")) {
                    return Err("StartTunnel: server_url must be a ws:// or wss:// URL".to_owned());
                }
                Some(Native {
                    url,
                    token: Secret::new(token),
                })
            }
            _ => None,
        };
        Ok(StartParams {
            tid,
            host,
            port,
            idle_timeout: Duration::from_millis(idle_ms.unsigned_abs()),
            max_payload,
            chunksize,
            read_timeout,
            num_connects,
            native,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, Primitive)]) -> InfoTable {
        InfoTable::single_row(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    #[test]
    fn native_parameters_parse() {
        let t = table(&[
            ("tid", Primitive::String("abc".into())),
            ("type", Primitive::String("tcp".into())),
            ("idle_timeout", Primitive::Integer(60_000)),
            (
                "connection",
                Primitive::String(r#"{"host":"127.0.0.1","port":22,"num_connects":1}"#.into()),
            ),
            (
                "server_url",
                Primitive::String("wss://p/remote-access/v1/sessions/abc/server".into()),
            ),
            ("server_token", Primitive::String("tok".into())),
        ]);
        let p = StartParams::parse(Some(&t)).unwrap();
        assert_eq!(
            (p.tid.as_str(), p.host.as_str(), p.port),
            ("abc", "127.0.0.1", 22)
        );
        assert_eq!(p.idle_timeout, Duration::from_secs(60));
        let n = p.native.unwrap();
        assert_eq!(n.token.expose(), "tok");
        assert!(!format!("{n:?}").contains("tok\""), "token not in Debug");
    }

    #[test]
    fn legacy_and_bad_parameters() {
        let legacy = table(&[
            ("tid", Primitive::String("t1".into())),
            ("idle_timeout", Primitive::Number(30000.0)),
            (
                "connection",
                Primitive::String(r#"{"host":"h","port":"5900"}"#.into()),
            ),
        ]);
        let p = StartParams::parse(Some(&legacy)).unwrap();
        assert!(p.native.is_none());
        assert_eq!(p.port, 5900);
        assert_eq!(
            (p.chunksize, p.read_timeout, p.num_connects),
            (None, None, None)
        );
        let full = table(&[
            ("tid", Primitive::String("t2".into())),
            ("chunksize", Primitive::Integer(8192)),
            ("read_timeout", Primitive::Long(10)),
            (
                "connection",
                Primitive::String(r#"{"host":"h","port":22,"num_connects":3}"#.into()),
            ),
        ]);
        let p = StartParams::parse(Some(&full)).unwrap();
        assert_eq!(p.chunksize, Some(8192));
        assert_eq!(p.read_timeout, Some(Duration::from_millis(10)));
        assert_eq!(p.num_connects, Some(3));
        assert!(StartParams::parse(None).unwrap_err().contains("tid"));
        let bad_port = table(&[
            ("tid", Primitive::String("t1".into())),
            (
                "connection",
                Primitive::String(r#"{"host":"h","port":70000}"#.into()),
            ),
        ]);
        assert!(
            StartParams::parse(Some(&bad_port))
                .unwrap_err()
                .contains("port")
        );
        let udp = table(&[
            ("tid", Primitive::String("t1".into())),
            ("type", Primitive::String("udp".into())),
        ]);
        assert!(
            StartParams::parse(Some(&udp))
                .unwrap_err()
                .contains("tcp only")
        );
    }
}
