//! Message bodies (§2.4): request, response, AUTH, BIND/UNBIND.

use bytes::BufMut;

use crate::code::{Characteristic, EntityType};
use crate::error::{DecodeError, EncodeError};
use crate::infotable::InfoTable;
use crate::limits::Limits;
use crate::wire::{Reader, count_u8, count_u16, put_str};

/// Content type byte for an InfoTable.
const INFOTABLE: u8 = 0x05;
/// Content type byte for "no content" (NOTHING, -1).
const NOTHING: u8 = 0xFF;

/// Body of GET/PUT/POST/DELETE.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestBody {
    /// Entity type (`Things`, `Subsystems`, …).
    pub entity_type: EntityType,
    /// Entity name; `*` prefix marks a thing identifier.
    pub entity_name: String,
    /// Properties, Services or Events.
    pub characteristic: Characteristic,
    /// Property, service or event name (`*` = all properties on PUT, empty = all on GET).
    pub target: String,
    /// Request headers; real edges always send none (§10.3) but they are parsed anyway.
    pub headers: Vec<(String, String)>,
    /// Parameters (`0x05` + InfoTable) or none (`0xFF`).
    pub params: Option<InfoTable>,
}

impl RequestBody {
    /// A request body with no headers and no parameters.
    pub fn new(
        entity_type: EntityType,
        entity_name: impl Into<String>,
        characteristic: Characteristic,
        target: impl Into<String>,
    ) -> RequestBody {
        RequestBody {
            entity_type,
            entity_name: entity_name.into(),
            characteristic,
            target: target.into(),
            headers: Vec::new(),
            params: None,
        }
    }

    /// The same body with parameters.
    pub fn with_params(mut self, params: InfoTable) -> RequestBody {
        self.params = Some(params);
        self
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.put_u8(self.entity_type.0);
        put_str(out, &self.entity_name)?;
        out.put_u8(self.characteristic.0);
        put_str(out, &self.target)?;
        out.put_u8(count_u8(self.headers.len(), "request headers")?);
        for (k, v) in &self.headers {
            put_str(out, k)?;
            put_str(out, v)?;
        }
        put_content(out, self.params.as_ref())
    }

    pub(crate) fn read(r: &mut Reader<'_>, limits: &Limits) -> Result<RequestBody, DecodeError> {
        let entity_type = EntityType(r.u8("entity type")?);
        let entity_name = r.string(limits.max_string, "entity name")?;
        let characteristic = Characteristic(r.u8("characteristic")?);
        let target = r.string(limits.max_string, "target")?;
        let n = usize::from(r.u8("header count")?);
        let mut headers = Vec::with_capacity(n.min(r.remaining() / 2));
        for _ in 0..n {
            let k = r.string(limits.max_string, "header name")?;
            let v = r.string(limits.max_string, "header value")?;
            headers.push((k, v));
        }
        let params = read_content(r, limits)?;
        Ok(RequestBody {
            entity_type,
            entity_name,
            characteristic,
            target,
            headers,
            params,
        })
    }
}

/// Body of any response (code ≥ 0x40).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResponseBody {
    /// Error text; real edges never send one (§10.2, §12.6) but the marker is honoured.
    pub reason: Option<String>,
    /// Result InfoTable, if any.
    pub content: Option<InfoTable>,
}

impl ResponseBody {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match &self.reason {
            Some(reason) => {
                out.put_u8(1);
                put_str(out, reason)?;
            }
            None => out.put_u8(0),
        }
        put_content(out, self.content.as_ref())
    }

    pub(crate) fn read(r: &mut Reader<'_>, limits: &Limits) -> Result<ResponseBody, DecodeError> {
        let reason = match r.u8("reason marker")? {
            0 => None,
            _ => Some(r.string(limits.max_string, "reason")?),
        };
        let content = read_content(r, limits)?;
        Ok(ResponseBody { reason, content })
    }
}

fn put_content(out: &mut Vec<u8>, t: Option<&InfoTable>) -> Result<(), EncodeError> {
    match t {
        Some(t) => {
            out.put_u8(INFOTABLE);
            t.encode_vec(out)
        }
        None => {
            out.put_u8(NOTHING);
            Ok(())
        }
    }
}

