//! Client → server: compressed messages become plain frames for tungstenite.
//! Sans I/O: bytes in (any chunking), bytes out; tests drive it directly.

use flate2::Decompress;

use super::frame::{Head, OP_CONTINUATION, TRAILER, apply_mask, parse_head, release, write_head};
use super::zlib::{give_decompressor, inflate, take_decompressor};
use super::{DeflateConfig, DeflateError, DeflateParams};

/// The state of a message from the client in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InMsg {
    None,
    /// Uncompressed: frames are passed through as they are.
    Plain,
    /// Compressed: `opcode` still to be emitted if `!started`.
    Compressed {
        opcode: u8,
        started: bool,
        inflated: usize,
    },
}

/// Client → server: inflates compressed messages into plain frames.
pub(crate) struct Inbound {
    params: DeflateParams,
    max_message: usize,
    max_frame: usize,
    out_chunk: usize,
    /// Bytes from the socket not yet handled.
    raw: Vec<u8>,
    raw_pos: usize,
    /// Bytes ready for tungstenite.
    out: Vec<u8>,
    out_pos: usize,
    /// Payload bytes of a passed-through frame still to copy.
    pass: u64,
    msg: InMsg,
    inflater: Option<Decompress>,
    scratch: Vec<u8>,
}

impl Inbound {
    pub(crate) fn new(params: DeflateParams, cfg: &DeflateConfig) -> Self {
        Inbound {
            params,
            max_message: cfg.max_message_size,
            max_frame: cfg.max_frame_size,
            out_chunk: cfg.max_frame_size.clamp(128, 64 * 1024),
            raw: Vec::new(),
            raw_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            pass: 0,
            msg: InMsg::None,
            inflater: None,
            scratch: Vec::new(),
        }
    }

