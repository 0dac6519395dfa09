//! Byte-level reading and writing: big-endian integers and the AlwaysOn string (§2.3).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};

/// A cursor over borrowed input. Every read checks the remaining length first.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The whole input (for hot loops that track the position themselves).
    #[inline]
    pub(crate) fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// Moves to `pos`, a position previously read from this reader (never past the end).
    #[inline]
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    #[inline]
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    #[inline]
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::Truncated(what)),
        }
    }

    #[inline]
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    #[inline]
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    #[inline]
    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    #[inline]
    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_be_bytes(self.array(what)?))
    }

    /// Raw string bytes: 1-byte length below 128, else 4-byte BE length with bit 31 set.
    #[inline]
    pub(crate) fn str_bytes(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let first = self.u8(what)?;
        let len = if first & 0x80 == 0 {
            usize::from(first)
        } else {
            let rest: [u8; 3] = self.array(what)?;
            u32::from_be_bytes([first & 0x7F, rest[0], rest[1], rest[2]]) as usize
        };
        if len > max {
            return Err(DecodeError::TooLarge { what, len, max });
        }
        self.bytes(len, what)
    }

    /// A string of at most 16 ASCII bytes (and at most `max`), read with one bounds check
    /// when 17 bytes are readable; `None` (nothing consumed) otherwise, and the caller reads
    /// it with [`Reader::str_bytes`], which gives the same string or the exact error.
    #[inline(always)]
    pub(crate) fn short_str(&mut self, max: usize) -> Option<&'a str> {
        let w = self.buf.get(self.pos..)?.first_chunk::<17>()?;
        let len = usize::from(w[0]);
        if len > max {
            return None;
        }
        let text: &'a [u8; 16] = w.last_chunk::<16>()?;
        let s = ascii_prefix(text, len)?;
        self.pos += 1 + len;
        Some(s)
    }

    /// A string (§2.3), UTF-8 checked, at most `max` bytes.
    #[inline]
    pub(crate) fn string(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        if let Some(s) = self.short_str(max) {
            return Ok(s.to_owned());
        }
        let raw = self.str_bytes(max, what)?;
        match utf8(raw) {
            Some(s) => Ok(s.to_owned()),
            None => Err(DecodeError::InvalidUtf8(what)),
        }
    }

    /// A u32 BE length (no marker bit) followed by raw bytes: BLOB and IMAGE.
    #[inline]
    pub(crate) fn blob(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLarge { what, len, max });
        }
        Ok(self.bytes(len, what)?.to_vec())
    }
}

/// The bytes as `&str` if they are UTF-8.
///
/// Wire strings are nearly always short ASCII (names, qualities, ids). For those, the inlined
/// word-at-a-time `is_ascii` check replaces a call to the general validator, which costs
/// 50-100 instructions for a 10-byte string; anything else goes to `std::str::from_utf8`.
#[inline(always)]
pub(crate) fn utf8(b: &[u8]) -> Option<&str> {
    match ascii(b) {
        Some(s) => Some(s),
        None => std::str::from_utf8(b).ok(),
    }
}

/// The bytes as `&str` if they are all ASCII (inlined word-at-a-time check).
#[inline(always)]
pub(crate) fn ascii(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: every byte is below 0x80, and a sequence of ASCII bytes is valid UTF-8.
        // This and `ascii_prefix` are the crate's only unsafe code.
        #[allow(unsafe_code)]
        let s = unsafe { std::str::from_utf8_unchecked(b) };
        Some(s)
    } else {
        None
    }
}

/// The first `len` bytes of `w` as `&str` if `len` is at most 16 and they are all ASCII.
///
/// Names, qualities and short values are nearly always ASCII and at most 16 bytes: one
/// 16-byte load, one AND and one trailing-zero count instead of a loop.
#[inline(always)]
pub(crate) fn ascii_prefix(w: &[u8; 16], len: usize) -> Option<&str> {
    // Little-endian: byte i is bits 8i..8i+7 and its high bit is bit 8i+7, so the lowest
    // set high bit belongs to the first non-ASCII byte (128 trailing zeros: there is none).
    let high = u128::from_le_bytes(*w) & 0x8080_8080_8080_8080_8080_8080_8080_8080;
    if (high.trailing_zeros() as usize >> 3) < len {
        return None;
    }
    let b = w.get(..len)?;
    // SAFETY: every one of these `len` bytes is below 0x80 (checked just above), and a
    // sequence of ASCII bytes is valid UTF-8 (the same argument as in `ascii`).
    #[allow(unsafe_code)]
    let s = unsafe { std::str::from_utf8_unchecked(b) };
    Some(s)
}

/// Largest string length the 31-bit prefix can carry.
const MAX_WIRE_STRING: usize = 0x7FFF_FFFF;

