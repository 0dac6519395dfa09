//! Zero-copy decoding: [`decode`] reads a whole message into a [`MessageView`] that borrows
//! every string and BLOB from the input frame.
//!
//! The view decoder applies exactly the checks of [`Message::decode`] in the same order (same
//! [`Limits`], same errors, same tolerated quirks), so `view::decode(f, l).map(|v| v.to_owned())`
//! equals `Message::decode(f, l)` for every input, errors included (the property tests and the
//! `view` fuzz target check this). What it saves is the per-item allocation of the owned model:
//!
//! - strings are `&'a str` and BLOB/IMAGE bytes `&'a [u8]`, borrowed from the frame;
//! - the cells of an InfoTable live in ONE flat `Vec` (row stride = field count; rows whose cell
//!   count differs from the field count, which the wire allows, are indexed separately);
//! - a VARIANT keeps its validated bytes and is read again on access ([`VariantRef::get`]),
//!   so it costs no allocation; a nested INFOTABLE is a boxed [`InfoTableView`].
//!
//! A property update costs 5 allocations instead of about 35, a 100 × 10 table 2 (and one
//! resize) instead of about 400. Use it where a frame is inspected and dropped: routing by
//! header and target, property pushes (`UpdateSubscribedPropertyValues`, see [`InfoTableView::property_values`]),
//! service results that are forwarded or converted to JSON. Keep [`Message`] (or call
//! [`MessageView::to_owned`]) where the message must outlive the frame.

use crate::basetype::{BaseType, TextKind};
use crate::body::{AuthBody, BindBody, Gateway, RequestBody, ResponseBody};
use crate::code::{Characteristic, Code, EntityType};
use crate::convention::PropertyValue;
use crate::error::DecodeError;
use crate::infotable::{DataShape, FieldDef, InfoTable};
use crate::limits::Limits;
use crate::message::{Body, HEADER_LEN, Header, Message};
use crate::primitive::{Location, Primitive, check_depth};
use crate::wire::Reader;

/// Content type byte for an InfoTable (as in `body`).
const INFOTABLE: u8 = 0x05;

/// Decodes one whole (non-multipart) message without copying strings or bytes.
///
/// Same contract as [`Message::decode`]: bytes after the body are ignored, chunks give
/// [`DecodeError::UnexpectedChunk`], every length is checked against `limits`.
pub fn decode<'a>(frame: &'a [u8], limits: &Limits) -> Result<MessageView<'a>, DecodeError> {
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
    let body = decode_body(header.code, r.rest(), limits)?;
    Ok(MessageView { header, body })
}

/// Decodes a body (e.g. one joined from chunks) for a header code, without copying.
pub fn decode_body<'a>(
    code: Code,
    body: &'a [u8],
    limits: &Limits,
) -> Result<BodyView<'a>, DecodeError> {
    let mut r = Reader::new(body);
    Ok(match code {
        c if c.is_request() => BodyView::Request(RequestView::read(&mut r, limits)?),
        c if c.is_response() => BodyView::Response(ResponseView::read(&mut r, limits)?),
        Code::AUTH => BodyView::Auth(AuthView::read(&mut r, limits)?),
        Code::BIND | Code::UNBIND => BodyView::Bind(BindView::read(&mut r, limits)?),
        Code::KEEP_ALIVE => BodyView::KeepAlive,
        other => return Err(DecodeError::UnknownCode(other.0)),
    })
}

/// Reads a binary InfoTable that fills the whole input, without copying (see
/// [`InfoTable::decode`]).
pub fn decode_infotable<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<InfoTableView<'a>, DecodeError> {
    let mut r = Reader::new(input);
    let t = InfoTableView::read(&mut r, limits, 0)?;
    match r.rest().first() {
        None => Ok(t),
        Some(&value) => Err(DecodeError::BadMarker {
            what: "trailing byte after InfoTable",
            value,
        }),
    }
}

/// A string, UTF-8 checked, borrowed. Short ASCII strings (names, most values) skip the
/// general validator.
#[inline(always)]
fn str_ref<'a>(r: &mut Reader<'a>, max: usize, what: &'static str) -> Result<&'a str, DecodeError> {
    let raw = r.str_bytes(max, what)?;
    crate::wire::utf8(raw).ok_or(DecodeError::InvalidUtf8(what))
}

/// A u32 BE length (no marker bit) and raw bytes, borrowed: BLOB and IMAGE.
#[inline]
fn blob_ref<'a>(
    r: &mut Reader<'a>,
    max: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let len = r.u32(what)? as usize;
    if len > max {
        return Err(DecodeError::TooLarge { what, len, max });
    }
    r.bytes(len, what)
}

/// A decoded message borrowing from its frame.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageView<'a> {
    /// Code and ids.
    pub header: Header,
    /// Body matching the code.
    pub body: BodyView<'a>,
}