/// `0x05` + InfoTable; `0xFF` (NOTHING) or any other type byte means no content, as in the
/// C SDK, which ignores other content types.
fn read_content(r: &mut Reader<'_>, limits: &Limits) -> Result<Option<InfoTable>, DecodeError> {
    match r.u8("content type")? {
        INFOTABLE => Ok(Some(InfoTable::read(r, limits, 0)?)),
        _ => Ok(None),
    }
}

/// Body of AUTH: name/value claims.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AuthBody {
    /// Claims in wire order, e.g. `("appKey", "<key>")`.
    pub claims: Vec<(String, String)>,
}

impl AuthBody {
    /// The value of a claim, name compared case-insensitively.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The application key (`appKey`, any case).
    pub fn app_key(&self) -> Option<&str> {
        self.claim("appKey")
    }

    /// User name and password: `userid`/`user`/`username`/`uid` with `password`/`pwd`.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        let user = ["userid", "user", "username", "uid"]
            .iter()
            .find_map(|n| self.claim(n))?;
        let pass = ["password", "pwd"].iter().find_map(|n| self.claim(n))?;
        Some((user, pass))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.put_u8(count_u8(self.claims.len(), "auth claims")?);
        for (k, v) in &self.claims {
            put_str(out, k)?;
            put_str(out, v)?;
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader<'_>, limits: &Limits) -> Result<AuthBody, DecodeError> {
        let n = usize::from(r.u8("claim count")?);
        let mut claims = Vec::with_capacity(n.min(r.remaining() / 2));
        for _ in 0..n {
            let k = r.string(limits.max_string, "claim name")?;
            let v = r.string(limits.max_string, "claim value")?;
            claims.push((k, v));
        }
        Ok(AuthBody { claims })
    }
}

/// The gateway announced in a BIND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// Gateway thing name (the EMS's `gateway: true` auto_bind entry).
    pub name: String,
    /// Gateway type; the EMS sends `"EMSGateway"` (§12.3).
    pub kind: String,
}

/// Body of BIND and UNBIND.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BindBody {
    /// Gateway fields, if any.
    pub gateway: Option<Gateway>,
    /// Thing names (a leading `*` marks an identifier).
    pub names: Vec<String>,
}

impl BindBody {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match &self.gateway {
            Some(g) => {
                out.put_u8(1);
                put_str(out, &g.name)?;
                put_str(out, &g.kind)?;
            }
            None => out.put_u8(0),
        }
        out.put_u16(count_u16(self.names.len(), "bind names")?);
        for n in &self.names {
            put_str(out, n)?;
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader<'_>, limits: &Limits) -> Result<BindBody, DecodeError> {
        let gateway = match r.u8("gateway marker")? {
            0 => None,
            _ => Some(Gateway {
                name: r.string(limits.max_string, "gateway name")?,
                kind: r.string(limits.max_string, "gateway type")?,
            }),
        };
        let n = usize::from(r.u16("bind name count")?);
        let mut names = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            names.push(r.string(limits.max_string, "bind name")?);
        }
        Ok(BindBody { gateway, names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_claims_are_lenient() {
        let a = AuthBody {
            claims: vec![
                ("UserID".into(), "bob".into()),
                ("Password".into(), "pw".into()),
            ],
        };
        assert_eq!(a.credentials(), Some(("bob", "pw")));
        assert_eq!(a.app_key(), None);
        let k = AuthBody {
            claims: vec![("appkey".into(), "k".into())],
        };
        assert_eq!(k.app_key(), Some("k"));
    }

    #[test]
    fn other_content_types_mean_no_content() {
        let l = Limits::default();
        let r = ResponseBody::read(&mut Reader::new(&[0, 0x00, 0x03, b'a']), &l).unwrap();
        assert_eq!(r, ResponseBody::default());
        let r = ResponseBody::read(&mut Reader::new(&[1, 2, b'h', b'i', 0xFF]), &l).unwrap();
        assert_eq!(r.reason.as_deref(), Some("hi"));
        assert!(ResponseBody::read(&mut Reader::new(&[0]), &l).is_err());
    }

    #[test]
    fn request_headers_parse() {
        let mut b = RequestBody::new(EntityType::THING, "T", Characteristic::SERVICES, "S");
        b.headers.push(("h".into(), "v".into()));
        let mut out = Vec::new();
        b.encode(&mut out).unwrap();
        let got = RequestBody::read(&mut Reader::new(&out), &Limits::default()).unwrap();
        assert_eq!(got, b);
    }
}