/// Writes the length prefix and the bytes of a string.
#[inline]
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    put_str_bytes(out, s.as_bytes())
}

#[inline]
pub(crate) fn put_str_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), EncodeError> {
    let len = b.len();
    if len < 128 {
        out.reserve(1 + len);
        out.put_u8(len as u8);
    } else if len <= MAX_WIRE_STRING {
        out.reserve(4 + len);
        out.put_u32(len as u32 | 0x8000_0000);
    } else {
        return Err(EncodeError::TooMany {
            what: "string length",
            len,
            max: MAX_WIRE_STRING,
        });
    }
    out.put_slice(b);
    Ok(())
}

/// Writes a u32 length without marker bit and the bytes (BLOB, IMAGE).
pub(crate) fn put_blob(out: &mut Vec<u8>, b: &[u8]) -> Result<(), EncodeError> {
    let len = u32::try_from(b.len()).map_err(|_| EncodeError::TooMany {
        what: "blob length",
        len: b.len(),
        max: u32::MAX as usize,
    })?;
    out.reserve(4 + b.len());
    out.put_u32(len);
    out.put_slice(b);
    Ok(())
}

/// A count as u8, or an error naming it.
pub(crate) fn count_u8(n: usize, what: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(n).map_err(|_| EncodeError::TooMany {
        what,
        len: n,
        max: u8::MAX as usize,
    })
}

/// A count as u16, or an error naming it.
pub(crate) fn count_u16(n: usize, what: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::TooMany {
        what,
        len: n,
        max: u16::MAX as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_strings() {
        let mut out = Vec::new();
        put_str(&mut out, "Hello World").unwrap();
        assert_eq!(&out[..], b"\x0bHello World");
        let mut out = Vec::new();
        put_str(&mut out, &"x".repeat(127)).unwrap();
        assert_eq!(out[0], 127);
        let mut out = Vec::new();
        put_str(&mut out, &"x".repeat(128)).unwrap();
        assert_eq!(&out[..4], &[0x80, 0, 0, 128]);
        let long = "x".repeat(200);
        let mut out = Vec::new();
        put_str(&mut out, &long).unwrap();
        assert_eq!(&out[..4], &[0x80, 0, 0, 200]);
        let mut r = Reader::new(&out);
        assert_eq!(r.string(1000, "s").unwrap(), long);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn string_limits_and_truncation() {
        let mut r = Reader::new(&[0x80, 0, 0, 200, b'x']);
        assert!(matches!(
            r.string(100, "s"),
            Err(DecodeError::TooLarge { len: 200, .. })
        ));
        let mut r = Reader::new(&[0x80, 0, 0, 200, b'x']);
        assert_eq!(r.string(1000, "s"), Err(DecodeError::Truncated("s")));
        let mut r = Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(r.string(usize::MAX, "s").is_err());
        let mut r = Reader::new(&[2, 0xC3, 0x28]);
        assert_eq!(r.string(10, "s"), Err(DecodeError::InvalidUtf8("s")));
        let mut r = Reader::new(&[1, 0x80]);
        assert_eq!(r.string(10, "s"), Err(DecodeError::InvalidUtf8("s")));
        let mut r = Reader::new(&[3, b'a', 0xC3, 0xA9]);
        assert_eq!(r.string(10, "s").unwrap(), "aé");
    }

    #[test]
    fn utf8_fast_path_agrees_with_std() {
        let samples: [&[u8]; 7] = [
            b"",
            b"GOOD",
            b"0123456789abcdefXYZ",
            &[0x7F; 40],
            &[b'a', 0xFF],
            &[0xE2, 0x82, 0xAC],
            &[0xED, 0xA0, 0x80],
        ];
        for s in samples {
            assert_eq!(utf8(s), std::str::from_utf8(s).ok());
            assert_eq!(ascii(s).is_some(), s.is_ascii());
        }
    }

    #[test]
    fn ascii_prefix_is_exact() {
        // Every length up to 16 with a non-ASCII byte at every position, inside and past
        // the string.
        for len in 0..=16usize {
            for bad in 0..=16usize {
                let mut w = [b'a'; 16];
                if bad < 16 {
                    w[bad] = 0xC3;
                }
                let s = &w[..len];
                let want = s.is_ascii().then_some(s);
                assert_eq!(
                    ascii_prefix(&w, len).map(str::as_bytes),
                    want,
                    "{len} {bad}"
                );
            }
        }
        assert_eq!(
            ascii_prefix(&[0x7F; 16], 16),
            Some("\x7F".repeat(16).as_str())
        );
        assert_eq!(ascii_prefix(&[b'a'; 16], 17), None);
        assert_eq!(ascii_prefix(&[0x80; 16], 0), Some(""));
    }
}
