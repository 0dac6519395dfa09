//! [`Primitive`]: one value, as an InfoTable cell, an aspect or a VARIANT (§3.1, §3.2).

use bytes::{BufMut, BytesMut};

use crate::basetype::{BaseType, TextKind};
use crate::error::{DecodeError, EncodeError};
use crate::infotable::InfoTable;
use crate::limits::Limits;
use crate::wire::{Reader, put_blob, put_str};

/// A LOCATION value. On the wire: longitude, latitude, elevation as f64 BE.
#[derive(Clone, Copy, Debug, Default)]
pub struct Location {
    /// Degrees east.
    pub longitude: f64,
    /// Degrees north.
    pub latitude: f64,
    /// Metres.
    pub elevation: f64,
}

impl PartialEq for Location {
    /// Bitwise float comparison, so NaN equals itself (what a codec round trip needs).
    fn eq(&self, o: &Self) -> bool {
        self.longitude.to_bits() == o.longitude.to_bits()
            && self.latitude.to_bits() == o.latitude.to_bits()
            && self.elevation.to_bits() == o.elevation.to_bits()
    }
}

/// A typed value; the same model serves the binary and the JSON forms.
///
/// Equality compares floats bitwise (NaN == NaN, 0.0 != -0.0).
#[derive(Clone, Debug)]
pub enum Primitive {
    /// NOTHING: no value (also used for a missing JSON cell).
    Nothing,
    /// STRING.
    String(String),
    /// Any other string-family type (XML, JSON, PASSWORD, THINGNAME, …).
    Text(TextKind, String),
    /// NUMBER (f64).
    Number(f64),
    /// BOOLEAN.
    Boolean(bool),
    /// DATETIME: milliseconds since the Unix epoch (u64 BE on the wire, same bits).
    DateTime(i64),
    /// INFOTABLE (nested).
    InfoTable(Box<InfoTable>),
    /// LOCATION.
    Location(Location),
    /// IMAGE bytes.
    Image(Vec<u8>),
    /// BLOB bytes.
    Blob(Vec<u8>),
    /// VARIANT: a value that carries its own type.
    Variant(Box<Primitive>),
    /// INTEGER (i32).
    Integer(i32),
    /// LONG (i64, a Tether decision for code 23).
    Long(i64),
}

impl PartialEq for Primitive {
    fn eq(&self, o: &Self) -> bool {
        use Primitive as P;
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

impl Primitive {
    /// A string-family value of the given type (STRING gives [`Primitive::String`]);
    /// `None` if `base` is not in the string family.
    pub fn text(base: BaseType, value: impl Into<String>) -> Option<Primitive> {
        if base == BaseType::String {
            return Some(Primitive::String(value.into()));
        }
        TextKind::new(base).map(|k| Primitive::Text(k, value.into()))
    }

    /// A VARIANT wrapping `inner`.
    pub fn variant(inner: Primitive) -> Primitive {
        Primitive::Variant(Box::new(inner))
    }

    /// The base type this value is written as.
    pub fn base_type(&self) -> BaseType {
        match self {
            Primitive::Nothing => BaseType::Nothing,
            Primitive::String(_) => BaseType::String,
            Primitive::Text(k, _) => k.base_type(),
            Primitive::Number(_) => BaseType::Number,
            Primitive::Boolean(_) => BaseType::Boolean,
            Primitive::DateTime(_) => BaseType::DateTime,
            Primitive::InfoTable(_) => BaseType::InfoTable,
            Primitive::Location(_) => BaseType::Location,
            Primitive::Image(_) => BaseType::Image,
            Primitive::Blob(_) => BaseType::Blob,
            Primitive::Variant(_) => BaseType::Variant,
            Primitive::Integer(_) => BaseType::Integer,
            Primitive::Long(_) => BaseType::Long,
        }
    }

    /// The text of any string-family value (looking through a VARIANT).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Primitive::String(s) | Primitive::Text(_, s) => Some(s),
            Primitive::Variant(v) => v.as_str(),
            _ => None,
        }
    }

