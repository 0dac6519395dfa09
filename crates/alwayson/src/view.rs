//! Zero-copy decoding: [`decode`] reads a whole message into a [`MessageView`] that borrows
//! every string and BLOB from the input frame.
//!
//! The view decoder applies exactly the checks of [`Message::decode`] in the same order (same
//! [`Limits`], same errors, same tolerated quirks), so `view::decode(f, l).map(|v| v.to_owned())`
//! equals `Message::decode(f, l)` for every input, errors included (the property tests and the
//! `view` fuzz target check this). What it saves is the per-item allocation of the owned model:
//!
//! - strings are `&'a str` and BLOB/IMAGE bytes `&'a [u8]`, borrowed from the frame;
//! - an InfoTable is validated but not built: an [`InfoTableView`] keeps the table's validated
//!   wire bytes and reads fields and cells from them on access, lazily and without allocating
//!   ([`InfoTableView::rows`], [`InfoTableView::cells`], [`InfoTableView::get`], …), or all at
//!   once into a vector with [`InfoTableView::to_cells`];
//! - a VARIANT keeps its validated bytes and is read again on access ([`VariantRef::get`]).
//!
//! Decoding a message allocates nothing (only the header pairs of a request, the claims of an
//! AUTH and the names of a BIND are collected in a `Vec`), against about 35 allocations for a
//! property update and about 400 for a 100 × 10 table with [`Message::decode`]. Use it where a
//! frame is inspected and dropped: routing by header and target, property pushes
//! (`UpdateSubscribedPropertyValues`, see [`InfoTableView::property_values`]), service results
//! that are forwarded or converted to JSON. Keep [`Message`] (or call
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
    if let Some(s) = r.short_str(max) {
        return Ok(s);
    }
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

/// A borrowed InfoTable, validated but not built: it keeps the table's wire bytes and what
/// validation learnt (where the rows begin, how many fields and rows), and reads fields and
/// cells from those bytes when they are asked for.
///
/// [`view::decode`](decode) checks every byte of the table (markers, every length against
/// [`Limits`], UTF-8, base types, nesting depth) before it returns, so reading the bytes
/// again cannot fail. Every accessor reads lazily and allocates nothing
/// ([`InfoTableView::fields`], [`InfoTableView::rows`], [`InfoTableView::cells`],
/// [`InfoTableView::get`], …; a nested table read from a cell is boxed, an aspect list is a
/// `Vec`): a scalar cell costs a few instructions, a string is checked for UTF-8 again (as
/// safe code must), rows before the one asked for are skipped over.
/// [`InfoTableView::to_cells`] builds all cells into one vector for random access.
#[derive(Clone)]
pub struct InfoTableView<'a> {
    /// DataShape, rows and the final row marker, exactly as validated.
    raw: &'a [u8],
    /// Offset in `raw` of the first row marker.
    rows_at: usize,
    /// Number of fields in the DataShape.
    field_count: usize,
    /// Number of rows.
    rows: usize,
    /// Every row has `field_count` cells.
    regular: bool,
}

/// An empty table (no fields, no rows).
const EMPTY_TABLE: &[u8] = &[0, 0];

impl Default for InfoTableView<'_> {
    fn default() -> Self {
        InfoTableView {
            raw: EMPTY_TABLE,
            rows_at: 1,
            field_count: 0,
            rows: 0,
            regular: true,
        }
    }
}

impl PartialEq for InfoTableView<'_> {
    /// Same fields and same cells (not the same bytes: a string has two length forms).
    fn eq(&self, o: &Self) -> bool {
        self.rows == o.rows
            && self.field_count == o.field_count
            && self.fields().eq(o.fields())
            && self
                .rows()
                .zip(o.rows())
                .all(|(a, b)| a.len() == b.len() && a.iter().eq(b.iter()))
    }
}

impl std::fmt::Debug for InfoTableView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Rows<'b, 'a>(&'b InfoTableView<'a>);
        impl std::fmt::Debug for Rows<'_, '_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list()
                    .entries(self.0.rows().map(|r| r.iter().collect::<Vec<_>>()))
                    .finish()
            }
        }
        f.debug_struct("InfoTableView")
            .field("fields", &self.fields().collect::<Vec<_>>())
            .field("rows", &Rows(self))
            .finish()
    }
}

