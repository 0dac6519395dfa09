//! Sans-IO codec of the ThingWorx AlwaysOn message layer (spec/alwayson.md §2, §3, §10, §12).
//!
//! One WebSocket binary message carries one AlwaysOn message or one multipart chunk.
//! [`Message::decode`] reads a single message, [`Reassembler::push`] also joins chunks,
//! [`split`] cuts an outgoing message into chunks. No sockets, no clock: time is an argument.
//!
//! Modules:
//! - `code`: message codes ([`Code`]), entity types and characteristics.
//! - `error`: [`DecodeError`] (with the AlwaysOn response code to answer) and [`EncodeError`].
//! - `limits`: [`Limits`] bounding every length read from the wire.
//! - `wire`: the byte reader and the string encoding (§2.3).
//! - `basetype`: [`BaseType`] codes and names (§3.1), [`TextKind`] for the string family.
//! - `primitive`: [`Primitive`], the one value model for binary and JSON (§3.2).
//! - `infotable`: [`DataShape`], [`FieldDef`], [`InfoTable`] binary form (§3.3).
//! - `json`: the JSON InfoTable form of the EMS/LSR REST (§6.4, §12.10).
//! - `json_value`: the JSON form of single values by declared base type.
//! - `convention`: payload helpers: one-row tables, `_content_` (§12.7), property push (§12.8).
//! - `body`: request, response, AUTH and BIND/UNBIND bodies (§2.4).
//! - `message`: [`Header`], [`Message`], [`Body`] and their framing (§2.1).
//! - `multipart`: [`split`] and [`Reassembler`] (§2.6, §12.14).
//! - [`view`]: zero-copy decoding into borrowed views ([`view::decode`]), same checks as
//!   [`Message::decode`], convertible to the owned types.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod basetype;
mod body;
mod code;
mod convention;
mod error;
mod infotable;
mod json;
mod json_value;
mod limits;
mod message;
mod multipart;
mod primitive;
pub mod view;
mod wire;

pub use basetype::{BaseType, TextKind};
pub use body::{AuthBody, BindBody, Gateway, RequestBody, ResponseBody};
pub use code::{Characteristic, Code, EntityType};
pub use convention::{CONTENT_FIELD, PropertyValue};
pub use error::{DecodeError, EncodeError};
pub use infotable::{DataShape, FieldDef, InfoTable, Row};
pub use limits::Limits;
pub use message::{Body, HEADER_LEN, Header, MULTIPART_HEADER_LEN, Message, SESSION_NONE, VERSION};
pub use multipart::{ChunkHeader, Reassembler, split};
pub use primitive::{Location, Primitive};
