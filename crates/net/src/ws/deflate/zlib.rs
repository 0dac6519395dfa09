//! Raw DEFLATE through flate2 (miniz_oxide): inflate with a size bound,
//! deflate with a sync flush, and small process-wide pools of contexts for
//! messages compressed without context takeover.

use std::sync::Mutex;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::DeflateError;

/// Idle pooled compressors kept per level (server_no_context_takeover).
const POOL_CAP: usize = 32;

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

pub(crate) fn take_compressor(level: u32) -> Compress {
    let level = level.min(9);
    let pooled = COMPRESSORS[level as usize]
        .lock()
        .ok()
        .and_then(|mut p| p.pop());
    pooled.unwrap_or_else(|| Compress::new(Compression::new(level), false))
}

pub(crate) fn give_compressor(level: u32, mut c: Compress) {
    c.reset();
    if let Ok(mut p) = COMPRESSORS[level.min(9) as usize].lock() {
        if p.len() < POOL_CAP {
            p.push(c);
        }
    }
}

pub(crate) fn take_decompressor() -> Decompress {
    let pooled = DECOMPRESSORS.lock().ok().and_then(|mut p| p.pop());
    pooled.unwrap_or_else(|| Decompress::new(false))
}

pub(crate) fn give_decompressor(mut d: Decompress) {
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
pub(crate) fn inflate(
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
pub(crate) fn deflate(
    c: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DeflateError> {
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
