//! Multipart chunking (§2.6, §10.4, §12.14): [`split`] for senders, [`Reassembler`] for receivers.
//!
//! A chunk is the 15-byte header with marker 1, the 6-byte multipart header
//! (chunkId 1-based, chunkCount, configured chunkSize), then for requests the entity prefix
//! (`entityType u8 + entityName string`, repeated in every chunk) and a slice of the body.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::limits::Limits;
use crate::message::{HEADER_LEN, Header, MULTIPART_HEADER_LEN, Message};
use crate::wire::Reader;

const CHUNK_OVERHEAD: usize = HEADER_LEN + MULTIPART_HEADER_LEN;

/// Smallest chunk the reassembler budgets for when bounding chunkCount.
const MIN_CHUNK: usize = 64;

/// Header of one multipart chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// The common header (same in every chunk).
    pub header: Header,
    /// 1-based chunk number.
    pub chunk_id: u16,
    /// Total chunks.
    pub chunk_count: u16,
    /// The sender's configured chunk size (not this chunk's length).
    pub chunk_size: u16,
}

/// Encodes `msg` as one frame if it fits `chunk_size` (body + 21 ≤ chunk_size, the C SDK rule),
/// else as chunks of at most `chunk_size` bytes each (ceil division, so no empty last chunk).
/// Request chunks each carry the entity prefix; the rest of the body is cut into equal slices.
pub fn split(msg: &Message, chunk_size: usize) -> Result<Vec<Bytes>, EncodeError> {
    let mut body = Vec::with_capacity(256);
    msg.encode_body(&mut body)?;
    if body.len() + CHUNK_OVERHEAD <= chunk_size {
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        msg.header.encode(&mut out, false);
        out.put_slice(&body);
        return Ok(vec![Bytes::from(out)]);
    }
    let size_field =
        u16::try_from(chunk_size).map_err(|_| EncodeError::BadChunkSize(chunk_size))?;
    // The receiver decides by code, so the sender does too.
    let prefix_len = if msg.header.code.is_request() {
        entity_prefix_len(&body)
    } else {
        0
    };
    let (prefix, data) = body.split_at(prefix_len);
    let effective = chunk_size
        .checked_sub(CHUNK_OVERHEAD + prefix_len)
        .filter(|&e| e > 0)
        .ok_or(EncodeError::BadChunkSize(chunk_size))?;
    let count = data.len().div_ceil(effective).max(1);
    let count16 = u16::try_from(count).map_err(|_| EncodeError::TooMany {
        what: "chunks",
        len: count,
        max: u16::MAX as usize,
    })?;
    let mut frames = Vec::with_capacity(count);
    for (i, slice) in data.chunks(effective).enumerate() {
        let mut out = Vec::with_capacity(CHUNK_OVERHEAD + prefix_len + slice.len());
        msg.header.encode(&mut out, true);
        out.put_u16(i as u16 + 1);
        out.put_u16(count16);
        out.put_u16(size_field);
        out.put_slice(prefix);
        out.put_slice(slice);
        frames.push(Bytes::from(out));
    }
    Ok(frames)
}

/// Length of `entityType u8 + entityName string` at the start of an encoded request body.
fn entity_prefix_len(body: &[u8]) -> usize {
    let mut r = Reader::new(body);
    match (r.u8("entity type"), r.str_bytes(usize::MAX, "entity name")) {
        (Ok(_), Ok(_)) => r.position(),
        _ => 0,
    }
}

struct Pending {
    header: Header,
    count: u16,
    started: Instant,
    prefix: Vec<u8>,
    parts: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

/// Joins multipart chunks keyed by request id; passes whole messages straight through.
///
/// Memory is bounded by `limits.max_pending` sets of at most `limits.max_message_size` bytes.
/// Time is an argument: call [`Reassembler::expire`] periodically.
pub struct Reassembler {
    limits: Limits,
    timeout: Duration,
    pending: HashMap<u32, Pending>,
}

impl Reassembler {
    /// The C SDK's stale-message cleanup time (5 × default message timeout).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(50);

    /// A reassembler that drops incomplete sets older than `timeout`.
    pub fn new(limits: Limits, timeout: Duration) -> Reassembler {
        Reassembler {
            limits,
            timeout,
            pending: HashMap::new(),
        }
    }

