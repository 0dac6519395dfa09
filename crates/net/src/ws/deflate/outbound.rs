//! Server → client: tungstenite's plain frames become the wire form, data
//! messages deflated with RSV1. Sans I/O, like the inbound side.

use flate2::Compress;

use super::frame::{Head, OP_CONTINUATION, TRAILER, parse_head, release, write_head};
use super::zlib::{deflate, give_compressor, take_compressor};
use super::{DeflateConfig, DeflateError, DeflateParams};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutMsg {
    None,
    Plain,
    Compressed,
}

/// Server → client: deflates data messages (RSV1), passes the rest.
pub(crate) struct Outbound {
    params: DeflateParams,
    level: u32,
    min_size: usize,
    max_buffer: usize,
    /// A frame from tungstenite being collected before compression.
    inp: Vec<u8>,
    /// Header of the frame being collected, once known.
    inp_head: Option<Head>,
    /// Bytes for the socket.
    out: Vec<u8>,
    out_pos: usize,
    /// Payload bytes of a passed-through frame still to copy.
    pass: u64,
    msg: OutMsg,
    compressor: Option<Compress>,
}

impl Outbound {
    pub(crate) fn new(params: DeflateParams, cfg: &DeflateConfig) -> Self {
        Outbound {
            params,
            level: cfg.level.min(9),
            min_size: cfg.min_size,
            max_buffer: cfg.max_message_size.max(cfg.max_frame_size),
            inp: Vec::new(),
            inp_head: None,
            out: Vec::new(),
            out_pos: 0,
            pass: 0,
            msg: OutMsg::None,
            compressor: None,
        }
    }

    /// Bytes for the socket.
    pub(crate) fn ready(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes as written to the socket.
    pub(crate) fn consume(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        release(&mut self.out, &mut self.out_pos);
    }

    /// True between frames (a close frame may be inserted).
    pub(crate) fn at_boundary(&self) -> bool {
        self.pass == 0 && self.inp.is_empty()
    }

    /// Queues a frame of our own (a close frame).
    pub(crate) fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        write_head(&mut self.out, true, false, opcode, None, payload.len());
        self.out.extend_from_slice(payload);
    }

    /// Takes bytes written by tungstenite; returns how many were taken.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Result<usize, DeflateError> {
        let total = data.len();
        while !data.is_empty() {
            if self.pass > 0 {
                let n = (data.len() as u64).min(self.pass) as usize;
                self.out.extend_from_slice(&data[..n]);
                self.pass -= n as u64;
                data = &data[n..];
                continue;
            }
            match self.inp_head {
                None => {
                    // Collect header bytes (at most 14) until it parses.
                    let need = 14usize.saturating_sub(self.inp.len()).min(data.len());
                    let before = self.inp.len();
                    self.inp.extend_from_slice(&data[..need]);
                    match parse_head(&self.inp) {
                        None => {
                            data = &data[need..];
                        }
                        Some(head) => {
                            // Give back what belongs to the payload.
                            let used = head.head_len - before;
                            self.inp.truncate(head.head_len);
                            data = &data[used..];
                            self.start_frame(head)?;
                        }
                    }
                }
                Some(head) => {
                    let want = head.head_len + head.len as usize - self.inp.len();
                    let n = want.min(data.len());
                    self.inp.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.inp.len() == head.head_len + head.len as usize {
                        self.finish_frame(head)?;
                    }
                }
            }
        }
        Ok(total)
    }

    /// Decides what to do with a frame once its header is known.
    fn start_frame(&mut self, head: Head) -> Result<(), DeflateError> {
        let data = !head.is_control();
        let compress = data
            && !head.rsv1
            && !head.rsv23
            && head.mask.is_none()
            && head.len <= self.max_buffer as u64
            && match (head.opcode, self.msg) {
                (OP_CONTINUATION, m) => m == OutMsg::Compressed,
                (_, OutMsg::None) => !head.fin || head.len >= self.min_size as u64,
                _ => false,
            };
        if data {
            match (head.opcode, compress) {
                (OP_CONTINUATION, _) => {}
                (_, true) => self.msg = OutMsg::Compressed,
                (_, false) => self.msg = OutMsg::Plain,
            }
        }
        if compress {
            self.inp_head = Some(head);
            if head.len == 0 {
                self.finish_frame(head)?;
            }
        } else {
            let h = std::mem::take(&mut self.inp);
            self.out.extend_from_slice(&h);
            self.pass = head.len;
            if data && head.fin {
                self.msg = OutMsg::None;
            }
        }
        Ok(())
    }

    fn finish_frame(&mut self, head: Head) -> Result<(), DeflateError> {
        let inp = std::mem::take(&mut self.inp);
        self.inp_head = None;
        let payload = &inp[head.head_len..];
        let first = head.opcode != OP_CONTINUATION;
        let takeover = !self.params.server_no_context_takeover;
        let mut c = match self.compressor.take() {
            Some(c) => c,
            None => take_compressor(self.level),
        };
        let mut z = Vec::new();
        let result = deflate(&mut c, payload, &mut z);
        if let Err(e) = result {
            give_compressor(self.level, c);
            return Err(e);
        }
        if head.fin {
            if z.ends_with(&TRAILER) {
                z.truncate(z.len() - TRAILER.len());
            } else {
                give_compressor(self.level, c);
                return Err(DeflateError::Corrupt(
                    "deflate output without sync trailer".to_owned(),
                ));
            }
        }
        // A lone message that did not shrink goes out plain, unless the
        // compressor keeps its window (the peer must then see it).
        let plain = first && head.fin && !takeover && z.len() >= payload.len();
        if head.fin && !takeover {
            give_compressor(self.level, c);
        } else {
            self.compressor = Some(c);
        }
        if plain {
            write_head(&mut self.out, true, false, head.opcode, None, payload.len());
            self.out.extend_from_slice(payload);
        } else {
            write_head(&mut self.out, head.fin, first, head.opcode, None, z.len());
            self.out.extend_from_slice(&z);
        }
        if head.fin {
            self.msg = OutMsg::None;
        }
        Ok(())
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        if let Some(c) = self.compressor.take() {
            if self.params.server_no_context_takeover {
                give_compressor(self.level, c);
            }
        }
    }
}
