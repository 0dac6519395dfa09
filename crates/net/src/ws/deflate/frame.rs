//! WebSocket frame headers (RFC 6455 §5.2) as the rewriter needs them.

/// RFC 7692 §7.2.1: the four bytes a sync flush ends with, stripped by the
/// sender and appended by the receiver.
pub(crate) const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
/// Opcode of a continuation frame.
pub(crate) const OP_CONTINUATION: u8 = 0x0;

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
    pub(crate) fn is_control(&self) -> bool {
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
pub(crate) fn release(buf: &mut Vec<u8>, pos: &mut usize) {
    if *pos >= buf.len() {
        *pos = 0;
        if buf.capacity() > 0 {
            *buf = Vec::new();
        }
    }
}
