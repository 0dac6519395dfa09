//! The frame rewriter, sans I/O: [`Inbound`] turns the client's frames into
//! plain frames for tungstenite (inflating RSV1 messages), [`Outbound`] turns
//! tungstenite's plain frames into the wire form (deflating data messages).
//! Both take bytes in any chunking and hand out bytes; tests drive them
//! directly.

use std::sync::Mutex;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{DeflateConfig, DeflateError, DeflateParams};

/// RFC 7692 §7.2.1: the four bytes a sync flush ends with, stripped by the
/// sender and appended by the receiver.
pub(crate) const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const OP_CONTINUATION: u8 = 0x0;

/// Idle pooled compressors kept per level (server_no_context_takeover).
const POOL_CAP: usize = 32;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub fin: bool,
    pub rsv1: bool,
    /// RSV2 or RSV3 (never ours: left for tungstenite to refuse).
    pub rsv23: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    pub head_len: usize,
}

impl Head {
    fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Parses a frame header; `None` if more bytes are needed.
pub(crate) fn parse_head(buf: &[u8]) -> Option<Head> {
    let (&b0, rest) = buf.split_first()?;
    let &b1 = rest.first()?;
    let mut pos = 2;
    let len = match b1 & 0x7f {
        126 => {
            let b = buf.get(2..4)?;
            pos = 4;
            u64::from(u16::from_be_bytes([b[0], b[1]]))
        }
        127 => {
            let b: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            pos = 10;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mask = if b1 & 0x80 != 0 {
        let m: [u8; 4] = buf.get(pos..pos + 4)?.try_into().ok()?;
        pos += 4;
        Some(m)
    } else {
        None
    };
    Some(Head {
        fin: b0 & FIN != 0,
        rsv1: b0 & RSV1 != 0,
        rsv23: b0 & 0x30 != 0,
        opcode: b0 & 0x0f,
        mask,
        len,
        head_len: pos,
    })
}

/// Appends a frame header.
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    let mut b0 = opcode & 0x0f;
    if fin {
        b0 |= FIN;
    }
    if rsv1 {
        b0 |= RSV1;
    }
    out.push(b0);
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(m | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
}

/// XORs `data` with `key` (masking and unmasking are the same).
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    if key == [0; 4] {
        return;
    }
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Frees a drained buffer so an idle connection holds no buffer memory.
fn release(buf: &mut Vec<u8>, pos: &mut usize) {
    if *pos >= buf.len() {
        *pos = 0;
        if buf.capacity() > 0 {
            *buf = Vec::new();
        }
    }
}

static COMPRESSORS: [Mutex<Vec<Compress>>; 10] = [
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
    Mutex::new(Vec::new()),
];
static DECOMPRESSORS: Mutex<Vec<Decompress>> = Mutex::new(Vec::new());

fn take_compressor(level: u32) -> Compress {
    let level = level.min(9);
    let pooled = COMPRESSORS[level as usize]
        .lock()
        .ok()
        .and_then(|mut p| p.pop());
    pooled.unwrap_or_else(|| Compress::new(Compression::new(level), false))
}

fn give_compressor(level: u32, mut c: Compress) {
    c.reset();
    if let Ok(mut p) = COMPRESSORS[level.min(9) as usize].lock() {
        if p.len() < POOL_CAP {
            p.push(c);
        }
    }
}

fn take_decompressor() -> Decompress {
    let pooled = DECOMPRESSORS.lock().ok().and_then(|mut p| p.pop());
    pooled.unwrap_or_else(|| Decompress::new(false))
}

fn give_decompressor(mut d: Decompress) {
    d.reset(false);
    if let Ok(mut p) = DECOMPRESSORS.lock() {
        if p.len() < POOL_CAP {
            p.push(d);
        }
    }
}

/// Inflates `input` into `out` (appending), failing once `out` would pass
/// `limit`. Returns true if the deflate stream ended (a BFINAL block).
///
/// Works on slices sized per call: flate2's `*_vec` calls zero the whole
/// spare capacity every time, which costs more than inflating a small
/// message once a buffer has grown.
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, DeflateError> {
    loop {
        let room = limit.saturating_add(1).saturating_sub(out.len());
        if room == 0 {
            return Err(DeflateError::TooBig { limit });
        }
        let want = (input.len().saturating_mul(4))
            .clamp(1024, 256 * 1024)
            .min(room);
        let start = out.len();
        out.resize(start + want, 0);
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d.decompress(input, &mut out[start..], FlushDecompress::Sync);
        let consumed = (d.total_in() - in_before) as usize;
        let produced = (d.total_out() - out_before) as usize;
        out.truncate(start + produced);
        let status = status.map_err(|e| DeflateError::Corrupt(e.to_string()))?;
        input = &input[consumed..];
        if out.len() > limit {
            return Err(DeflateError::TooBig { limit });
        }
        if status == Status::StreamEnd {
            return Ok(true);
        }
        if input.is_empty() && produced < want {
            return Ok(false);
        }
        if consumed == 0 && produced == 0 {
            return Err(DeflateError::Corrupt("inflate made no progress".to_owned()));
        }
    }
}

/// Deflates `input` with a sync flush, appending to `out`.
fn deflate(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DeflateError> {
    let mut want = input.len() + input.len() / 8 + 64;
    loop {
        let start = out.len();
        out.resize(start + want, 0);
        let (in_before, out_before) = (c.total_in(), c.total_out());
        let status = c.compress(input, &mut out[start..], FlushCompress::Sync);
        let consumed = (c.total_in() - in_before) as usize;
        let produced = (c.total_out() - out_before) as usize;
        out.truncate(start + produced);
        status.map_err(|e| DeflateError::Corrupt(e.to_string()))?;
        input = &input[consumed..];
        if input.is_empty() && produced < want {
            return Ok(());
        }
        want = 64 * 1024;
    }
}

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
                (OP_CONTINUATION, _) if head.rsv1 => {
                    return Err(DeflateError::Protocol("RSV1 on a continuation frame"));
                }
                (OP_CONTINUATION, InMsg::Compressed { .. }) => true,
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

impl Drop for Inbound {
    fn drop(&mut self) {
        if let Some(d) = self.inflater.take() {
            if self.params.client_no_context_takeover {
                give_decompressor(d);
            }
        }
    }
}