impl MessageView<'_> {
    /// The owned [`Message`] (what [`Message::decode`] returns for the same frame).
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Message {
        Message {
            header: self.header,
            body: self.body.to_owned(),
        }
    }
}

/// A borrowed message body; which one is fixed by the header code.
#[derive(Clone, Debug, PartialEq)]
pub enum BodyView<'a> {
    /// GET, PUT, POST, DELETE.
    Request(RequestView<'a>),
    /// Any code ≥ 0x40.
    Response(ResponseView<'a>),
    /// AUTH.
    Auth(AuthView<'a>),
    /// BIND or UNBIND.
    Bind(BindView<'a>),
    /// KEEP_ALIVE: no body.
    KeepAlive,
}

impl BodyView<'_> {
    /// The owned [`Body`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Body {
        match self {
            BodyView::Request(b) => Body::Request(b.to_owned()),
            BodyView::Response(b) => Body::Response(b.to_owned()),
            BodyView::Auth(b) => Body::Auth(b.to_owned()),
            BodyView::Bind(b) => Body::Bind(b.to_owned()),
            BodyView::KeepAlive => Body::KeepAlive,
        }
    }
}

fn pairs_owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Borrowed body of GET/PUT/POST/DELETE (see [`RequestBody`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestView<'a> {
    /// Entity type.
    pub entity_type: EntityType,
    /// Entity name.
    pub entity_name: &'a str,
    /// Properties, Services or Events.
    pub characteristic: Characteristic,
    /// Property, service or event name.
    pub target: &'a str,
    /// Request headers (real edges send none).
    pub headers: Vec<(&'a str, &'a str)>,
    /// Parameters, if any.
    pub params: Option<InfoTableView<'a>>,
}

impl<'a> RequestView<'a> {
    fn read(r: &mut Reader<'a>, limits: &Limits) -> Result<RequestView<'a>, DecodeError> {
        let entity_type = EntityType(r.u8("entity type")?);
        let entity_name = str_ref(r, limits.max_string, "entity name")?;
        let characteristic = Characteristic(r.u8("characteristic")?);
        let target = str_ref(r, limits.max_string, "target")?;
        let n = usize::from(r.u8("header count")?);
        let mut headers = Vec::with_capacity(n.min(r.remaining() / 2));
        for _ in 0..n {
            let k = str_ref(r, limits.max_string, "header name")?;
            let v = str_ref(r, limits.max_string, "header value")?;
            headers.push((k, v));
        }
        let params = read_content(r, limits)?;
        Ok(RequestView {
            entity_type,
            entity_name,
            characteristic,
            target,
            headers,
            params,
        })
    }

    /// The owned [`RequestBody`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> RequestBody {
        RequestBody {
            entity_type: self.entity_type,
            entity_name: self.entity_name.to_owned(),
            characteristic: self.characteristic,
            target: self.target.to_owned(),
            headers: pairs_owned(&self.headers),
            params: self.params.as_ref().map(InfoTableView::to_owned),
        }
    }
}

/// Borrowed body of a response (see [`ResponseBody`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResponseView<'a> {
    /// Error text, if the marker is set.
    pub reason: Option<&'a str>,
    /// Result InfoTable, if any.
    pub content: Option<InfoTableView<'a>>,
}

impl<'a> ResponseView<'a> {
    fn read(r: &mut Reader<'a>, limits: &Limits) -> Result<ResponseView<'a>, DecodeError> {
        let reason = match r.u8("reason marker")? {
            0 => None,
            _ => Some(str_ref(r, limits.max_string, "reason")?),
        };
        let content = read_content(r, limits)?;
        Ok(ResponseView { reason, content })
    }

    /// The owned [`ResponseBody`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> ResponseBody {
        ResponseBody {
            reason: self.reason.map(str::to_owned),
            content: self.content.as_ref().map(InfoTableView::to_owned),
        }
    }
}

/// `0x05` + InfoTable; any other type byte means no content (as the owned decoder).
fn read_content<'a>(
    r: &mut Reader<'a>,
    limits: &Limits,
) -> Result<Option<InfoTableView<'a>>, DecodeError> {
    match r.u8("content type")? {
        INFOTABLE => Ok(Some(InfoTableView::read(r, limits, 0)?)),
        _ => Ok(None),
    }
}

/// Borrowed AUTH claims (see [`AuthBody`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AuthView<'a> {
    /// Claims in wire order.
    pub claims: Vec<(&'a str, &'a str)>,
}

