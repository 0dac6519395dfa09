//! The 15-byte header (§2.1) and whole messages.

use bytes::{BufMut, Bytes, BytesMut};

use crate::body::{AuthBody, BindBody, Gateway, RequestBody, ResponseBody};
use crate::code::Code;
use crate::error::{DecodeError, EncodeError};
use crate::infotable::InfoTable;
use crate::limits::Limits;
use crate::wire::Reader;

/// Protocol version byte.
pub const VERSION: u8 = 0x01;
/// Length of the common header.
pub const HEADER_LEN: usize = 15;
/// Length of the multipart extension that follows the header when the marker is 1.
pub const MULTIPART_HEADER_LEN: usize = 6;
/// Session id sent in AUTH before a session exists (-1).
pub const SESSION_NONE: u32 = 0xFFFF_FFFF;

/// The routing part of the 15-byte header (version and multipart marker are implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Method, kind or status.
    pub code: Code,
    /// Sender-chosen id; a response echoes its request's id.
    pub request_id: u32,
    /// 0 from edges; a response echoes its request's value.
    pub endpoint_id: u32,
    /// Session from the AUTH reply; [`SESSION_NONE`] in AUTH.
    pub session_id: u32,
}

impl Header {
    /// Reads the header of a frame (whole message or chunk) without decoding the body,
    /// e.g. to answer a request whose body failed to decode.
    pub fn peek(frame: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(frame);
        Ok(Self::read(&mut r)?.0)
    }

    /// Reads version, code, ids and the multipart marker (true = chunk).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<(Header, bool), DecodeError> {
        let version = r.u8("header")?;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let code = Code(r.u8("header")?);
        let request_id = r.u32("header")?;
        let endpoint_id = r.u32("header")?;
        let session_id = r.u32("header")?;
        let multipart = match r.u8("header")? {
            0 => false,
            1 => true,
            value => {
                return Err(DecodeError::BadMarker {
                    what: "multipart",
                    value,
                });
            }
        };
        Ok((
            Header {
                code,
                request_id,
                endpoint_id,
                session_id,
            },
            multipart,
        ))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>, multipart: bool) {
        out.put_u8(VERSION);
        out.put_u8(self.code.0);
        out.put_u32(self.request_id);
        out.put_u32(self.endpoint_id);
        out.put_u32(self.session_id);
        out.put_u8(u8::from(multipart));
    }
}

/// A message body; which one is fixed by the header code.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// GET, PUT, POST, DELETE.
    Request(RequestBody),
    /// Any code ≥ 0x40.
    Response(ResponseBody),
    /// AUTH.
    Auth(AuthBody),
    /// BIND or UNBIND.
    Bind(BindBody),
    /// KEEP_ALIVE (0x1F): no body; never sent by real edges (§11: answer 0x40).
    KeepAlive,
}

/// One AlwaysOn message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Code and ids.
    pub header: Header,
    /// Body matching the code.
    pub body: Body,
}

impl Message {
    /// Decodes one whole (non-multipart) message. Bytes after the body are ignored, as the C SDK
    /// does. Chunks give [`DecodeError::UnexpectedChunk`]: feed them to a [`crate::Reassembler`].
    pub fn decode(frame: &[u8], limits: &Limits) -> Result<Message, DecodeError> {
        if frame.len() > limits.max_message_size.saturating_add(HEADER_LEN) {
            let max = limits.max_message_size;
            return Err(DecodeError::TooLarge {
                what: "message",
                len: frame.len(),
                max,
            });
        }
        let mut r = Reader::new(frame);
        let (header, multipart) = Header::read(&mut r)?;
        if multipart {
            return Err(DecodeError::UnexpectedChunk);
        }
        let body = Self::decode_body(header.code, r.rest(), limits)?;
        Ok(Message { header, body })
    }

    /// Decodes a body (whole or reassembled) for a header code.
    pub(crate) fn decode_body(
        code: Code,
        body: &[u8],
        limits: &Limits,
    ) -> Result<Body, DecodeError> {
        let mut r = Reader::new(body);
        Ok(match code {
            c if c.is_request() => Body::Request(RequestBody::read(&mut r, limits)?),
            c if c.is_response() => Body::Response(ResponseBody::read(&mut r, limits)?),
            Code::AUTH => Body::Auth(AuthBody::read(&mut r, limits)?),
            Code::BIND | Code::UNBIND => Body::Bind(BindBody::read(&mut r, limits)?),
            Code::KEEP_ALIVE => Body::KeepAlive,
            other => return Err(DecodeError::UnknownCode(other.0)),
        })
    }