    /// Number of incomplete multipart messages held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Feeds one WebSocket binary message. Returns the message when it is whole, `None` while
    /// chunks are missing. On a chunk error the set for that request id is dropped; the header
    /// (see [`Header::peek`]) and [`DecodeError::response_code`] tell what to answer.
    pub fn push(&mut self, frame: &[u8], now: Instant) -> Result<Option<Message>, DecodeError> {
        let mut r = Reader::new(frame);
        let (header, multipart) = Header::read(&mut r)?;
        if !multipart {
            return Message::decode(frame, &self.limits).map(Some);
        }
        let chunk_id = r.u16("multipart header")?;
        let chunk_count = r.u16("multipart header")?;
        let _chunk_size = r.u16("multipart header")?;
        if chunk_id == 0 || chunk_count == 0 || chunk_id > chunk_count {
            self.pending.remove(&header.request_id);
            return Err(DecodeError::BadChunk {
                id: chunk_id,
                count: chunk_count,
            });
        }
        let max_count = self.limits.max_message_size / MIN_CHUNK + 1;
        if usize::from(chunk_count) > max_count {
            return Err(DecodeError::TooLarge {
                what: "chunk count",
                len: chunk_count.into(),
                max: max_count,
            });
        }
        let prefix: &[u8] = if header.code.is_request() {
            let start = r.position();
            r.u8("chunk entity type")?;
            r.str_bytes(self.limits.max_string, "chunk entity name")?;
            &frame[start..r.position()]
        } else {
            &[]
        };
        let data = r.rest();
        let result = self.add(header, chunk_id, chunk_count, prefix, data, now);
        if result.is_err() {
            self.pending.remove(&header.request_id);
        }
        result
    }

    fn add(
        &mut self,
        header: Header,
        chunk_id: u16,
        count: u16,
        prefix: &[u8],
        data: &[u8],
        now: Instant,
    ) -> Result<Option<Message>, DecodeError> {
        let id = header.request_id;
        if !self.pending.contains_key(&id) && self.pending.len() >= self.limits.max_pending {
            self.expire(now);
            if self.pending.len() >= self.limits.max_pending {
                return Err(DecodeError::TooManyPending(self.limits.max_pending));
            }
        }
        let set = self.pending.entry(id).or_insert_with(|| Pending {
            header,
            count,
            started: now,
            prefix: prefix.to_vec(),
            parts: vec![None; usize::from(count)],
            received: 0,
            bytes: prefix.len(),
        });
        if set.header.code != header.code || set.count != count || set.prefix != prefix {
            return Err(DecodeError::ChunkMismatch(id));
        }
        let slot = &mut set.parts[usize::from(chunk_id - 1)];
        if slot.is_some() {
            return Err(DecodeError::ChunkMismatch(id));
        }
        set.bytes += data.len();
        if set.bytes > self.limits.max_message_size {
            let max = self.limits.max_message_size;
            return Err(DecodeError::TooLarge {
                what: "multipart message",
                len: set.bytes,
                max,
            });
        }
        *slot = Some(data.to_vec());
        set.received += 1;
        if set.received < usize::from(set.count) {
            return Ok(None);
        }
        let Some(set) = self.pending.remove(&id) else {
            return Ok(None);
        };
        let mut body = Vec::with_capacity(set.bytes);
        body.extend_from_slice(&set.prefix);
        for part in set.parts.iter().flatten() {
            body.extend_from_slice(part);
        }
        let decoded = Message::decode_body(set.header.code, &body, &self.limits)?;
        Ok(Some(Message {
            header: set.header,
            body: decoded,
        }))
    }

    /// Drops incomplete sets started `timeout` or more before `now`; returns their headers.
    pub fn expire(&mut self, now: Instant) -> Vec<Header> {
        let timeout = self.timeout;
        let mut gone = Vec::new();
        self.pending.retain(|_, p| {
            let keep = now.saturating_duration_since(p.started) < timeout;
            if !keep {
                gone.push(p.header);
            }
            keep
        });
        gone
    }
}

impl ChunkHeader {
    /// Parses the 21-byte chunk header; `Ok(None)` if the frame is not a chunk.
    pub fn peek(frame: &[u8]) -> Result<Option<ChunkHeader>, DecodeError> {
        let mut r = Reader::new(frame);
        let (header, multipart) = Header::read(&mut r)?;
        if !multipart {
            return Ok(None);
        }
        Ok(Some(ChunkHeader {
            header,
            chunk_id: r.u16("multipart header")?,
            chunk_count: r.u16("multipart header")?,
            chunk_size: r.u16("multipart header")?,
        }))
    }
}