impl<'a> AuthView<'a> {
    fn read(r: &mut Reader<'a>, limits: &Limits) -> Result<AuthView<'a>, DecodeError> {
        let n = usize::from(r.u8("claim count")?);
        let mut claims = Vec::with_capacity(n.min(r.remaining() / 2));
        for _ in 0..n {
            let k = str_ref(r, limits.max_string, "claim name")?;
            let v = str_ref(r, limits.max_string, "claim value")?;
            claims.push((k, v));
        }
        Ok(AuthView { claims })
    }

    /// The owned [`AuthBody`] (which has the claim lookups `app_key()` and `credentials()`).
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> AuthBody {
        AuthBody {
            claims: pairs_owned(&self.claims),
        }
    }
}

/// Borrowed BIND/UNBIND body (see [`BindBody`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BindView<'a> {
    /// Gateway name and type, if any.
    pub gateway: Option<(&'a str, &'a str)>,
    /// Thing names.
    pub names: Vec<&'a str>,
}

impl<'a> BindView<'a> {
    fn read(r: &mut Reader<'a>, limits: &Limits) -> Result<BindView<'a>, DecodeError> {
        let gateway = match r.u8("gateway marker")? {
            0 => None,
            _ => Some((
                str_ref(r, limits.max_string, "gateway name")?,
                str_ref(r, limits.max_string, "gateway type")?,
            )),
        };
        let n = usize::from(r.u16("bind name count")?);
        let mut names = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            names.push(str_ref(r, limits.max_string, "bind name")?);
        }
        Ok(BindView { gateway, names })
    }

    /// The owned [`BindBody`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> BindBody {
        BindBody {
            gateway: self.gateway.map(|(name, kind)| Gateway {
                name: name.to_owned(),
                kind: kind.to_owned(),
            }),
            names: self.names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }
}

/// A borrowed DataShape column (see [`FieldDef`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldView<'a> {
    /// Field name.
    pub name: &'a str,
    /// Free text, usually empty.
    pub description: &'a str,
    /// Declared type.
    pub base_type: BaseType,
    /// Aspects in wire order.
    pub aspects: Vec<(&'a str, PrimitiveRef<'a>)>,
}

