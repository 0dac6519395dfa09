//! DataShape and InfoTable, binary form (§3.3).
//!
//! ```text
//! InfoTable := DataShape Row* 0x00
//! DataShape := FieldDef* 0x00
//! FieldDef  := 0x01 name description baseType:u8 aspectCount:u16 (name primitive)*
//! Row       := 0x01 fieldCount:u16 primitive*
//! ```

use bytes::{BufMut, BytesMut};

use crate::basetype::BaseType;
use crate::error::{DecodeError, EncodeError};
use crate::limits::Limits;
use crate::primitive::Primitive;
use crate::view::{window, window_str};
use crate::wire::{Reader, count_u16, put_str};

/// One column of a DataShape.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    /// Field name; rows are looked up by it.
    pub name: String,
    /// Free text, usually empty.
    pub description: String,
    /// Declared type of the column.
    pub base_type: BaseType,
    /// Aspects in wire order (`dataShape`, `isPrimaryKey`, `persist`, …).
    pub aspects: Vec<(String, Primitive)>,
}

impl FieldDef {
    /// A field with no description and no aspects.
    pub fn new(name: impl Into<String>, base_type: BaseType) -> FieldDef {
        FieldDef {
            name: name.into(),
            description: String::new(),
            base_type,
            aspects: Vec::new(),
        }
    }

    /// The value of an aspect by name.
    pub fn aspect(&self, name: &str) -> Option<&Primitive> {
        self.aspects.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// The columns of an InfoTable, in order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DataShape {
    /// Columns in wire order; row cells follow this order.
    pub fields: Vec<FieldDef>,
}

impl DataShape {
    /// Position of a field by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One row: cells in DataShape order. The wire allows a row with fewer or more cells than
/// fields; lookups by name treat a missing cell as absent.
pub type Row = Vec<Primitive>;

/// A table of typed values; the payload of requests and responses.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InfoTable {
    /// The columns.
    pub shape: DataShape,
    /// The rows.
    pub rows: Vec<Row>,
}

impl InfoTable {
    /// An empty table with the given columns.
    pub fn new(fields: Vec<FieldDef>) -> InfoTable {
        InfoTable {
            shape: DataShape { fields },
            rows: Vec::new(),
        }
    }

    /// The cell of `row` in the column named `field` (by DataShape, never by position).
    pub fn get(&self, row: usize, field: &str) -> Option<&Primitive> {
        let i = self.shape.index_of(field)?;
        self.rows.get(row)?.get(i)
    }

    /// The cell of the first row in the column named `field`.
    pub fn value(&self, field: &str) -> Option<&Primitive> {
        self.get(0, field)
    }

    /// Appends the binary form.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut v = Vec::with_capacity(256);
        self.encode_vec(&mut v)?;
        out.extend_from_slice(&v);
        Ok(())
    }

    /// Appends the binary form to a `Vec` (the fast path: no intermediate buffer).
    pub fn encode_vec(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for f in &self.shape.fields {
            out.put_u8(1);
            put_str(out, &f.name)?;
            put_str(out, &f.description)?;
            out.put_u8(f.base_type.code());
            out.put_u16(count_u16(f.aspects.len(), "aspects")?);
            for (name, value) in &f.aspects {
                put_str(out, name)?;
                value.encode_vec(out)?;
            }
        }
        out.put_u8(0);
        for row in &self.rows {
            out.put_u8(1);
            out.put_u16(count_u16(row.len(), "row cells")?);
            for cell in row {
                cell.encode_vec(out)?;
            }
        }
        out.put_u8(0);
        Ok(())
    }

    /// Reads a binary InfoTable that fills the whole input.
    pub fn decode(input: &[u8], limits: &Limits) -> Result<InfoTable, DecodeError> {
        let mut r = Reader::new(input);
        let t = InfoTable::read(&mut r, limits, 0)?;
        match r.remaining() {
            0 => Ok(t),
            _ => Err(DecodeError::BadMarker {
                what: "trailing byte after InfoTable",
                value: r.rest()[0],
            }),
        }
    }