    /// Adds bytes read from the socket.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.raw_pos > 0 && self.raw_pos >= self.raw.len() / 2 {
            self.raw.drain(..self.raw_pos);
            self.raw_pos = 0;
        }
        self.raw.extend_from_slice(data);
    }

    /// Bytes ready for tungstenite.
    pub(crate) fn ready(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` ready bytes as handed over.
    pub(crate) fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        release(&mut self.out, &mut self.out_pos);
    }

    /// True if a frame header or a compressed frame is only partly received.
    pub(crate) fn has_partial(&self) -> bool {
        self.raw_pos < self.raw.len()
    }

    /// Turns as much buffered input into output as possible.
    pub(crate) fn process(&mut self) -> Result<(), DeflateError> {
        loop {
            let avail = &self.raw[self.raw_pos..];
            if self.pass > 0 {
                let n = (avail.len() as u64).min(self.pass) as usize;
                if n == 0 {
                    break;
                }
                self.out.extend_from_slice(&avail[..n]);
                self.raw_pos += n;
                self.pass -= n as u64;
                continue;
            }
            let Some(head) = parse_head(avail) else {
                break;
            };
            if head.is_control() {
                if head.rsv1 {
                    return Err(DeflateError::Protocol("RSV1 on a control frame"));
                }
                self.pass_frame(head);
                continue;
            }
            let compressed = match (head.opcode, self.msg) {
                // RFC 7692 wants RSV1 on the first frame only, but the ThingWorx C SDK sets
                // it on every fragment of a compressed message: tolerated there.
                (OP_CONTINUATION, InMsg::Compressed { .. }) => true,
                (OP_CONTINUATION, _) if head.rsv1 => {
                    return Err(DeflateError::Protocol(
                        "RSV1 on a continuation of an uncompressed message",
                    ));
                }
                (OP_CONTINUATION, _) => false,
                (_, InMsg::Compressed { .. }) => {
                    return Err(DeflateError::Protocol(
                        "new data frame inside a fragmented message",
                    ));
                }
                (_, _) => head.rsv1 && !head.rsv23,
            };
            if !compressed {
                if head.opcode == OP_CONTINUATION {
                    if head.fin {
                        self.msg = InMsg::None;
                    }
                } else {
                    self.msg = if head.fin { InMsg::None } else { InMsg::Plain };
                }
                self.pass_frame(head);
                continue;
            }
            if head.len > self.max_frame as u64 {
                return Err(DeflateError::TooBig {
                    limit: self.max_frame,
                });
            }
            let total = head.head_len + head.len as usize;
            if avail.len() < total {
                self.raw.reserve(total - avail.len());
                break;
            }
            if let InMsg::None = self.msg {
                self.msg = InMsg::Compressed {
                    opcode: head.opcode,
                    started: false,
                    inflated: 0,
                };
            }
            let start = self.raw_pos + head.head_len;
            let end = self.raw_pos + total;
            if let Some(key) = head.mask {
                apply_mask(&mut self.raw[start..end], key);
            }
            self.raw_pos = end;
            self.inflate_frame(start, end, head)?;
        }
        release(&mut self.raw, &mut self.raw_pos);
        Ok(())
    }

    fn pass_frame(&mut self, head: Head) {
        let hl = head.head_len;
        self.out
            .extend_from_slice(&self.raw[self.raw_pos..self.raw_pos + hl]);
        self.raw_pos += hl;
        self.pass = head.len;
    }

    fn inflate_frame(&mut self, start: usize, end: usize, head: Head) -> Result<(), DeflateError> {
        let InMsg::Compressed {
            opcode,
            started,
            inflated,
        } = self.msg
        else {
            return Err(DeflateError::Protocol("continuation without a message"));
        };
        let room = self.max_message.saturating_sub(inflated);
        let mut d = match self.inflater.take() {
            Some(d) => d,
            None => take_decompressor(),
        };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let mut result = inflate(&mut d, &self.raw[start..end], &mut buf, room);
        let mut ended = matches!(result, Ok(true));
        if head.fin && matches!(result, Ok(false)) {
            result = inflate(&mut d, &TRAILER, &mut buf, room);
            ended = matches!(result, Ok(true));
        }
        if let Err(e) = result {
            give_decompressor(d);
            return Err(match e {
                DeflateError::TooBig { .. } => DeflateError::TooBig {
                    limit: self.max_message,
                },
                other => other,
            });
        }
        let message_done = head.fin;
        if message_done && (self.params.client_no_context_takeover || ended) {
            // No window to keep (or the stream ended with BFINAL): start over.
            give_decompressor(d);
        } else {
            self.inflater = Some(d);
        }
        let mut started = started;
        let masked = head.mask.is_some();
        if buf.is_empty() && message_done {
            self.emit(&mut started, opcode, true, masked, &[]);
        }
        let mut chunks = buf.chunks(self.out_chunk).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.emit(&mut started, opcode, last && message_done, masked, chunk);
        }
        self.msg = if message_done {
            InMsg::None
        } else {
            InMsg::Compressed {
                opcode,
                started,
                inflated: inflated + buf.len(),
            }
        };
        if buf.capacity() <= 64 * 1024 {
            self.scratch = buf;
        }
        Ok(())
    }

    /// Appends one plain frame; masked with a zero key if the client masked.
    fn emit(&mut self, started: &mut bool, opcode: u8, fin: bool, masked: bool, payload: &[u8]) {
        let op = if *started { OP_CONTINUATION } else { opcode };
        *started = true;
        let mask = masked.then_some([0u8; 4]);
        write_head(&mut self.out, fin, false, op, mask, payload.len());
        self.out.extend_from_slice(payload);
    }

    /// True while an inflate context is kept (context takeover).
    #[cfg(test)]
    pub(crate) fn holds_inflater(&self) -> bool {
        self.inflater.is_some()
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        if let Some(d) = self.inflater.take() {
            if self.params.client_no_context_takeover {
                give_decompressor(d);
            }
        }
    }
}