impl FieldView<'_> {
    /// The value of an aspect by name.
    pub fn aspect(&self, name: &str) -> Option<&PrimitiveRef<'_>> {
        self.aspects
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The owned [`FieldDef`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> FieldDef {
        FieldDef {
            name: self.name.to_owned(),
            description: self.description.to_owned(),
            base_type: self.base_type,
            aspects: self
                .aspects
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

/// A borrowed InfoTable: fields, and all cells in one flat vector.
///
/// Rows normally hold one cell per field, so row `i` is `cells[i * stride..(i + 1) * stride]`.
/// The wire allows rows with fewer or more cells; once one appears, row start offsets are
/// kept as well (only then: regular tables need two allocations in all).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InfoTableView<'a> {
    fields: Vec<FieldView<'a>>,
    cells: Vec<PrimitiveRef<'a>>,
    rows: usize,
    /// Row start offsets into `cells` plus the final end; empty while every row is regular.
    starts: Vec<usize>,
}

impl<'a> InfoTableView<'a> {
    /// The columns, in order.
    pub fn fields(&self) -> &[FieldView<'a>] {
        &self.fields
    }

    /// Position of a field by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Number of rows.
    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// All cells of all rows, in wire order.
    pub fn cells(&self) -> &[PrimitiveRef<'a>] {
        &self.cells
    }

    /// The cells of one row, in DataShape order.
    pub fn row(&self, i: usize) -> Option<&[PrimitiveRef<'a>]> {
        if i >= self.rows {
            return None;
        }
        if self.starts.is_empty() {
            let stride = self.fields.len();
            self.cells.get(i * stride..(i + 1) * stride)
        } else {
            let start = *self.starts.get(i)?;
            let end = *self.starts.get(i + 1)?;
            self.cells.get(start..end)
        }
    }

    /// The rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[PrimitiveRef<'a>]> + '_ {
        (0..self.rows).map(|i| self.row(i).unwrap_or(&[]))
    }

    /// The cell of `row` in the column named `field`.
    pub fn get(&self, row: usize, field: &str) -> Option<&PrimitiveRef<'a>> {
        let i = self.index_of(field)?;
        self.row(row)?.get(i)
    }

    /// The cell of the first row in the column named `field`.
    pub fn value(&self, field: &str) -> Option<&PrimitiveRef<'a>> {
        self.get(0, field)
    }

    /// The owned [`InfoTable`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> InfoTable {
        InfoTable {
            shape: DataShape {
                fields: self.fields.iter().map(FieldView::to_owned).collect(),
            },
            rows: self
                .rows()
                .map(|row| row.iter().map(PrimitiveRef::to_owned).collect())
                .collect(),
        }
    }

    /// A property push (`{values: INFOTABLE{name, value, time, quality}}`, any field order)
    /// read without copying: same rules as [`InfoTable::property_values`].
    pub fn property_values(&self) -> Result<Vec<PropertyValueRef<'a>>, DecodeError> {
        let inner = match self.value("values") {
            Some(PrimitiveRef::InfoTable(t)) => &**t,
            _ => return Err(DecodeError::Shape("no INFOTABLE field `values`".into())),
        };
        let idx = |n: &str| inner.index_of(n);
        let (Some(name_i), Some(value_i)) = (idx("name"), idx("value")) else {
            return Err(DecodeError::Shape(
                "property values need `name` and `value`".into(),
            ));
        };
        let (time_i, quality_i) = (idx("time"), idx("quality"));
        let mut out = Vec::with_capacity(inner.rows);
        for row in inner.rows() {
            let name = row
                .get(name_i)
                .and_then(PrimitiveRef::as_str)
                .ok_or_else(|| DecodeError::Shape("property value without a name".into()))?;
            let value = match row.get(value_i) {
                Some(PrimitiveRef::Variant(v)) => v.get(),
                Some(p) => p.clone(),
                None => PrimitiveRef::Nothing,
            };
            let time = match time_i.and_then(|i| row.get(i)) {
                Some(PrimitiveRef::DateTime(t) | PrimitiveRef::Long(t)) => *t,
                Some(p) => p.as_f64().map_or(0, |f| f as i64),
                None => 0,
            };
            let quality = quality_i
                .and_then(|i| row.get(i))
                .and_then(PrimitiveRef::as_str)
                .unwrap_or("GOOD");
            out.push(PropertyValueRef {
                name,
                value,
                time,
                quality,
            });
        }
        Ok(out)
    }

    pub(crate) fn read(
        r: &mut Reader<'a>,
        limits: &Limits,
        depth: usize,
    ) -> Result<InfoTableView<'a>, DecodeError> {
        let mut fields = Vec::new();
        loop {
            match r.u8("field marker")? {
                0 => break,
                1 => {}
                value => {
                    return Err(DecodeError::BadMarker {
                        what: "field",
                        value,
                    });
                }
            }
            if fields.len() >= limits.max_fields {
                return Err(too_large("fields", fields.len() + 1, limits.max_fields));
            }
            if fields.capacity() == 0 {
                // A field takes at least 6 bytes; a few is the common case.
                fields = Vec::with_capacity(8.min(r.remaining() / 6 + 1));
            }
            let name = str_ref(r, limits.max_string, "field name")?;
            let description = str_ref(r, limits.max_string, "field description")?;
            let base_type = BaseType::from_code(r.u8("field type")?)?;
            let n = usize::from(r.u16("aspect count")?);
            if n > limits.max_fields {
                return Err(too_large("aspects", n, limits.max_fields));
            }
            let mut aspects = Vec::with_capacity(n.min(r.remaining() / 2));
            for _ in 0..n {
                let an = str_ref(r, limits.max_string, "aspect name")?;
                aspects.push((an, PrimitiveRef::read(r, limits, depth)?));
            }
            fields.push(FieldView {
                name,
                description,
                base_type,
                aspects,
            });
        }
        let stride = fields.len();
        // A VARIANT cell passes the depth check at this depth (see `check_depth`).
        let variant_ok = check_depth(depth, limits).is_ok();
        let mut cells: Vec<PrimitiveRef<'a>> = Vec::new();
        let mut starts: Vec<usize> = Vec::new();
        let mut rows = 0usize;
        loop {
            match r.u8("row marker")? {
                0 => break,
                1 => {}
                value => return Err(DecodeError::BadMarker { what: "row", value }),
            }
            if rows >= limits.max_rows {
                return Err(too_large("rows", rows + 1, limits.max_rows));
            }
            let n = usize::from(r.u16("row cell count")?);
            if n > limits.max_fields {
                return Err(too_large("row cells", n, limits.max_fields));
            }
            if n != stride && starts.is_empty() {
                // First irregular row: index every row from here on.
                starts.reserve(rows + 2);
                starts.extend((0..=rows).map(|i| i * stride));
            }
            let row_start = r.remaining();
            if rows == 0 {
                // Room for a few rows before the first one tells their size (each cell takes
                // at least one byte of input).
                cells = Vec::with_capacity(n.saturating_mul(8).min(r.remaining()));
            }
            // The hot loop: common cells are read straight from the slice; anything else,
            // and every error, goes through the general reader from the same position, so
            // results and errors are those of `PrimitiveRef::read`.
            let buf = r.buf();
            let mut pos = r.position();
            for _ in 0..n {
                match fast_cell(buf, pos, limits.max_string, variant_ok, &mut cells) {
                    Some(next) => pos = next,
                    None => {
                        r.seek(pos);
                        cells.push(PrimitiveRef::read(r, limits, depth)?);
                        pos = r.position();
                    }
                }
            }
            r.seek(pos);
            rows += 1;
            if !starts.is_empty() {
                starts.push(cells.len());
            }
            if rows == 1 {
                // Size the cell vector from the first row: rows of a table are alike, so
                // the rest of the input holds about `remaining / row_bytes` more of them.
                // Never more than one cell per remaining byte.
                let row_bytes = (row_start - r.remaining()).max(1) + 3;
                let more_rows = r.remaining() / row_bytes;
                let want = more_rows.saturating_mul(n).min(r.remaining());
                cells.reserve(want);
            }
        }
        Ok(InfoTableView {
            fields,
            cells,
            rows,
            starts,
        })
    }
}

