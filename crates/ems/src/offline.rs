//! Offline message store: requests to the platform made while the EMS is not
//! connected (property pushes above all), kept in order and sent after the next
//! authentication with fresh request and session ids.
//!
//! On disk (when `offline_msg_store.directory` is set) the store is one
//! append-only file, `tether_offline_msgs.bin`:
//!
//! ```text
//! file   := magic record*
//! magic  := "TETHEROMS1\n"                    (11 bytes)
//! record := len:u32 BE  crc32(payload):u32 BE  payload[len]
//! ```
//!
//! `payload` is one whole AlwaysOn request message (header + body, never a
//! multipart chunk). Each append is fsynced before the caller is told the
//! message is stored. A record is removed only once the platform answered it;
//! the file is then rewritten atomically (temporary file, fsync, rename, fsync
//! of the directory). A torn or corrupt tail found at start-up (power cut while
//! appending) is dropped with a warning; the records before it are kept.
//!
//! `max_size` bounds the bytes of all records (headers included). A message
//! that does not fit is refused with [`StoreError::Full`], never dropped silently.
//!
//! All methods do blocking file I/O: call them from `spawn_blocking`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::Crc;

/// File name inside `offline_msg_store.directory`.
pub const FILE_NAME: &str = "tether_offline_msgs.bin";
const MAGIC: &[u8] = b"TETHEROMS1\n";
const RECORD_HEADER: u64 = 8;

/// Why a message could not be stored or the store not opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The message does not fit in what is left of `max_size`.
    #[error("offline message store full: {needed} bytes needed, {free} of {max} free")]
    Full {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left.
        free: u64,
        /// `offline_msg_store.max_size`.
        max: u64,
    },
    /// The store is disabled in the configuration.
    #[error("offline message store disabled")]
    Disabled,
    /// File I/O failed.
    #[error("offline message store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One stored message and its position in the store.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Position, increasing in store order; the key for [`OfflineStore::ack`].
    pub seq: u64,
    /// The whole encoded request message.
    pub bytes: Bytes,
}

/// The store: an in-memory queue mirrored to a file when a directory is set.
#[derive(Debug)]
pub struct OfflineStore {
    enabled: bool,
    queue: VecDeque<Stored>,
    used: u64,
    max: u64,
    next_seq: u64,
    file: Option<Backing>,
    acked_since_compact: usize,
}

#[derive(Debug)]
struct Backing {
    dir: PathBuf,
    path: PathBuf,
    file: File,
}

impl OfflineStore {
    /// A store that refuses everything (`enabled: false`).
    pub fn disabled() -> OfflineStore {
        OfflineStore {
            enabled: false,
            queue: VecDeque::new(),
            used: 0,
            max: 0,
            next_seq: 0,
            file: None,
            acked_since_compact: 0,
        }
    }

    /// A memory-only store of at most `max` bytes (lost on restart).
    pub fn memory(max: u64) -> OfflineStore {
        OfflineStore {
            enabled: true,
            max,
            ..OfflineStore::disabled()
        }
    }