impl<'a> InfoTableView<'a> {
    /// The table's wire bytes (DataShape, rows, end marker), e.g. to forward it unchanged.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The columns, in order, read lazily.
    pub fn fields(&self) -> FieldIter<'a> {
        FieldIter {
            r: Reader::new(self.raw.get(..self.rows_at).unwrap_or(&[])),
            left: self.field_count,
        }
    }

    /// Number of fields.
    pub fn field_count(&self) -> usize {
        self.field_count
    }

    /// Position of a field by name (the first one of that name), read from the wire bytes.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        let [i] = self.field_positions([name]);
        i
    }

    /// Positions of several fields by name, in one pass over the DataShape.
    fn field_positions<const N: usize>(&self, names: [&str; N]) -> [Option<usize>; N] {
        let shape = self.raw.get(..self.rows_at).unwrap_or(&[]);
        field_positions_in(shape, self.field_count, names)
    }

    /// Number of rows.
    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// The rows in order, read lazily.
    pub fn rows(&self) -> RowIter<'a> {
        RowIter {
            buf: self.raw,
            pos: self.rows_at,
            pending: 0,
            left: self.rows,
        }
    }

    /// Every cell of every row in wire order, read lazily (each cell read once).
    pub fn cells(&self) -> CellIter<'a> {
        CellIter {
            buf: self.raw,
            pos: self.rows_at,
            left: 0,
            rows_left: self.rows,
        }
    }

    /// One row (rows before it are skipped over).
    pub fn row(&self, i: usize) -> Option<RowRef<'a>> {
        self.rows().nth(i)
    }

    /// The cell of `row` in the column named `field`.
    pub fn get(&self, row: usize, field: &str) -> Option<PrimitiveRef<'a>> {
        let i = self.index_of(field)?;
        self.row(row)?.get(i)
    }

    /// The cell of the first row in the column named `field`.
    pub fn value(&self, field: &str) -> Option<PrimitiveRef<'a>> {
        self.get(0, field)
    }

    /// All cells built into one vector, for random access by row and column.
    pub fn to_cells(&self) -> TableCells<'a> {
        // Exact for a regular table; never more than one cell per byte (irregular rows can
        // be empty while the DataShape is wide).
        let want = self.rows.saturating_mul(self.field_count);
        let mut cells = Vec::with_capacity(want.min(self.raw.len()));
        let mut starts = Vec::new();
        if self.regular {
            cells.extend(self.cells());
        } else {
            starts.reserve(self.rows + 1);
            for row in self.rows() {
                starts.push(cells.len());
                cells.extend(row.iter());
            }
            starts.push(cells.len());
        }
        TableCells {
            cells,
            stride: self.field_count,
            rows: self.rows,
            starts,
        }
    }

    /// The owned [`InfoTable`].
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> InfoTable {
        let mut rows = Vec::with_capacity(self.rows);
        let done: Result<(), std::convert::Infallible> = self.for_rows(|cells| {
            rows.push(cells.map(|c| c.to_owned()).collect());
            Ok(())
        });
        match done {
            Ok(()) => {}
            Err(never) => match never {},
        }
        InfoTable {
            shape: DataShape {
                fields: self.fields().map(|f| f.to_owned()).collect(),
            },
            rows,
        }
    }

    /// Runs `f` on the cells of each row in turn; cells `f` leaves unread are skipped. Each
    /// cell is parsed once when `f` reads them all.
    fn for_rows<E>(&self, mut f: impl FnMut(&mut CellIter<'a>) -> Result<(), E>) -> Result<(), E> {
        let mut pos = self.rows_at;
        for _ in 0..self.rows {
            let Some((len, start)) = row_header(self.raw, pos) else {
                break;
            };
            let mut cells = CellIter {
                buf: self.raw,
                pos: start,
                left: len,
                rows_left: 0,
            };
            f(&mut cells)?;
            pos = cells.finish_row();
        }
        Ok(())
    }

    /// The view of a validated table at `start` of `buf` (its first field marker), and the
    /// position after it: lengths are followed, nothing is checked again.
    fn scan_trusted(buf: &'a [u8], start: usize) -> (InfoTableView<'a>, usize) {
        let (mut pos, field_count) = scan_fields_trusted(buf, start);
        let rows_at = pos.saturating_sub(start);
        let mut rows = 0usize;
        let mut regular = true;
        while let Some((n, cells)) = row_header(buf, pos) {
            regular &= n == field_count;
            pos = skip_cells(buf, cells, n);
            rows += 1;
        }
        let end = (pos + 1).min(buf.len());
        let view = InfoTableView {
            raw: buf.get(start..end).unwrap_or(EMPTY_TABLE),
            rows_at,
            field_count,
            rows,
            regular,
        };
        (view, end)
    }

    /// A property push (`{values: INFOTABLE{name, value, time, quality}}`, any field order)
    /// read without copying: same rules as [`InfoTable::property_values`]. One allocation:
    /// the returned vector.
    pub fn property_values(&self) -> Result<Vec<PropertyValueRef<'a>>, DecodeError> {
        let no_values = || DecodeError::Shape("no INFOTABLE field `values`".into());
        let buf = self.raw;
        // The nested table's first byte: only its DataShape is scanned, the rows are read once.
        let start = self
            .index_of("values")
            .and_then(|i| self.row(0)?.table_start(i))
            .ok_or_else(no_values)?;
        let (rows_at, field_count) = scan_fields_trusted(buf, start);
        let shape = buf.get(start..rows_at).unwrap_or(&[]);
        let [name_i, value_i, time_i, quality_i] =
            field_positions_in(shape, field_count, ["name", "value", "time", "quality"]);
        let (Some(name_i), Some(value_i)) = (name_i, value_i) else {
            return Err(DecodeError::Shape(
                "property values need `name` and `value`".into(),
            ));
        };
        let mut out = Vec::new();
        let mut pos = rows_at;
        while let Some((len, first)) = row_header(buf, pos) {
            pos = first;
            let (mut name, mut value, mut time, mut quality) =
                (None, PrimitiveRef::Nothing, 0, None);
            for i in 0..len {
                let wanted =
                    i == name_i || i == value_i || Some(i) == time_i || Some(i) == quality_i;
                if !wanted {
                    pos = skip_trusted(buf, pos);
                    continue;
                }
                // The value's VARIANT wrapper is removed: the wrapped value is read in place.
                let at = if i == value_i && buf.get(pos) == Some(&VARIANT) {
                    pos + 1
                } else {
                    pos
                };
                if i != value_i {
                    // Name and quality are short ASCII strings: read them without building
                    // a cell (anything else takes the general path below).
                    if let Some(w) = window(buf, at).filter(|w| w[0] == STRING) {
                        if let Some(text) = window_str(w, 1) {
                            pos = at + 2 + text.len();
                            if i == name_i {
                                name = Some(text);
                                continue;
                            }
                            if Some(i) == quality_i {
                                quality = Some(text);
                                continue;
                            }
                            // A STRING time: as the general path below (`as_f64` is None).
                            time = 0;
                            continue;
                        }
                    }
                }
                let (cell, next) = cell_trusted(buf, at);
                pos = next;
                if i == value_i {
                    value = cell;
                } else if i == name_i {
                    name = cell.as_str();
                } else if Some(i) == time_i {
                    time = match cell {
                        PrimitiveRef::DateTime(t) | PrimitiveRef::Long(t) => t,
                        p => p.as_f64().map_or(0, |f| f as i64),
                    };
                } else {
                    quality = cell.as_str();
                }
            }
            let name =
                name.ok_or_else(|| DecodeError::Shape("property value without a name".into()))?;
            let quality = quality.unwrap_or("GOOD");
            if out.capacity() == 0 {
                // Rows of a push are alike: size the vector from the first one.
                let row_bytes = (pos - first).max(1) + 3;
                out.reserve(1 + buf.len().saturating_sub(pos) / row_bytes);
            }
            out.push(PropertyValueRef {
                name,
                value,
                time,
                quality,
            });
        }
        Ok(out)
    }

    /// Validates a binary InfoTable at the reader's position (every check of
    /// [`InfoTable::decode`], same order, same errors) and returns its view. Allocates nothing.
    pub(crate) fn read(
        r: &mut Reader<'a>,
        limits: &Limits,
        depth: usize,
    ) -> Result<InfoTableView<'a>, DecodeError> {
        let start = r.position();
        let mut field_count = 0usize;
        loop {
            // The common field (short ASCII name and description, no aspects) is checked
            // straight on the slice; anything else goes through the reader from the field's
            // start, which gives the exact result or error.
            if field_count < limits.max_fields {
                if let Some(next) = field_fast(r.buf(), r.position(), limits.max_string) {
                    r.seek(next);
                    field_count += 1;
                    continue;
                }
            }
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
            if field_count >= limits.max_fields {
                return Err(too_large("fields", field_count + 1, limits.max_fields));
            }
            str_ref(r, limits.max_string, "field name")?;
            str_ref(r, limits.max_string, "field description")?;
            BaseType::from_code(r.u8("field type")?)?;
            let n = usize::from(r.u16("aspect count")?);
            if n > limits.max_fields {
                return Err(too_large("aspects", n, limits.max_fields));
            }
            for _ in 0..n {
                str_ref(r, limits.max_string, "aspect name")?;
                PrimitiveRef::skip(r, limits, depth)?;
            }
            field_count += 1;
        }
        let rows_at = r.position() - start;
        // A VARIANT cell passes the depth check at this depth (see `check_depth`).
        let variant_ok = check_depth(depth, limits).is_ok();
        let max_string = limits.max_string;
        let buf = r.buf();
        let mut pos = r.position();
        let mut rows = 0usize;
        let mut regular = true;
        loop {
            // Row header: marker 1, then the cell count. The common case is checked straight
            // on the slice; anything else (end marker, errors) goes through the reader, which
            // gives the exact result or error.
            let n = match buf.get(pos..pos + 3) {
                Some(&[1, hi, lo])
                    if rows < limits.max_rows
                        && usize::from(u16::from_be_bytes([hi, lo])) <= limits.max_fields =>
                {
                    pos += 3;
                    usize::from(u16::from_be_bytes([hi, lo]))
                }
                _ => {
                    r.seek(pos);
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
                    pos = r.position();
                    n
                }
            };
            regular &= n == field_count;
            // The hot loop: common cells are checked straight on the slice; anything else,
            // and every error, goes through the general validator from the same position.
            for _ in 0..n {
                match skip_fast(buf, pos, max_string, variant_ok) {
                    Some(next) => pos = next,
                    None => {
                        r.seek(pos);
                        PrimitiveRef::skip(r, limits, depth)?;
                        pos = r.position();
                    }
                }
            }
            rows += 1;
        }
        let end = r.position();
        Ok(InfoTableView {
            raw: buf.get(start..end).unwrap_or(EMPTY_TABLE),
            rows_at,
            field_count,
            rows,
            regular,
        })
    }
}

