//! Bounds on everything read from the wire.

/// Bounds applied while decoding, so hostile input costs bounded memory and time.
///
/// Decoding never reserves more than the remaining input could hold, so memory is at most a
/// small constant factor (the in-memory size of a value over its smallest wire form) times
/// `max_message_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message body accepted, whole or reassembled (C SDK default 1 MiB).
    pub max_message_size: usize,
    /// Longest string, BLOB or IMAGE in bytes.
    pub max_string: usize,
    /// Most rows in one InfoTable.
    pub max_rows: usize,
    /// Most fields in one DataShape, cells in one row, aspects of one field, names in a BIND.
    pub max_fields: usize,
    /// Deepest nesting of InfoTable and VARIANT values (1 = a top-level table, nothing nested).
    pub max_depth: usize,
    /// Most incomplete multipart messages held by one [`crate::Reassembler`].
    pub max_pending: usize,
}

impl Limits {
    /// 1 MiB, the C SDK's `max_message_size` default.
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;
    /// Strings up to the message size.
    pub const DEFAULT_MAX_STRING: usize = 1 << 20;
    /// Rows per InfoTable.
    pub const DEFAULT_MAX_ROWS: usize = 100_000;
    /// Fields per DataShape.
    pub const DEFAULT_MAX_FIELDS: usize = 1_024;
    /// Nesting depth of InfoTables/variants.
    pub const DEFAULT_MAX_DEPTH: usize = 16;
    /// Incomplete multipart messages per connection.
    pub const DEFAULT_MAX_PENDING: usize = 16;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: Self::DEFAULT_MAX_MESSAGE_SIZE,
            max_string: Self::DEFAULT_MAX_STRING,
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_fields: Self::DEFAULT_MAX_FIELDS,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_pending: Self::DEFAULT_MAX_PENDING,
        }
    }
}