    pub(crate) fn read(
        r: &mut Reader<'_>,
        limits: &Limits,
        depth: usize,
    ) -> Result<InfoTable, DecodeError> {
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
            let name = r.string(limits.max_string, "field name")?;
            let description = r.string(limits.max_string, "field description")?;
            let base_type = BaseType::from_code(r.u8("field type")?)?;
            let n = usize::from(r.u16("aspect count")?);
            if n > limits.max_fields {
                return Err(too_large("aspects", n, limits.max_fields));
            }
            // Each aspect takes at least 2 bytes; never reserve beyond what the input holds.
            let mut aspects = Vec::with_capacity(n.min(r.remaining() / 2));
            for _ in 0..n {
                let an = r.string(limits.max_string, "aspect name")?;
                aspects.push((an, Primitive::read(r, limits, depth)?));
            }
            fields.push(FieldDef {
                name,
                description,
                base_type,
                aspects,
            });
        }
        let mut rows = Vec::new();
        loop {
            match r.u8("row marker")? {
                0 => break,
                1 => {}
                value => return Err(DecodeError::BadMarker { what: "row", value }),
            }
            if rows.len() >= limits.max_rows {
                return Err(too_large("rows", rows.len() + 1, limits.max_rows));
            }
            let n = usize::from(r.u16("row cell count")?);
            if n > limits.max_fields {
                return Err(too_large("row cells", n, limits.max_fields));
            }
            let mut row = Vec::with_capacity(n.min(r.remaining()));
            for _ in 0..n {
                // Common scalar cells straight from the slice; anything else, and every
                // error, through the general reader from the same position.
                match fast_cell(r.buf(), r.position(), limits.max_string) {
                    Some((cell, next)) => {
                        r.seek(next);
                        row.push(cell);
                    }
                    None => row.push(Primitive::read(r, limits, depth)?),
                }
            }
            rows.push(row);
        }
        Ok(InfoTable {
            shape: DataShape { fields },
            rows,
        })
    }
}

/// The cell at `pos` and the position after it, for STRING of at most 16 ASCII bytes (and at
/// most `max_string`) and the fixed-size scalars other than LOCATION, read with one bounds
/// check (see `view::window`). `None` for anything else: the caller uses the general reader,
/// which gives the same value or the exact error.
#[inline(always)]
fn fast_cell(buf: &[u8], pos: usize, max_string: usize) -> Option<(Primitive, usize)> {
    let w = window(buf, pos)?;
    let [t, a, b, c, d, e, f, g, h] = *w.first_chunk::<9>()?;
    let be8 = [a, b, c, d, e, f, g, h];
    Some(match t {
        0 => {
            let s = window_str(w, 1)?;
            if s.len() > max_string {
                return None;
            }
            (Primitive::String(s.to_owned()), pos + 2 + s.len())
        }
        1 => (Primitive::Number(f64::from_be_bytes(be8)), pos + 9),
        2 => (Primitive::Boolean(a != 0), pos + 2),
        3 => (Primitive::DateTime(i64::from_be_bytes(be8)), pos + 9),
        22 => (
            Primitive::Integer(i32::from_be_bytes([a, b, c, d])),
            pos + 5,
        ),
        23 => (Primitive::Long(i64::from_be_bytes(be8)), pos + 9),
        0xFF => (Primitive::Nothing, pos + 1),
        _ => return None,
    })
}

fn too_large(what: &'static str, len: usize, max: usize) -> DecodeError {
    DecodeError::TooLarge { what, len, max }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitive::Location;

    #[test]
    fn lookup_goes_by_shape() {
        let mut t = InfoTable::new(vec![
            FieldDef::new("time", BaseType::DateTime),
            FieldDef::new("Temperature", BaseType::Number),
        ]);
        t.rows
            .push(vec![Primitive::DateTime(5), Primitive::Number(24.0)]);
        assert_eq!(t.value("Temperature"), Some(&Primitive::Number(24.0)));
        assert_eq!(t.value("nope"), None);
        assert_eq!(t.get(1, "time"), None);
    }

    #[test]
    fn nested_round_trip_and_limits() {
        let mut inner = InfoTable::new(vec![FieldDef::new("l", BaseType::Location)]);
        inner
            .rows
            .push(vec![Primitive::Location(Location::default())]);
        let mut outer = InfoTable::new(vec![FieldDef::new("t", BaseType::InfoTable)]);
        outer.shape.fields[0]
            .aspects
            .push(("dataShape".into(), "X".into()));
        outer.rows.push(vec![Primitive::InfoTable(Box::new(inner))]);
        let mut b = BytesMut::new();
        outer.encode(&mut b).unwrap();
        let l = Limits::default();
        assert_eq!(InfoTable::decode(&b, &l).unwrap(), outer);
        let tight = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        assert_eq!(InfoTable::decode(&b, &tight), Err(DecodeError::TooDeep(1)));
        let few = Limits {
            max_rows: 0,
            ..Limits::default()
        };
        assert!(matches!(
            InfoTable::decode(&b, &few),
            Err(DecodeError::TooLarge { what: "rows", .. })
        ));
        assert!(InfoTable::decode(&b[..b.len() - 1], &l).is_err());
    }
}