/// The cells of an [`InfoTableView`] built into one vector ([`InfoTableView::to_cells`]):
/// row `i` is `cells[i * stride..(i + 1) * stride]` unless some row has a different cell
/// count, in which case row starts are kept as well.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TableCells<'a> {
    cells: Vec<PrimitiveRef<'a>>,
    stride: usize,
    rows: usize,
    /// Row start offsets into `cells` plus the final end; empty while every row is regular.
    starts: Vec<usize>,
}

impl<'a> TableCells<'a> {
    /// All cells, in wire order.
    pub fn cells(&self) -> &[PrimitiveRef<'a>] {
        &self.cells
    }

    /// Number of rows.
    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// The cells of one row.
    pub fn row(&self, i: usize) -> Option<&[PrimitiveRef<'a>]> {
        if i >= self.rows {
            return None;
        }
        if self.starts.is_empty() {
            self.cells.get(i * self.stride..(i + 1) * self.stride)
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
}

/// The fields of an [`InfoTableView`], read lazily.
#[derive(Clone)]
pub struct FieldIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = FieldView<'a>;

    fn next(&mut self) -> Option<FieldView<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match read_field(&mut self.r) {
            Ok(f) => Some(f),
            // Cannot happen: the bytes were validated with limits at least as tight.
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

/// One field definition from validated bytes.
fn read_field<'a>(r: &mut Reader<'a>) -> Result<FieldView<'a>, DecodeError> {
    r.u8("field marker")?;
    let name = str_ref(r, usize::MAX, "field name")?;
    let description = str_ref(r, usize::MAX, "field description")?;
    let base_type = BaseType::from_code(r.u8("field type")?)?;
    let n = usize::from(r.u16("aspect count")?);
    let mut aspects = Vec::with_capacity(n.min(r.remaining() / 2));
    for _ in 0..n {
        let an = str_ref(r, usize::MAX, "aspect name")?;
        aspects.push((an, PrimitiveRef::read(r, &UNLIMITED, 0)?));
    }
    Ok(FieldView {
        name,
        description,
        base_type,
        aspects,
    })
}

/// Wire size (type byte included) of the fixed-size values by type code; 0 for the others.
const FIXED: [u8; 256] = {
    let mut t = [0u8; 256];
    t[1] = 9; // NUMBER
    t[2] = 2; // BOOLEAN
    t[3] = 9; // DATETIME
    t[6] = 25; // LOCATION
    t[22] = 5; // INTEGER
    t[23] = 9; // LONG
    t[0xFF] = 1; // NOTHING
    t
};

/// [`FIXED`] without LOCATION: the values that fit in a [`WINDOW`].
const SMALL: [u8; 256] = {
    let mut t = FIXED;
    t[6] = 0;
    t
};

/// Type code of STRING.
const STRING: u8 = 0;
/// Type code of VARIANT.
const VARIANT: u8 = 18;

/// Bytes the fast paths read with one bounds check: a type byte and an 8-byte value, or a
/// type byte, a length byte and 16 bytes of text, or the same behind a VARIANT type byte.
pub(crate) const WINDOW: usize = 19;

/// The `WINDOW` bytes from `pos`, if there are that many.
#[inline(always)]
pub(crate) fn window(buf: &[u8], pos: usize) -> Option<&[u8; WINDOW]> {
    buf.get(pos..)?.first_chunk::<WINDOW>()
}

/// The text of a string whose length byte is at `at` (1 or 2) in the window, if it is at
/// most 16 bytes long and ASCII.
#[inline(always)]
pub(crate) fn window_str(w: &[u8; WINDOW], at: usize) -> Option<&str> {
    let text: &[u8; 16] = w.get(at + 1..at + 17)?.try_into().ok()?;
    crate::wire::ascii_prefix(text, usize::from(w[at]))
}

/// Base type codes with a wire form ([`BaseType::from_code`] succeeds).
const KNOWN_TYPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < BaseType::ALL.len() {
        t[BaseType::ALL[i].code() as usize] = true;
        i += 1;
    }
    t
};

