//! Decode and encode errors.

use crate::code::Code;

/// Why bytes (binary or JSON) could not be turned into a message or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of the named item.
    #[error("input truncated while reading {0}")]
    Truncated(&'static str),
    /// The header's version byte is not 1.
    #[error("unsupported AlwaysOn version {0}")]
    BadVersion(u8),
    /// A message code that is neither request, bind, auth, keep-alive nor response.
    #[error("unknown message code 0x{0:02x}")]
    UnknownCode(u8),
    /// A base type code with no known wire form (TIMESPAN, THINGCODE, unassigned codes).
    #[error("unsupported base type code {0}")]
    UnsupportedType(u8),
    /// A base type name (JSON form) that is unknown or has no wire form.
    #[error("unsupported base type name {0:?}")]
    UnsupportedTypeName(String),
    /// A marker byte with a value the format does not allow.
    #[error("invalid {what} marker 0x{value:02x}")]
    BadMarker {
        /// Which marker.
        what: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A string that is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A length or count beyond a [`crate::Limits`] bound.
    #[error("{what} of {len} exceeds the limit of {max}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The length or count found.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// InfoTables or variants nested deeper than the limit.
    #[error("values nested deeper than {0} levels")]
    TooDeep(usize),
    /// A multipart chunk was given to a decoder of whole messages (use the reassembler).
    #[error("multipart chunk where a whole message was expected")]
    UnexpectedChunk,
    /// A multipart marker other than 0 or 1, or chunk numbers out of range.
    #[error("invalid chunk {id} of {count}")]
    BadChunk {
        /// chunkId found.
        id: u16,
        /// chunkCount found.
        count: u16,
    },
    /// A chunk whose code, count or entity disagrees with earlier chunks of the same request id,
    /// or that was received twice.
    #[error("chunk of request {0} disagrees with earlier chunks")]
    ChunkMismatch(u32),
    /// Too many incomplete multipart messages at once.
    #[error("too many incomplete multipart messages (limit {0})")]
    TooManyPending(usize),
    /// An InfoTable that lacks the fields a convention needs (e.g. a property push without `name`).
    #[error("unexpected InfoTable shape: {0}")]
    Shape(String),
    /// A JSON InfoTable that does not have the expected form.
    #[error("invalid JSON InfoTable: {0}")]
    Json(String),
}

impl DecodeError {
    /// The AlwaysOn response code to answer a request that failed with this error.
    pub fn response_code(&self) -> Code {
        match self {
            DecodeError::TooLarge { .. } | DecodeError::TooDeep(_) => Code::ENTITY_TOO_LARGE,
            DecodeError::UnsupportedType(_) | DecodeError::UnsupportedTypeName(_) => {
                Code::UNSUPPORTED_CONTENT_FORMAT
            }
            DecodeError::TooManyPending(_) => Code::SERVICE_UNAVAILABLE,
            _ => Code::BAD_REQUEST,
        }
    }
}

/// Why a message could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A count or length does not fit its wire field (e.g. more than 255 AUTH claims).
    #[error("{what} of {len} does not fit its wire field (max {max})")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count.
        len: usize,
        /// The wire maximum.
        max: usize,
    },
    /// The chunk size cannot hold the headers and at least one body byte, or exceeds 65535.
    #[error("chunk size {0} is unusable for this message")]
    BadChunkSize(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_for_errors() {
        let big = DecodeError::TooLarge {
            what: "string",
            len: 9,
            max: 1,
        };
        assert_eq!(big.response_code(), Code::ENTITY_TOO_LARGE);
        assert_eq!(
            DecodeError::UnsupportedType(4).response_code(),
            Code::UNSUPPORTED_CONTENT_FORMAT
        );
        assert_eq!(
            DecodeError::Truncated("x").response_code(),
            Code::BAD_REQUEST
        );
        assert!(big.to_string().contains("limit of 1"));
    }
}