/// Appends the scalar cell (type byte and value) at `pos` and returns the position after it:
/// STRING with a one-byte length and ASCII text, NUMBER, BOOLEAN, DATETIME, INTEGER, LONG,
/// NOTHING, and a VARIANT wrapping one of the fixed-size ones. `None` (nothing appended) for
/// anything else or any check that fails: the caller then reads the cell with the general
/// reader, which gives the exact result or error.
#[inline(always)]
fn fast_cell<'a>(
    buf: &'a [u8],
    pos: usize,
    max_string: usize,
    variant_ok: bool,
    cells: &mut Vec<PrimitiveRef<'a>>,
) -> Option<usize> {
    // Nine bytes (type and the largest fixed value) read with one bounds check; cells in the
    // last 8 bytes of the input take the general path.
    let window: &[u8; 9] = buf.get(pos..pos.checked_add(9)?)?.try_into().ok()?;
    let [t, a, b, c, d, e, f, g, h] = *window;
    let be8 = [a, b, c, d, e, f, g, h];
    let (cell, next) = match t {
        0 => {
            let len = usize::from(a);
            if len >= 0x80 || len > max_string {
                return None;
            }
            let start = pos + 2;
            let raw = buf.get(start..start + len)?;
            (PrimitiveRef::String(crate::wire::ascii(raw)?), start + len)
        }
        1 => (PrimitiveRef::Number(f64::from_be_bytes(be8)), pos + 9),
        2 => (PrimitiveRef::Boolean(a != 0), pos + 2),
        3 => (PrimitiveRef::DateTime(i64::from_be_bytes(be8)), pos + 9),
        22 => (
            PrimitiveRef::Integer(i32::from_be_bytes([a, b, c, d])),
            pos + 5,
        ),
        23 => (PrimitiveRef::Long(i64::from_be_bytes(be8)), pos + 9),
        0xFF => (PrimitiveRef::Nothing, pos + 1),
        18 if variant_ok => {
            let len = match a {
                1 | 3 | 23 => 8,
                2 => 1,
                22 => 4,
                0xFF => 0,
                _ => return None,
            };
            let start = pos + 1;
            let end = start + 1 + len;
            let raw = buf.get(start..end)?;
            (PrimitiveRef::Variant(VariantRef { raw }), end)
        }
        _ => return None,
    };
    cells.push(cell);
    Some(next)
}

fn too_large(what: &'static str, len: usize, max: usize) -> DecodeError {
    DecodeError::TooLarge { what, len, max }
}

/// One property value of a push, borrowed (see [`PropertyValue`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyValueRef<'a> {
    /// Property name.
    pub name: &'a str,
    /// The value, VARIANT wrapper removed.
    pub value: PrimitiveRef<'a>,
    /// Sample time, ms since the Unix epoch (0 if absent).
    pub time: i64,
    /// Quality (`"GOOD"` if absent).
    pub quality: &'a str,
}

impl PropertyValueRef<'_> {
    /// The owned [`PropertyValue`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> PropertyValue {
        PropertyValue {
            name: self.name.to_owned(),
            value: self.value.to_owned(),
            time: self.time,
            quality: self.quality.to_owned(),
        }
    }
}

/// A VARIANT value: the validated bytes of the wrapped value (type byte first), read again on
/// access. Costs no allocation; reading a wrapped scalar again is a few instructions.
#[derive(Clone, Copy)]
pub struct VariantRef<'a> {
    raw: &'a [u8],
}

impl<'a> VariantRef<'a> {
    /// The wrapped value.
    pub fn get(&self) -> PrimitiveRef<'a> {
        let mut r = Reader::new(self.raw);
        // `raw` passed every check of the caller's limits when the message was decoded, so
        // reading it again without limits cannot fail; NOTHING stands in should it ever do.
        PrimitiveRef::read(&mut r, &UNLIMITED, 0).unwrap_or(PrimitiveRef::Nothing)
    }

    /// The wire bytes of the wrapped value (type byte and value).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl PartialEq for VariantRef<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.get() == o.get()
    }
}

impl std::fmt::Debug for VariantRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VariantRef").field(&self.get()).finish()
    }
}