    /// A numeric value as f64 (NUMBER, INTEGER, LONG, DATETIME; looking through a VARIANT).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Primitive::Number(n) => Some(*n),
            Primitive::Integer(i) => Some(f64::from(*i)),
            Primitive::Long(l) | Primitive::DateTime(l) => Some(*l as f64),
            Primitive::Variant(v) => v.as_f64(),
            _ => None,
        }
    }

    /// A BOOLEAN (looking through a VARIANT).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Primitive::Boolean(b) => Some(*b),
            Primitive::Variant(v) => v.as_bool(),
            _ => None,
        }
    }

    /// A nested InfoTable (looking through a VARIANT).
    pub fn as_infotable(&self) -> Option<&InfoTable> {
        match self {
            Primitive::InfoTable(t) => Some(t),
            Primitive::Variant(v) => v.as_infotable(),
            _ => None,
        }
    }

    /// Appends type byte and value.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut v = Vec::with_capacity(16);
        self.encode_vec(&mut v)?;
        out.extend_from_slice(&v);
        Ok(())
    }

    /// Appends type byte and value to a `Vec`.
    pub fn encode_vec(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.put_u8(self.base_type().code());
        self.encode_value(out)
    }

    /// Writes the value alone (no type byte).
    pub(crate) fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Primitive::Nothing => {}
            Primitive::String(s) | Primitive::Text(_, s) => put_str(out, s)?,
            Primitive::Number(n) => out.put_f64(*n),
            Primitive::Boolean(b) => out.put_u8(u8::from(*b)),
            Primitive::DateTime(ms) | Primitive::Long(ms) => out.put_i64(*ms),
            Primitive::InfoTable(t) => t.encode_vec(out)?,
            Primitive::Location(l) => {
                out.put_f64(l.longitude);
                out.put_f64(l.latitude);
                out.put_f64(l.elevation);
            }
            Primitive::Image(b) | Primitive::Blob(b) => put_blob(out, b)?,
            Primitive::Variant(v) => v.encode_vec(out)?,
            Primitive::Integer(i) => out.put_i32(*i),
        }
        Ok(())
    }

    /// Reads type byte and value from `input`; the whole input must be used.
    pub fn decode(input: &[u8], limits: &Limits) -> Result<Primitive, DecodeError> {
        let mut r = Reader::new(input);
        let p = Self::read(&mut r, limits, 0)?;
        match r.remaining() {
            0 => Ok(p),
            _ => Err(DecodeError::BadMarker {
                what: "trailing byte after value",
                value: r.rest()[0],
            }),
        }
    }

    /// Reads type byte and value. The common scalar types are decoded inline (this is the
    /// per-cell hot path); the rest go through `read_value`.
    #[inline(always)]
    pub(crate) fn read(
        r: &mut Reader<'_>,
        limits: &Limits,
        depth: usize,
    ) -> Result<Primitive, DecodeError> {
        Ok(match r.u8("value type")? {
            0 => Primitive::String(r.string(limits.max_string, "string value")?),
            1 => Primitive::Number(r.f64("NUMBER")?),
            2 => Primitive::Boolean(r.u8("BOOLEAN")? != 0),
            3 => Primitive::DateTime(r.i64("DATETIME")?),
            22 => Primitive::Integer(r.u32("INTEGER")? as i32),
            23 => Primitive::Long(r.i64("LONG")?),
            0xFF => Primitive::Nothing,
            code => Self::read_value(BaseType::from_code(code)?, r, limits, depth)?,
        })
    }

    #[inline(never)]
    pub(crate) fn read_value(
        t: BaseType,
        r: &mut Reader<'_>,
        limits: &Limits,
        depth: usize,
    ) -> Result<Primitive, DecodeError> {
        Ok(match t {
            BaseType::Nothing => Primitive::Nothing,
            BaseType::String => Primitive::String(r.string(limits.max_string, "string value")?),
            BaseType::Number => Primitive::Number(r.f64("NUMBER")?),
            BaseType::Boolean => Primitive::Boolean(r.u8("BOOLEAN")? != 0),
            BaseType::DateTime => Primitive::DateTime(r.i64("DATETIME")?),
            BaseType::InfoTable => {
                check_depth(depth, limits)?;
                Primitive::InfoTable(Box::new(InfoTable::read(r, limits, depth + 1)?))
            }
            BaseType::Location => Primitive::Location(Location {
                longitude: r.f64("LOCATION")?,
                latitude: r.f64("LOCATION")?,
                elevation: r.f64("LOCATION")?,
            }),
            BaseType::Image => Primitive::Image(r.blob(limits.max_string, "IMAGE")?),
            BaseType::Blob => Primitive::Blob(r.blob(limits.max_string, "BLOB")?),
            BaseType::Variant => {
                check_depth(depth, limits)?;
                Primitive::Variant(Box::new(Self::read(r, limits, depth + 1)?))
            }
            BaseType::Integer => Primitive::Integer(r.u32("INTEGER")? as i32),
            BaseType::Long => Primitive::Long(r.i64("LONG")?),
            other => match TextKind::new(other) {
                Some(k) => Primitive::Text(k, r.string(limits.max_string, "string value")?),
                None => return Err(DecodeError::UnsupportedType(other.code())),
            },
        })
    }
}

