//! Append-only segment files holding one partition's record batches.
//!
//! Batch bytes go to files in the partition's directory, `<base offset, 20 digits>.log`, each
//! written with one positioned (vectored) write before the produce is acknowledged, so a
//! batch the broker acknowledged is in the OS page cache even if the process dies right
//! after. sled keeps only the index (where each batch lives) and the partition's state; a
//! batch's bytes are never copied into sled's cache, so the broker's memory does not grow
//! with the data. Reads are `pread`s straight into the fetch buffer, and consecutive batches
//! come back in one read.
//!
//! A new segment starts when the active one reaches `segment.bytes`. A segment file is
//! deleted once no index entry points into it and it is not the active one (retention moved
//! past it, or compaction moved what it kept into the index store); the index change is
//! flushed before the unlink, so a crash can never leave the index pointing at a deleted file.

use std::collections::BTreeMap;

use bytes::BytesMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Kafka's default `segment.bytes` (1 GiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;

/// One open segment file. `dirty` is set by a write and cleared by the fsync that covers it.
pub struct SegmentFile {
    file: File,
    dirty: AtomicBool,
}

impl SegmentFile {
    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    /// Appends `len` bytes read at `pos` to `buf`, reading straight into its spare
    /// capacity: a fetch buffer is never zeroed first only to be overwritten.
    pub fn read_append(&self, buf: &mut BytesMut, len: usize, mut pos: u64) -> io::Result<()> {
        buf.reserve(len);
        let mut left = len;
        while left > 0 {
            let spare = buf.spare_capacity_mut();
            // SAFETY: pread writes at most `left` bytes into the spare capacity, which holds
            // at least `left` bytes (reserved above, and each read shrinks `left` and
            // grows `buf` by the same amount); only bytes the kernel wrote become part of
            // the buffer, by `set_len` below.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    spare.as_mut_ptr() as *mut libc::c_void,
                    left,
                    pos as libc::off_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = n as usize;
            // SAFETY: the kernel initialised these n bytes.
            unsafe { buf.set_len(buf.len() + n) };
            left -= n;
            pos += n as u64;
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// Segment files written since the last flush, across every partition of the store: the
/// flush-on-ack path syncs them all at once, so concurrent producers share one flush.
///
/// The list holds weak references: a segment that retention deletes must close its file (and
/// free its disk space) even when no flush ever comes to drain the list.
#[derive(Default)]
pub struct DirtyFiles {
    files: Mutex<Vec<Weak<SegmentFile>>>,
    /// Counts appends; a flush covers every append counted before it started.
    appends: AtomicU64,
}

impl DirtyFiles {
    fn mark(&self, f: &Arc<SegmentFile>) {
        if !f.dirty.swap(true, Ordering::AcqRel) {
            let mut files = self.files.lock().unwrap();
            files.retain(|w| w.strong_count() > 0);
            files.push(Arc::downgrade(f));
        }
        self.appends.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a write that is not a segment append (sled metadata), so that the next flush
    /// is known not to have been covered by an earlier one.
    pub fn count_write(&self) {
        self.appends.fetch_add(1, Ordering::AcqRel);
    }

    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::Acquire)
    }

    /// fsyncs every file written to since the last call (blocking).
    pub fn sync_all(&self) -> io::Result<()> {
        let files = std::mem::take(&mut *self.files.lock().unwrap());
        for f in files.iter().filter_map(Weak::upgrade) {
            f.sync()?;
        }
        Ok(())
    }
}

struct Segment {
    file: Arc<SegmentFile>,
    len: u64,
    /// Index entries that point into this segment.
    live: usize,
}

/// The segment files of one partition, ordered by base offset; the last is the active one.
pub struct Segments {
    dir: PathBuf,
    segs: BTreeMap<i64, Segment>,
    dirty: Arc<DirtyFiles>,
}

fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn open_file(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes every part at `pos` onward with pwritev, looping over short writes.
fn write_all_vectored_at(file: &File, parts: &[&[u8]], mut pos: u64) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    while !parts.is_empty() {
        let iov: Vec<libc::iovec> = parts
            .iter()
            .take(64)
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: every iovec points into a live slice borrowed for the duration of the call.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                pos as libc::off_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut n = n as usize;
        pos += n as u64;
        while n > 0 {
            if n >= parts[0].len() {
                n -= parts[0].len();
                parts.remove(0);
            } else {
                parts[0] = &parts[0][n..];
                n = 0;
            }
        }
    }
    Ok(())
}

impl Segments {
    /// Opens the partition's directory (creating it), with every segment file in it.
    pub fn open(dir: PathBuf, dirty: Arc<DirtyFiles>) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut segs = BTreeMap::new();
        for ent in std::fs::read_dir(&dir)? {
            let ent = ent?;
            let name = ent.file_name();
            let Some(base) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            let file = open_file(&ent.path(), false)?;
            let len = file.metadata()?.len();
            let file = Arc::new(SegmentFile {
                file,
                dirty: AtomicBool::new(false),
            });
            segs.insert(base, Segment { file, len, live: 0 });
        }
        Ok(Segments { dir, segs, dirty })
    }

    /// Base offsets of the segment files, oldest first.
    pub fn bases(&self) -> Vec<i64> {
        self.segs.keys().copied().collect()
    }

    pub fn len_of(&self, base: i64) -> Option<u64> {
        self.segs.get(&base).map(|s| s.len)
    }

    pub fn file(&self, base: i64) -> Option<Arc<SegmentFile>> {
        self.segs.get(&base).map(|s| s.file.clone())
    }

    /// Appends `parts` (one batch) to the active segment, first starting a new segment named
    /// `next_offset` when there is none or the active one has reached `segment_bytes`.
    /// Returns (segment, position). A failed write leaves the file as it was.
    pub fn append(
        &mut self,
        next_offset: i64,
        segment_bytes: u64,
        parts: &[&[u8]],
    ) -> io::Result<(i64, u64)> {
        let roll = match self.segs.last_key_value() {
            None => true,
            Some((_, s)) => s.len > 0 && s.len >= segment_bytes,
        };
        if roll && !self.segs.contains_key(&next_offset) {
            let path = segment_path(&self.dir, next_offset);
            let file = open_file(&path, true)?;
            file.set_len(0)?;
            sync_dir(&self.dir)?;
            let file = Arc::new(SegmentFile {
                file,
                dirty: AtomicBool::new(false),
            });
            self.segs.insert(
                next_offset,
                Segment {
                    file,
                    len: 0,
                    live: 0,
                },
            );
        }
        let (&base, seg) = self.segs.last_key_value().expect("an active segment");
        let pos = seg.len;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if let Err(e) = write_all_vectored_at(&seg.file.file, parts, pos) {
            // Do not leave half a batch where the next one goes.
            let _ = seg.file.file.set_len(pos);
            return Err(e);
        }
        self.dirty.mark(&seg.file);
        let seg = self.segs.get_mut(&base).expect("just used");
        seg.len += total as u64;
        Ok((base, pos))
    }

    pub fn add_live(&mut self, base: i64) {
        if let Some(s) = self.segs.get_mut(&base) {
            s.live += 1;
        }
    }

    /// Forgets every live count (the index is being rebuilt, entry by entry).
    pub fn clear_live(&mut self) {
        for s in self.segs.values_mut() {
            s.live = 0;
        }
    }

    pub fn drop_live(&mut self, base: i64) {
        if let Some(s) = self.segs.get_mut(&base) {
            s.live = s.live.saturating_sub(1);
        }
    }

    /// Segments nothing points into any more, except the active one.
    pub fn dead(&self) -> Vec<i64> {
        let active = self.segs.last_key_value().map(|(b, _)| *b);
        self.segs
            .iter()
            .filter(|(b, s)| s.live == 0 && Some(**b) != active)
            .map(|(b, _)| *b)
            .collect()
    }

    /// Forgets `base` and unlinks its file. The caller has made the index change durable.
    pub fn delete(&mut self, base: i64) -> io::Result<()> {
        if self.segs.remove(&base).is_some() {
            std::fs::remove_file(segment_path(&self.dir, base))?;
        }
        Ok(())
    }

    /// Cuts segment `base` back to `len` bytes (a torn write found at recovery).
    pub fn truncate(&mut self, base: i64, len: u64) -> io::Result<()> {
        if let Some(s) = self.segs.get_mut(&base) {
            s.file.file.set_len(len)?;
            s.file.file.sync_all()?;
            s.len = len;
        }
        Ok(())
    }

    pub fn disk_bytes(&self) -> u64 {
        self.segs.values().map(|s| s.len).sum()
    }
}