    /// Appends the message as one non-multipart frame. See [`crate::split`] for chunking.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut v = Vec::with_capacity(256);
        self.encode_vec(&mut v)?;
        out.extend_from_slice(&v);
        Ok(())
    }

    /// Appends the message as one frame to a `Vec` (the fast path: no intermediate buffer).
    pub fn encode_vec(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.header.encode(out, false);
        self.encode_body(out)
    }

    /// The message as one frame.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.encode_vec(&mut out)?;
        Ok(Bytes::from(out))
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match &self.body {
            Body::Request(b) => b.encode(out),
            Body::Response(b) => b.encode(out),
            Body::Auth(b) => b.encode(out),
            Body::Bind(b) => b.encode(out),
            Body::KeepAlive => Ok(()),
        }
    }

    /// AUTH with one `appKey` claim; session id -1, endpoint 0.
    pub fn auth_app_key(request_id: u32, app_key: impl Into<String>) -> Message {
        Self::auth(request_id, vec![("appKey".to_owned(), app_key.into())])
    }

    /// AUTH with the claims `userid` and `password` (Tether decision, §2.4).
    pub fn auth_credentials(
        request_id: u32,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Message {
        let claims = vec![
            ("userid".to_owned(), user.into()),
            ("password".to_owned(), password.into()),
        ];
        Self::auth(request_id, claims)
    }

    /// AUTH with arbitrary claims.
    pub fn auth(request_id: u32, claims: Vec<(String, String)>) -> Message {
        let header = Header {
            code: Code::AUTH,
            request_id,
            endpoint_id: 0,
            session_id: SESSION_NONE,
        };
        Message {
            header,
            body: Body::Auth(AuthBody { claims }),
        }
    }

    /// BIND for `names`, with an optional gateway.
    pub fn bind(
        request_id: u32,
        session_id: u32,
        gateway: Option<Gateway>,
        names: Vec<String>,
    ) -> Message {
        let header = Header {
            code: Code::BIND,
            request_id,
            endpoint_id: 0,
            session_id,
        };
        Message {
            header,
            body: Body::Bind(BindBody { gateway, names }),
        }
    }

    /// UNBIND for `names`, with an optional gateway.
    pub fn unbind(
        request_id: u32,
        session_id: u32,
        gateway: Option<Gateway>,
        names: Vec<String>,
    ) -> Message {
        let mut m = Self::bind(request_id, session_id, gateway, names);
        m.header.code = Code::UNBIND;
        m
    }

    /// A request (`code` should be GET, PUT, POST or DELETE); endpoint 0.
    pub fn request(code: Code, request_id: u32, session_id: u32, body: RequestBody) -> Message {
        let header = Header {
            code,
            request_id,
            endpoint_id: 0,
            session_id,
        };
        Message {
            header,
            body: Body::Request(body),
        }
    }

    /// A response to `req` (ids echoed) with a code and optional content.
    pub fn response(req: &Header, code: Code, content: Option<InfoTable>) -> Message {
        let header = Header { code, ..*req };
        Message {
            header,
            body: Body::Response(ResponseBody {
                reason: None,
                content,
            }),
        }
    }

    /// An error response to `req` carrying a reason string (marker 1).
    pub fn error(req: &Header, code: Code, reason: impl Into<String>) -> Message {
        let header = Header { code, ..*req };
        Message {
            header,
            body: Body::Response(ResponseBody {
                reason: Some(reason.into()),
                content: None,
            }),
        }
    }

    /// KEEP_ALIVE (defined but never sent by real edges).
    pub fn keep_alive(request_id: u32, session_id: u32) -> Message {
        let header = Header {
            code: Code::KEEP_ALIVE,
            request_id,
            endpoint_id: 0,
            session_id,
        };
        Message {
            header,
            body: Body::KeepAlive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let l = Limits::default();
        let mut f = Message::keep_alive(1, 2).to_bytes().unwrap().to_vec();
        assert_eq!(f.len(), HEADER_LEN);
        assert_eq!(Message::decode(&f, &l).unwrap(), Message::keep_alive(1, 2));
        f[14] = 1;
        assert_eq!(Message::decode(&f, &l), Err(DecodeError::UnexpectedChunk));
        f[14] = 2;
        assert!(matches!(
            Message::decode(&f, &l),
            Err(DecodeError::BadMarker { .. })
        ));
        f[0] = 2;
        assert_eq!(Message::decode(&f, &l), Err(DecodeError::BadVersion(2)));
        f[0] = 1;
        f[14] = 0;
        f[1] = 0x20;
        assert_eq!(Message::decode(&f, &l), Err(DecodeError::UnknownCode(0x20)));
        assert_eq!(Header::peek(&f).unwrap().request_id, 1);
        assert!(Message::decode(&f[..14], &l).is_err());
    }
}