pub(crate) fn check_depth(depth: usize, limits: &Limits) -> Result<(), DecodeError> {
    if depth + 1 >= limits.max_depth {
        Err(DecodeError::TooDeep(limits.max_depth))
    } else {
        Ok(())
    }
}

impl From<&str> for Primitive {
    fn from(s: &str) -> Self {
        Primitive::String(s.to_owned())
    }
}
impl From<String> for Primitive {
    fn from(s: String) -> Self {
        Primitive::String(s)
    }
}
impl From<f64> for Primitive {
    fn from(n: f64) -> Self {
        Primitive::Number(n)
    }
}
impl From<bool> for Primitive {
    fn from(b: bool) -> Self {
        Primitive::Boolean(b)
    }
}
impl From<i32> for Primitive {
    fn from(i: i32) -> Self {
        Primitive::Integer(i)
    }
}
impl From<i64> for Primitive {
    fn from(i: i64) -> Self {
        Primitive::Long(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(p: &Primitive) -> Vec<u8> {
        let mut b = BytesMut::new();
        p.encode(&mut b).unwrap();
        b.to_vec()
    }

    #[test]
    fn wire_forms() {
        assert_eq!(enc(&Primitive::Number(22.5)), hex("014036800000000000"));
        assert_eq!(
            enc(&Primitive::variant(Primitive::Number(22.0))),
            hex("12014036000000000000")
        );
        assert_eq!(enc(&Primitive::Integer(20000)), hex("1600004e20"));
        assert_eq!(enc(&Primitive::Long(-2)), hex("17fffffffffffffffe"));
        assert_eq!(enc(&Primitive::Blob(vec![1, 2])), hex("15000000020102"));
        assert_eq!(enc(&Primitive::Nothing), hex("ff"));
        assert_eq!(
            enc(&Primitive::Text(TextKind::JSON, "{}".into())),
            hex("08027b7d")
        );
        let loc = Primitive::Location(Location {
            longitude: 1.0,
            latitude: 2.0,
            elevation: 0.0,
        });
        let lonlat = Location {
            longitude: 1.0,
            latitude: 2.0,
            elevation: 3.0,
        };
        assert_eq!(
            enc(&Primitive::Location(lonlat)),
            hex("063ff000000000000040000000000000004008000000000000")
        );
        let b = enc(&loc);
        assert_eq!(b.len(), 25);
        assert_eq!(Primitive::decode(&b, &Limits::default()).unwrap(), loc);
    }

    #[test]
    fn nan_equal_and_timespan_rejected() {
        assert_eq!(Primitive::Number(f64::NAN), Primitive::Number(f64::NAN));
        let l = Limits::default();
        assert_eq!(
            Primitive::decode(&hex("04"), &l),
            Err(DecodeError::UnsupportedType(4))
        );
        let deep = vec![0x12u8; 100];
        assert_eq!(
            Primitive::decode(&deep, &l),
            Err(DecodeError::TooDeep(l.max_depth))
        );
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