/// A LOCATION value kept as its wire bytes (longitude, latitude, elevation as f64 BE), so a
/// cell stays 24 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LocationRef<'a> {
    raw: &'a [u8; 24],
}

impl LocationRef<'_> {
    /// The value.
    pub fn get(&self) -> Location {
        let f = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.raw[i * 8..i * 8 + 8]);
            f64::from_be_bytes(b)
        };
        Location {
            longitude: f(0),
            latitude: f(1),
            elevation: f(2),
        }
    }
}

impl std::fmt::Debug for LocationRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Bounds used to re-read bytes that were already checked against the caller's limits.
const UNLIMITED: Limits = Limits {
    max_message_size: usize::MAX,
    max_string: usize::MAX,
    max_rows: usize::MAX,
    max_fields: usize::MAX,
    max_depth: usize::MAX,
    max_pending: usize::MAX,
};

/// A borrowed typed value (see [`Primitive`]).
///
/// Equality compares floats bitwise, as [`Primitive`] does.
#[derive(Clone, Debug)]
pub enum PrimitiveRef<'a> {
    /// NOTHING.
    Nothing,
    /// STRING.
    String(&'a str),
    /// Any other string-family type.
    Text(TextKind, &'a str),
    /// NUMBER.
    Number(f64),
    /// BOOLEAN.
    Boolean(bool),
    /// DATETIME (ms since the Unix epoch).
    DateTime(i64),
    /// INFOTABLE (nested).
    InfoTable(Box<InfoTableView<'a>>),
    /// LOCATION (its 24 wire bytes; [`LocationRef::get`] gives the value).
    Location(LocationRef<'a>),
    /// IMAGE bytes.
    Image(&'a [u8]),
    /// BLOB bytes.
    Blob(&'a [u8]),
    /// VARIANT.
    Variant(VariantRef<'a>),
    /// INTEGER.
    Integer(i32),
    /// LONG.
    Long(i64),
}

impl PartialEq for PrimitiveRef<'_> {
    fn eq(&self, o: &Self) -> bool {
        use PrimitiveRef as P;
        match (self, o) {
            (P::Nothing, P::Nothing) => true,
            (P::String(a), P::String(b)) => a == b,
            (P::Text(k, a), P::Text(l, b)) => k == l && a == b,
            (P::Number(a), P::Number(b)) => a.to_bits() == b.to_bits(),
            (P::Boolean(a), P::Boolean(b)) => a == b,
            (P::DateTime(a), P::DateTime(b)) => a == b,
            (P::InfoTable(a), P::InfoTable(b)) => a == b,
            (P::Location(a), P::Location(b)) => a == b,
            (P::Image(a), P::Image(b)) | (P::Blob(a), P::Blob(b)) => a == b,
            (P::Variant(a), P::Variant(b)) => a == b,
            (P::Integer(a), P::Integer(b)) => a == b,
            (P::Long(a), P::Long(b)) => a == b,
            _ => false,
        }
    }
}

impl<'a> PrimitiveRef<'a> {
    /// The base type this value was written as.
    pub fn base_type(&self) -> BaseType {
        match self {
            PrimitiveRef::Nothing => BaseType::Nothing,
            PrimitiveRef::String(_) => BaseType::String,
            PrimitiveRef::Text(k, _) => k.base_type(),
            PrimitiveRef::Number(_) => BaseType::Number,
            PrimitiveRef::Boolean(_) => BaseType::Boolean,
            PrimitiveRef::DateTime(_) => BaseType::DateTime,
            PrimitiveRef::InfoTable(_) => BaseType::InfoTable,
            PrimitiveRef::Location(_) => BaseType::Location,
            PrimitiveRef::Image(_) => BaseType::Image,
            PrimitiveRef::Blob(_) => BaseType::Blob,
            PrimitiveRef::Variant(_) => BaseType::Variant,
            PrimitiveRef::Integer(_) => BaseType::Integer,
            PrimitiveRef::Long(_) => BaseType::Long,
        }
    }

    /// The text of a string-family value (looking through a VARIANT).
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            PrimitiveRef::String(s) | PrimitiveRef::Text(_, s) => Some(s),
            PrimitiveRef::Variant(v) => v.get().as_str(),
            _ => None,
        }
    }

    /// A numeric value as f64 (NUMBER, INTEGER, LONG, DATETIME; looking through a VARIANT).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PrimitiveRef::Number(n) => Some(*n),
            PrimitiveRef::Integer(i) => Some(f64::from(*i)),
            PrimitiveRef::Long(l) | PrimitiveRef::DateTime(l) => Some(*l as f64),
            PrimitiveRef::Variant(v) => v.get().as_f64(),
            _ => None,
        }
    }

    /// A BOOLEAN (looking through a VARIANT).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PrimitiveRef::Boolean(b) => Some(*b),
            PrimitiveRef::Variant(v) => v.get().as_bool(),
            _ => None,
        }
    }

    /// A nested InfoTable (not looking through a VARIANT: use [`VariantRef::get`]).
    pub fn as_infotable(&self) -> Option<&InfoTableView<'a>> {
        match self {
            PrimitiveRef::InfoTable(t) => Some(t),
            _ => None,
        }
    }

    /// The owned [`Primitive`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Primitive {
        match self {
            PrimitiveRef::Nothing => Primitive::Nothing,
            PrimitiveRef::String(s) => Primitive::String((*s).to_owned()),
            PrimitiveRef::Text(k, s) => Primitive::Text(*k, (*s).to_owned()),
            PrimitiveRef::Number(n) => Primitive::Number(*n),
            PrimitiveRef::Boolean(b) => Primitive::Boolean(*b),
            PrimitiveRef::DateTime(t) => Primitive::DateTime(*t),
            PrimitiveRef::InfoTable(t) => {
                Primitive::InfoTable(Box::new(InfoTableView::to_owned(t)))
            }
            PrimitiveRef::Location(l) => Primitive::Location(l.get()),
            PrimitiveRef::Image(b) => Primitive::Image(b.to_vec()),
            PrimitiveRef::Blob(b) => Primitive::Blob(b.to_vec()),
            PrimitiveRef::Variant(v) => Primitive::Variant(Box::new(v.get().to_owned())),
            PrimitiveRef::Integer(i) => Primitive::Integer(*i),
            PrimitiveRef::Long(l) => Primitive::Long(*l),
        }
    }

    /// Reads type byte and value from `input`; the whole input must be used (see
    /// [`Primitive::decode`]).
    pub fn decode(input: &'a [u8], limits: &Limits) -> Result<PrimitiveRef<'a>, DecodeError> {
        let mut r = Reader::new(input);
        let p = Self::read(&mut r, limits, 0)?;
        match r.rest().first() {
            None => Ok(p),
            Some(&value) => Err(DecodeError::BadMarker {
                what: "trailing byte after value",
                value,
            }),
        }
    }

    /// Type byte and value; the common scalars inline (the per-cell hot path).
    #[inline(always)]
    fn read(
        r: &mut Reader<'a>,
        limits: &Limits,
        depth: usize,
    ) -> Result<PrimitiveRef<'a>, DecodeError> {
        Ok(match r.u8("value type")? {
            0 => PrimitiveRef::String(str_ref(r, limits.max_string, "string value")?),
            1 => PrimitiveRef::Number(r.f64("NUMBER")?),
            2 => PrimitiveRef::Boolean(r.u8("BOOLEAN")? != 0),
            3 => PrimitiveRef::DateTime(r.i64("DATETIME")?),
            22 => PrimitiveRef::Integer(r.u32("INTEGER")? as i32),
            23 => PrimitiveRef::Long(r.i64("LONG")?),
            0xFF => PrimitiveRef::Nothing,
            code => Self::read_value(BaseType::from_code(code)?, r, limits, depth)?,
        })
    }

    #[inline(never)]
    fn read_value(
        t: BaseType,
        r: &mut Reader<'a>,
        limits: &Limits,
        depth: usize,
    ) -> Result<PrimitiveRef<'a>, DecodeError> {
        Ok(match t {
            BaseType::Nothing => PrimitiveRef::Nothing,
            BaseType::String => {
                PrimitiveRef::String(str_ref(r, limits.max_string, "string value")?)
            }
            BaseType::Number => PrimitiveRef::Number(r.f64("NUMBER")?),
            BaseType::Boolean => PrimitiveRef::Boolean(r.u8("BOOLEAN")? != 0),
            BaseType::DateTime => PrimitiveRef::DateTime(r.i64("DATETIME")?),
            BaseType::InfoTable => {
                check_depth(depth, limits)?;
                PrimitiveRef::InfoTable(Box::new(InfoTableView::read(r, limits, depth + 1)?))
            }
            BaseType::Location => {
                let raw = r.bytes(24, "LOCATION")?;
                match raw.try_into() {
                    Ok(raw) => PrimitiveRef::Location(LocationRef { raw }),
                    Err(_) => return Err(DecodeError::Truncated("LOCATION")),
                }
            }
            BaseType::Image => PrimitiveRef::Image(blob_ref(r, limits.max_string, "IMAGE")?),
            BaseType::Blob => PrimitiveRef::Blob(blob_ref(r, limits.max_string, "BLOB")?),
            BaseType::Variant => {
                check_depth(depth, limits)?;
                let start = r.rest();
                Self::validate(r, limits, depth + 1)?;
                let used = start.len() - r.remaining();
                PrimitiveRef::Variant(VariantRef {
                    raw: start.get(..used).unwrap_or(&[]),
                })
            }
            BaseType::Integer => PrimitiveRef::Integer(r.u32("INTEGER")? as i32),
            BaseType::Long => PrimitiveRef::Long(r.i64("LONG")?),
            other => match TextKind::new(other) {
                Some(k) => PrimitiveRef::Text(k, str_ref(r, limits.max_string, "string value")?),
                None => return Err(DecodeError::UnsupportedType(other.code())),
            },
        })
    }

    /// Checks the value a VARIANT wraps (same checks, same errors as reading it); scalars
    /// and strings are not materialised, nested tables are read and dropped.
    fn validate(r: &mut Reader<'a>, limits: &Limits, depth: usize) -> Result<(), DecodeError> {
        match r.u8("value type")? {
            0 => {
                str_ref(r, limits.max_string, "string value")?;
            }
            1 => {
                r.f64("NUMBER")?;
            }
            2 => {
                r.u8("BOOLEAN")?;
            }
            3 => {
                r.i64("DATETIME")?;
            }
            22 => {
                r.u32("INTEGER")?;
            }
            23 => {
                r.i64("LONG")?;
            }
            0xFF => {}
            code => {
                Self::read_value(BaseType::from_code(code)?, r, limits, depth)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_small() {
        assert_eq!(std::mem::size_of::<PrimitiveRef<'_>>(), 24);
    }

    #[test]
    fn irregular_rows_are_indexed() {
        let mut t = InfoTable::new(vec![
            FieldDef::new("a", BaseType::Integer),
            FieldDef::new("b", BaseType::Integer),
        ]);
        t.rows
            .push(vec![Primitive::Integer(1), Primitive::Integer(2)]);
        t.rows.push(vec![Primitive::Integer(3)]);
        t.rows.push(vec![]);
        t.rows.push(vec![
            Primitive::Integer(4),
            Primitive::Integer(5),
            Primitive::Integer(6),
        ]);
        let mut b = Vec::new();
        t.encode_vec(&mut b).unwrap();
        let v = decode_infotable(&b, &Limits::default()).unwrap();
        assert_eq!(v.row_count(), 4);
        assert_eq!(v.row(1), Some(&[PrimitiveRef::Integer(3)][..]));
        assert_eq!(v.row(2), Some(&[][..]));
        assert_eq!(v.get(3, "b"), Some(&PrimitiveRef::Integer(5)));
        assert_eq!(v.row(4), None);
        assert_eq!(v.to_owned(), t);
    }

    #[test]
    fn property_push_view_matches_owned() {
        let values = vec![
            PropertyValue {
                name: "T".into(),
                value: Primitive::Number(1.5),
                time: 9,
                quality: "GOOD".into(),
            },
            PropertyValue {
                name: "S".into(),
                value: Primitive::String("x".into()),
                time: 10,
                quality: "BAD".into(),
            },
        ];
        let t = InfoTable::property_push(&values);
        let mut b = Vec::new();
        t.encode_vec(&mut b).unwrap();
        let v = decode_infotable(&b, &Limits::default()).unwrap();
        let got: Vec<PropertyValue> = v
            .property_values()
            .unwrap()
            .iter()
            .map(PropertyValueRef::to_owned)
            .collect();
        assert_eq!(got, values);
        assert_eq!(
            v.value("values").map(PrimitiveRef::base_type),
            Some(BaseType::InfoTable)
        );
        let inner = v
            .value("values")
            .and_then(PrimitiveRef::as_infotable)
            .unwrap();
        assert_eq!(
            inner.get(1, "value").and_then(PrimitiveRef::as_str),
            Some("x")
        );
        assert_eq!(
            inner.get(0, "value").and_then(PrimitiveRef::as_f64),
            Some(1.5)
        );
    }

    #[test]
    fn variant_limits_match_owned() {
        let l = Limits::default();
        let deep = vec![0x12u8; 100];
        assert_eq!(
            PrimitiveRef::decode(&deep, &l),
            Err(DecodeError::TooDeep(l.max_depth))
        );
        let bad = [0x12u8, 0x00, 0x02, 0xC3, 0x28];
        assert_eq!(
            PrimitiveRef::decode(&bad, &l),
            Err(DecodeError::InvalidUtf8("string value"))
        );
        let ok = [0x12u8, 0x12, 0x16, 0, 0, 0, 7];
        let v = PrimitiveRef::decode(&ok, &l).unwrap();
        assert_eq!(v.to_owned(), Primitive::decode(&ok, &l).unwrap());
        let PrimitiveRef::Variant(outer) = v else {
            panic!("not a variant")
        };
        let PrimitiveRef::Variant(inner) = outer.get() else {
            panic!("not a variant")
        };
        assert_eq!(inner.get(), PrimitiveRef::Integer(7));
        assert_eq!(outer.raw(), &ok[1..]);
    }
}