    /// Opens (or creates) the store file in `dir`, loading what an earlier run left.
    /// Returns the store and a warning when a damaged tail was dropped.
    pub fn open(dir: &Path, max: u64) -> Result<(OfflineStore, Option<String>), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(FILE_NAME);
        let mut store = OfflineStore::memory(max);
        let mut warning = None;
        let mut needs_rewrite = false;
        match File::open(&path) {
            Ok(mut f) => {
                let mut data = Vec::new();
                f.read_to_end(&mut data).map_err(io(&path))?;
                let (records, damage) = parse_file(&data);
                for payload in records {
                    let seq = store.next_seq;
                    store.next_seq += 1;
                    store.used += RECORD_HEADER + payload.len() as u64;
                    store.queue.push_back(Stored {
                        seq,
                        bytes: Bytes::from(payload),
                    });
                }
                if let Some(d) = damage {
                    warning = Some(format!(
                        "{}: {d}; kept {} message(s)",
                        path.display(),
                        store.queue.len()
                    ));
                    needs_rewrite = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => needs_rewrite = true,
            Err(e) => return Err(StoreError::Io { path, source: e }),
        }
        if needs_rewrite {
            rewrite(dir, &path, store.queue.iter().map(|s| &s.bytes[..]))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        store.file = Some(Backing {
            dir: dir.to_path_buf(),
            path,
            file,
        });
        Ok((store, warning))
    }

    /// Appends one encoded request message; on disk it is fsynced before this returns.
    pub fn push(&mut self, message: Bytes) -> Result<u64, StoreError> {
        if !self.enabled {
            return Err(StoreError::Disabled);
        }
        let needed = RECORD_HEADER + message.len() as u64;
        let free = self.max.saturating_sub(self.used);
        if needed > free {
            return Err(StoreError::Full {
                needed,
                free,
                max: self.max,
            });
        }
        if let Some(b) = &mut self.file {
            let mut rec = Vec::with_capacity(needed as usize);
            rec.extend_from_slice(&(message.len() as u32).to_be_bytes());
            rec.extend_from_slice(&crc32(&message).to_be_bytes());
            rec.extend_from_slice(&message);
            let path = b.path.clone();
            b.file
                .write_all(&rec)
                .and_then(|()| b.file.sync_data())
                .map_err(|source| StoreError::Io { path, source })?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.used += needed;
        self.queue.push_back(Stored {
            seq,
            bytes: message,
        });
        Ok(seq)
    }

    /// The stored messages, oldest first.
    pub fn pending(&self) -> Vec<Stored> {
        self.queue.iter().cloned().collect()
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing stored?
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes used out of `max_size`.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The platform answered message `seq`: forget it. The file is rewritten when the
    /// store becomes empty or every 64 answers, whichever comes first.
    pub fn ack(&mut self, seq: u64) -> Result<(), StoreError> {
        if let Some(pos) = self.queue.iter().position(|s| s.seq == seq) {
            if let Some(s) = self.queue.remove(pos) {
                self.used -= RECORD_HEADER + s.bytes.len() as u64;
                self.acked_since_compact += 1;
            }
        }
        if self.acked_since_compact > 0 && (self.queue.is_empty() || self.acked_since_compact >= 64)
        {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with exactly the messages still stored (atomic replace).
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.acked_since_compact = 0;
        let Some(b) = &mut self.file else {
            return Ok(());
        };
        rewrite(&b.dir, &b.path, self.queue.iter().map(|s| &s.bytes[..]))?;
        let path = b.path.clone();
        b.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| StoreError::Io { path, source })?;
        Ok(())
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = Crc::new();
    crc.update(data);
    crc.sum()
}

/// Splits a store file into payloads; the second value describes damage found
/// (the records before it are returned).
fn parse_file(data: &[u8]) -> (Vec<Vec<u8>>, Option<String>) {
    let mut out = Vec::new();
    let Some(mut rest) = data.strip_prefix(MAGIC) else {
        if data.is_empty() {
            return (out, None);
        }
        return (
            out,
            Some("not a Tether offline store file (bad magic)".into()),
        );
    };
    while !rest.is_empty() {
        if rest.len() < RECORD_HEADER as usize {
            return (out, Some("torn record header at the end".into()));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let sum = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let body = &rest[RECORD_HEADER as usize..];
        if body.len() < len {
            return (out, Some("torn record at the end".into()));
        }
        let payload = &body[..len];
        if crc32(payload) != sum {
            return (out, Some("record with a bad checksum".into()));
        }
        out.push(payload.to_vec());
        rest = &body[len..];
    }
    (out, None)
}

/// Writes `magic + records` to a temporary file, fsyncs it, renames it over
/// `path` and fsyncs the directory.
fn rewrite<'a>(
    dir: &Path,
    path: &Path,
    payloads: impl Iterator<Item = &'a [u8]>,
) -> Result<(), StoreError> {
    let tmp = path.with_extension("bin.tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StoreError::Io { path: p, source }
    };
    let mut data = MAGIC.to_vec();
    for p in payloads {
        data.extend_from_slice(&(p.len() as u32).to_be_bytes());
        data.extend_from_slice(&crc32(p).to_be_bytes());
        data.extend_from_slice(p);
    }
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&data)
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    // Make the rename itself durable; not possible on every platform.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_restart_in_order_and_acks_compact() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, w) = OfflineStore::open(dir.path(), 1000).unwrap();
        assert!(w.is_none());
        let a = s.push(Bytes::from_static(b"first")).unwrap();
        s.push(Bytes::from_static(b"second")).unwrap();
        drop(s);
        let (mut s, w) = OfflineStore::open(dir.path(), 1000).unwrap();
        assert!(w.is_none());
        let got: Vec<_> = s.pending().into_iter().map(|r| r.bytes).collect();
        assert_eq!(
            got,
            vec![Bytes::from_static(b"first"), Bytes::from_static(b"second")]
        );
        s.ack(a).unwrap();
        let first = s.pending()[0].seq;
        s.ack(first).unwrap();
        assert!(s.is_empty());
        drop(s);
        let (s, _) = OfflineStore::open(dir.path(), 1000).unwrap();
        assert!(s.is_empty());
        let len = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert_eq!(len, MAGIC.len() as u64);
    }

    #[test]
    fn full_is_refused_not_dropped() {
        let mut s = OfflineStore::memory(30);
        s.push(Bytes::from(vec![0u8; 12])).unwrap();
        let err = s.push(Bytes::from(vec![0u8; 12])).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Full {
                    needed: 20,
                    free: 10,
                    max: 30
                }
            ),
            "{err}"
        );
        assert_eq!(s.len(), 1);
        assert!(matches!(
            OfflineStore::disabled().push(Bytes::new()),
            Err(StoreError::Disabled)
        ));
    }

    #[test]
    fn torn_tail_is_dropped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = OfflineStore::open(dir.path(), 1000).unwrap();
        s.push(Bytes::from_static(b"kept")).unwrap();
        s.push(Bytes::from_static(b"torn-away")).unwrap();
        drop(s);
        let path = dir.path().join(FILE_NAME);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let (s, w) = OfflineStore::open(dir.path(), 1000).unwrap();
        assert!(w.unwrap().contains("torn"));
        assert_eq!(s.pending().len(), 1);
        assert_eq!(s.pending()[0].bytes, Bytes::from_static(b"kept"));
        // Flipped byte → checksum mismatch.
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xFF;
        std::fs::write(&path, data).unwrap();
        let (s, w) = OfflineStore::open(dir.path(), 1000).unwrap();
        assert!(w.unwrap().contains("checksum"));
        assert!(s.is_empty());
    }
}