/// Checks the field definition at `pos` (marker 1, name, description, type, aspect count)
/// when name and description are ASCII of at most 16 bytes (and at most `max_string`), the
/// type is known and there are no aspects; returns the position after it. `None` otherwise:
/// the caller then reads the field with the general reader.
#[inline]
fn field_fast(buf: &[u8], pos: usize, max_string: usize) -> Option<usize> {
    let w = window(buf, pos)?;
    if w[0] != 1 {
        return None;
    }
    let name = window_str(w, 1)?;
    let at = pos + 2 + name.len();
    let w = window(buf, at)?;
    // Description length byte at 0; then type and aspect count (3 bytes).
    let description = if w[0] == 0 { "" } else { window_str(w, 0)? };
    if name.len() > max_string || description.len() > max_string {
        return None;
    }
    let d = 1 + description.len();
    let [t, hi, lo] = *w.get(d..d + 3)?.first_chunk::<3>()?;
    if !KNOWN_TYPE[usize::from(t)] || hi != 0 || lo != 0 {
        return None;
    }
    Some(at + d + 3)
}

/// Checks the cell (type byte and value) at `pos` and returns the position after it, for the
/// common cases: fixed-size values, STRING with a one-byte length, and a VARIANT of one of
/// those. `None` for anything else or any check that fails: the caller then runs the general
/// validator, which gives the exact result or error. `Some` only where that validator
/// succeeds and ends at the same position.
#[inline(always)]
fn skip_fast(buf: &[u8], pos: usize, max_string: usize, variant_ok: bool) -> Option<usize> {
    if let Some(w) = window(buf, pos) {
        // One bounds check for the whole cell.
        let t = w[0];
        let size = usize::from(SMALL[usize::from(t)]);
        if size != 0 {
            return Some(pos + size);
        }
        match t {
            STRING => {
                if let Some(s) = window_str(w, 1) {
                    if s.len() <= max_string {
                        return Some(pos + 2 + s.len());
                    }
                }
            }
            VARIANT if variant_ok => {
                let size = usize::from(SMALL[usize::from(w[1])]);
                if size != 0 {
                    return Some(pos + 1 + size);
                }
                if w[1] == STRING {
                    if let Some(s) = window_str(w, 2) {
                        if s.len() <= max_string {
                            return Some(pos + 3 + s.len());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    skip_fast_tail(buf, pos, max_string, variant_ok)
}

/// [`skip_fast`] near the end of the input, and for strings the window does not cover.
#[inline(never)]
fn skip_fast_tail(buf: &[u8], pos: usize, max_string: usize, variant_ok: bool) -> Option<usize> {
    let t = *buf.get(pos)?;
    let size = usize::from(FIXED[usize::from(t)]);
    if size != 0 {
        let next = pos + size;
        return if next <= buf.len() { Some(next) } else { None };
    }
    match t {
        STRING => skip_short_str(buf, pos + 1, max_string),
        VARIANT if variant_ok => {
            let inner = *buf.get(pos + 1)?;
            let size = usize::from(FIXED[usize::from(inner)]);
            if size != 0 {
                let next = pos + 1 + size;
                if next <= buf.len() { Some(next) } else { None }
            } else if inner == STRING {
                skip_short_str(buf, pos + 2, max_string)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Checks a string whose length byte is at `at` if that length is below 128 and at most
/// `max_string`, the bytes are present and UTF-8; returns the position after it.
#[inline(always)]
fn skip_short_str(buf: &[u8], at: usize, max_string: usize) -> Option<usize> {
    let len = usize::from(*buf.get(at)?);
    if len >= 0x80 || len > max_string {
        return None;
    }
    let end = at + 1 + len;
    let s = buf.get(at + 1..end)?;
    crate::wire::utf8(s).map(|_| end)
}

/// Position after the validated value at `pos` (never fails on validated bytes; on anything
/// else it returns the end of `buf`).
#[inline]
fn skip_trusted(buf: &[u8], pos: usize) -> usize {
    let Some(&t) = buf.get(pos) else {
        return buf.len();
    };
    let size = usize::from(FIXED[usize::from(t)]);
    if size != 0 {
        return (pos + size).min(buf.len());
    }
    match (t, buf.get(pos + 1)) {
        (STRING, Some(&len)) if len < 0x80 => (pos + 2 + usize::from(len)).min(buf.len()),
        (VARIANT, Some(&inner)) if FIXED[usize::from(inner)] != 0 => {
            (pos + 1 + usize::from(FIXED[usize::from(inner)])).min(buf.len())
        }
        _ => skip_slow(buf, pos),
    }
}

#[inline(never)]
fn skip_slow(buf: &[u8], pos: usize) -> usize {
    match buf.get(pos) {
        Some(&INFOTABLE) => InfoTableView::scan_trusted(buf, pos + 1).1,
        Some(&VARIANT) => skip_trusted(buf, pos + 1),
        _ => {
            let mut r = Reader::new(buf);
            r.seek(pos);
            match PrimitiveRef::skip(&mut r, &UNLIMITED, 0) {
                Ok(()) => r.position(),
                Err(_) => buf.len(),
            }
        }
    }
}

/// The validated value at `pos` and the position after it (NOTHING and the end of `buf` on
/// bytes that do not hold one, which validation rules out).
#[inline(always)]
fn cell_trusted(buf: &[u8], pos: usize) -> (PrimitiveRef<'_>, usize) {
    if let Some(w) = window(buf, pos) {
        let [t, a, b, c, d, e, f, g, h] = *w.first_chunk::<9>().unwrap_or(&[0xFF; 9]);
        let be8 = [a, b, c, d, e, f, g, h];
        match t {
            STRING => {
                if let Some(s) = window_str(w, 1) {
                    return (PrimitiveRef::String(s), pos + 2 + s.len());
                }
            }
            1 => return (PrimitiveRef::Number(f64::from_be_bytes(be8)), pos + 9),
            2 => return (PrimitiveRef::Boolean(a != 0), pos + 2),
            3 => return (PrimitiveRef::DateTime(i64::from_be_bytes(be8)), pos + 9),
            22 => {
                return (
                    PrimitiveRef::Integer(i32::from_be_bytes([a, b, c, d])),
                    pos + 5,
                );
            }
            23 => return (PrimitiveRef::Long(i64::from_be_bytes(be8)), pos + 9),
            0xFF => return (PrimitiveRef::Nothing, pos + 1),
            VARIANT => {
                let size = usize::from(SMALL[usize::from(a)]);
                if size != 0 {
                    if let Some(raw) = w.get(1..1 + size) {
                        return (PrimitiveRef::Variant(VariantRef { raw }), pos + 1 + size);
                    }
                }
            }
            _ => {}
        }
    }
    cell_slow(buf, pos)
}

#[inline(never)]
fn cell_slow(buf: &[u8], pos: usize) -> (PrimitiveRef<'_>, usize) {
    let Some(&t) = buf.get(pos) else {
        return (PrimitiveRef::Nothing, buf.len());
    };
    let size = usize::from(SMALL[usize::from(t)]);
    if size != 0 {
        // A fixed-size value too close to the end for the window.
        let end = pos + size;
        if let Some(v) = buf.get(pos + 1..end) {
            let be8 = || {
                let mut a = [0u8; 8];
                a.copy_from_slice(v.get(..8).unwrap_or(&[0; 8]));
                a
            };
            let cell = match t {
                1 => PrimitiveRef::Number(f64::from_be_bytes(be8())),
                2 => PrimitiveRef::Boolean(v.first().is_some_and(|&b| b != 0)),
                3 => PrimitiveRef::DateTime(i64::from_be_bytes(be8())),
                22 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(v.get(..4).unwrap_or(&[0; 4]));
                    PrimitiveRef::Integer(i32::from_be_bytes(a))
                }
                23 => PrimitiveRef::Long(i64::from_be_bytes(be8())),
                _ => PrimitiveRef::Nothing,
            };
            return (cell, end);
        }
    }
    match t {
        STRING => {
            // A string too close to the end for the window, or longer than 16 bytes.
            let start = str_start(buf, pos + 1);
            let end = skip_str_trusted(buf, pos + 1);
            let s = buf.get(start..end).and_then(crate::wire::utf8);
            (PrimitiveRef::String(s.unwrap_or("")), end)
        }
        INFOTABLE => {
            let (t, end) = InfoTableView::scan_trusted(buf, pos + 1);
            (PrimitiveRef::InfoTable(Box::new(t)), end)
        }
        VARIANT => {
            let end = skip_trusted(buf, pos + 1);
            let raw = buf.get(pos + 1..end).unwrap_or(&[0xFF]);
            (PrimitiveRef::Variant(VariantRef { raw }), end)
        }
        _ => {
            let mut r = Reader::new(buf);
            r.seek(pos);
            match PrimitiveRef::read(&mut r, &UNLIMITED, 0) {
                Ok(p) => (p, r.position()),
                Err(_) => (PrimitiveRef::Nothing, buf.len()),
            }
        }
    }
}

/// Row header (marker 1, cell count) at `pos` of validated bytes: the count and the position
/// of the first cell.
#[inline(always)]
fn row_header(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    match buf.get(pos..pos + 3)? {
        &[1, hi, lo] => Some((usize::from(u16::from_be_bytes([hi, lo])), pos + 3)),
        _ => None,
    }
}

/// The validated DataShape at `start` of `buf`: the position of the first row marker and the
/// number of fields.
fn scan_fields_trusted(buf: &[u8], start: usize) -> (usize, usize) {
    let mut pos = start;
    let mut field_count = 0usize;
    while buf.get(pos) == Some(&1) {
        pos = skip_str_trusted(buf, pos + 1);
        pos = skip_str_trusted(buf, pos);
        let aspects = match buf.get(pos + 1..pos + 3) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        };
        pos += 3;
        for _ in 0..aspects {
            pos = skip_str_trusted(buf, pos);
            pos = skip_trusted(buf, pos);
        }
        field_count += 1;
    }
    ((pos + 1).min(buf.len()), field_count)
}

/// Positions of several fields by name in a validated DataShape (`shape` starts at the first
/// field marker and holds `field_count` fields).
fn field_positions_in<const N: usize>(
    shape: &[u8],
    field_count: usize,
    names: [&str; N],
) -> [Option<usize>; N] {
    let mut found = [None; N];
    let mut pos = 0;
    for i in 0..field_count {
        let name_end = skip_str_trusted(shape, pos + 1);
        let name = shape
            .get(str_start(shape, pos + 1)..name_end)
            .unwrap_or(&[]);
        for (slot, want) in found.iter_mut().zip(names) {
            if slot.is_none() && name == want.as_bytes() {
                *slot = Some(i);
            }
        }
        pos = skip_str_trusted(shape, name_end);
        let aspects = match shape.get(pos + 1..pos + 3) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        };
        pos += 3;
        for _ in 0..aspects {
            pos = skip_str_trusted(shape, pos);
            pos = skip_trusted(shape, pos);
        }
    }
    found
}

/// Position of the first text byte of the validated string whose length prefix is at `at`.
#[inline]
fn str_start(buf: &[u8], at: usize) -> usize {
    match buf.get(at) {
        Some(&len) if len < 0x80 => at + 1,
        _ => at + 4,
    }
}

/// Position after the validated string whose length prefix is at `at`.
#[inline]
fn skip_str_trusted(buf: &[u8], at: usize) -> usize {
    let end = match buf.get(at) {
        Some(&len) if len < 0x80 => at + 1 + usize::from(len),
        Some(&b0) => match buf.get(at + 1..at + 4) {
            Some(&[b1, b2, b3]) => {
                let len = u32::from_be_bytes([b0 & 0x7F, b1, b2, b3]) as usize;
                (at + 4).saturating_add(len)
            }
            _ => buf.len(),
        },
        None => buf.len(),
    };
    end.min(buf.len())
}

/// Position after `n` validated cells from `pos`.
#[inline]
fn skip_cells(buf: &[u8], mut pos: usize, n: usize) -> usize {
    for _ in 0..n {
        pos = skip_trusted(buf, pos);
    }
    pos
}

/// The rows of an [`InfoTableView`], read lazily.
#[derive(Clone, Debug)]
pub struct RowIter<'a> {
    buf: &'a [u8],
    /// The next row header, or the first cell of the last row returned.
    pos: usize,
    /// Cells of the last row returned, skipped when the next row is asked for.
    pending: usize,
    left: usize,
}

impl<'a> Iterator for RowIter<'a> {
    type Item = RowRef<'a>;

    fn next(&mut self) -> Option<RowRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = skip_cells(self.buf, self.pos, self.pending);
        let Some((len, start)) = row_header(self.buf, at) else {
            self.left = 0;
            return None;
        };
        self.pos = start;
        self.pending = len;
        Some(RowRef {
            buf: self.buf,
            start,
            len,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RowIter<'_> {}

/// One row of an [`InfoTableView`], read lazily.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    buf: &'a [u8],
    start: usize,
    len: usize,
}

impl<'a> RowRef<'a> {
    /// Number of cells (normally the field count).
    pub fn len(&self) -> usize {
        self.len
    }

    /// No cells.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cells in DataShape order.
    pub fn iter(&self) -> CellIter<'a> {
        CellIter {
            buf: self.buf,
            pos: self.start,
            left: self.len,
            rows_left: 0,
        }
    }

    /// The cell at position `i` (cells before it are skipped over).
    pub fn get(&self, i: usize) -> Option<PrimitiveRef<'a>> {
        if i >= self.len {
            return None;
        }
        Some(cell_trusted(self.buf, skip_cells(self.buf, self.start, i)).0)
    }

    /// Position of the first byte of the nested table in cell `i` (after its type byte).
    fn table_start(&self, i: usize) -> Option<usize> {
        if i >= self.len {
            return None;
        }
        let pos = skip_cells(self.buf, self.start, i);
        (self.buf.get(pos) == Some(&INFOTABLE)).then_some(pos + 1)
    }
}

/// Cells read lazily: of one row ([`RowRef::iter`]) or of a whole table in wire order
/// ([`InfoTableView::cells`]).
#[derive(Clone, Debug)]
pub struct CellIter<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Cells left in the current row.
    left: usize,
    /// Rows left after the current one.
    rows_left: usize,
}

impl<'a> Iterator for CellIter<'a> {
    type Item = PrimitiveRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<PrimitiveRef<'a>> {
        while self.left == 0 {
            if self.rows_left == 0 {
                return None;
            }
            self.rows_left -= 1;
            let Some((len, start)) = row_header(self.buf, self.pos) else {
                self.rows_left = 0;
                return None;
            };
            self.left = len;
            self.pos = start;
        }
        self.left -= 1;
        let (cell, next) = cell_trusted(self.buf, self.pos);
        self.pos = next;
        Some(cell)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.rows_left == 0 {
            (self.left, Some(self.left))
        } else {
            (self.left, None)
        }
    }
}

impl<'a> CellIter<'a> {
    /// Skips the cells left in the current row; the position after the row.
    fn finish_row(&mut self) -> usize {
        self.pos = skip_cells(self.buf, self.pos, self.left);
        self.left = 0;
        self.pos
    }
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
        // `raw` passed every check of the caller's limits when the message was decoded, so
        // reading it again cannot fail; NOTHING stands in should it ever do.
        cell_trusted(self.raw, 0).0
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
                Self::skip(r, limits, depth + 1)?;
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

    /// Checks one value (type byte and value) with every check of [`PrimitiveRef::read`], in
    /// the same order and with the same errors, without building it: nested tables are
    /// validated and dropped, which allocates nothing.
    pub(crate) fn skip(
        r: &mut Reader<'a>,
        limits: &Limits,
        depth: usize,
    ) -> Result<(), DecodeError> {
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
            INFOTABLE => {
                check_depth(depth, limits)?;
                InfoTableView::read(r, limits, depth + 1)?;
            }
            18 => {
                check_depth(depth, limits)?;
                Self::skip(r, limits, depth + 1)?;
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
        let row = |i: usize| v.row(i).map(|r| r.iter().collect::<Vec<_>>());
        assert_eq!(row(1), Some(vec![PrimitiveRef::Integer(3)]));
        assert_eq!(row(2), Some(vec![]));
        assert_eq!(v.get(3, "b"), Some(PrimitiveRef::Integer(5)));
        assert_eq!(v.get(1, "b"), None);
        assert!(v.row(4).is_none());
        assert_eq!(v.to_owned(), t);
        // The built cells index the irregular rows the same way.
        let built = v.to_cells();
        assert_eq!(built.row_count(), 4);
        assert_eq!(built.row(1), Some(&[PrimitiveRef::Integer(3)][..]));
        assert_eq!(built.row(2), Some(&[][..]));
        assert_eq!(built.row(4), None);
        assert_eq!(built.cells().len(), 6);
        for (i, r) in built.rows().enumerate() {
            assert_eq!(row(i).unwrap(), r.to_vec());
        }
        assert_eq!(v.cells().collect::<Vec<_>>(), built.cells().to_vec());
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
            v.value("values").map(|p| p.base_type()),
            Some(BaseType::InfoTable)
        );
        let outer = v.value("values").unwrap();
        let inner = outer.as_infotable().unwrap();
        assert_eq!(inner.get(1, "value").and_then(|p| p.as_str()), Some("x"));
        assert_eq!(inner.get(0, "value").and_then(|p| p.as_f64()), Some(1.5));
        assert_eq!(inner.index_of("quality"), Some(3));
        assert_eq!(inner.index_of("nope"), None);
        let names: Vec<&str> = inner.fields().map(|f| f.name).collect();
        assert_eq!(names, ["name", "value", "time", "quality"]);
        assert_eq!(inner.field_count(), 4);
        assert_eq!(InfoTableView::default().to_owned(), InfoTable::default());
        assert_eq!(InfoTableView::default().rows().len(), 0);
        // The wire bytes of the table are kept: decoding them again gives the same view.
        assert_eq!(
            decode_infotable(v.as_bytes(), &Limits::default()).unwrap(),
            v
        );
        assert!(format!("{v:?}").contains("quality"));
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
