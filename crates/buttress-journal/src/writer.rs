//! The synchronous core of writing: one handle on the active file, and the
//! protocol that keeps many writers in many processes from tearing each
//! other's records.
//!
//! Every batch is written under the file's `flock` (callers hold the
//! in-process lock: this type takes `&mut self`):
//!
//! 1. lock the active file; if a newer file exists, another writer rotated:
//!    move to the newest and lock again;
//! 2. if the file is not as long as our last write left it, someone else
//!    wrote; if it does not end in a newline, a writer died mid-record:
//!    seal the fragment with a newline so nothing is glued to it;
//! 3. rotate if the batch would pass `rotate_bytes` or the file is older
//!    than `rotate_age`: sync the file, create the next id, sync the
//!    directory;
//! 4. write the whole batch with one `write` on the `O_APPEND` handle;
//! 5. unlock.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use buttress_fs::{File, Fs};

use crate::config::JournalConfig;
use crate::layout::Layout;

/// What a batch write did besides writing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteReport {
    /// A torn tail was sealed first.
    pub(crate) sealed: bool,
    /// This writer started a new file.
    pub(crate) rotated: bool,
}

/// The handle on the active file and what we know of it.
#[derive(Debug)]
pub(crate) struct Writer {
    fs: Arc<dyn Fs>,
    layout: Layout,
    rotate_bytes: Option<u64>,
    rotate_age: Option<std::time::Duration>,
    file: Box<dyn File>,
    id: u64,
    /// When this writer opened the active file.
    opened: Instant,
    /// The length our last write left, or `u64::MAX` when unknown.
    known_len: u64,
}

impl Writer {
    /// Opens the newest file of the journal, creating the first one.
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        layout: Layout,
        config: &JournalConfig,
        now: Instant,
    ) -> io::Result<Writer> {
        if fs.metadata(&layout.dir).is_err() {
            fs.create_dir_all(&layout.dir)?;
            // Make the new directory's own entry durable, best effort (the
            // parent may not be ours to open).
            let _ = fs.sync_dir(buttress_fs::parent_dir(&layout.dir));
        }
        let id = layout.list(&*fs)?.newest().unwrap_or(1);
        let file = open_segment(&*fs, &layout, id)?;
        Ok(Writer {
            fs,
            layout,
            rotate_bytes: config.rotate_bytes,
            rotate_age: config.rotate_age,
            file,
            id,
            opened: now,
            known_len: u64::MAX,
        })
    }

    /// The id of the file this writer last wrote to.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Writes `batch` (whole records) with one `write`, following the
    /// protocol of the module docs.
    pub(crate) fn write(&mut self, batch: &[u8], now: Instant) -> io::Result<WriteReport> {
        self.lock_newest(now)?;
        let result = self.write_locked(batch, now);
        // After a rotation this is the new file; the old one was unlocked
        // when its handle was dropped.
        let _ = self.file.unlock();
        result
    }

    fn write_locked(&mut self, batch: &[u8], now: Instant) -> io::Result<WriteReport> {
        let mut report = WriteReport::default();
        let mut len = self.file.metadata()?.len;
        if len != self.known_len && len > 0 {
            let mut last = [0u8];
            self.file.read_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                self.file.write_all(b"\n")?;
                len += 1;
                report.sealed = true;
            }
        }
        let too_old = self
            .rotate_age
            .is_some_and(|age| len > 0 && now.saturating_duration_since(self.opened) >= age);
        if too_old {
            self.rotate(now)?;
            report.rotated = true;
            len = 0;
        }
        let mut rest = batch;
        while !rest.is_empty() {
            let piece = match self.rotate_bytes {
                Some(max) if len + rest.len() as u64 > max => {
                    let room = usize::try_from(max.saturating_sub(len)).unwrap_or(usize::MAX);
                    match memchr::memrchr(b'\n', &rest[..room.min(rest.len())]) {
                        // The whole records that fit.
                        Some(end) => &rest[..=end],
                        None if len > 0 => {
                            self.rotate(now)?;
                            report.rotated = true;
                            len = 0;
                            continue;
                        }
                        // One record larger than a whole file: alone.
                        None => match memchr::memchr(b'\n', rest) {
                            Some(end) => &rest[..=end],
                            None => rest,
                        },
                    }
                }
                _ => rest,
            };
            self.known_len = u64::MAX;
            if let Err(e) = self.file.write_all(piece) {
                // A short write followed by a failure leaves a fragment:
                // seal it now if we can (the next writer would otherwise).
                let _ = self.file.write_all(b"\n");
                return Err(e);
            }
            len += piece.len() as u64;
            self.known_len = len;
            rest = &rest[piece.len()..];
        }
        Ok(report)
    }

    /// `fdatasync` of the active file.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Leaves the active file locked, and it is the newest.
    fn lock_newest(&mut self, now: Instant) -> io::Result<()> {
        loop {
            self.file.lock()?;
            match self.fs.metadata(&self.layout.plain(self.id + 1)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    let _ = self.file.unlock();
                    return Err(e);
                }
                Ok(_) => {}
            }
            // Another writer rotated. Our earlier writes to this file are
            // already synced when the journal is durable (each batch is
            // synced before the next is written).
            let _ = self.file.unlock();
            let newest = self.layout.list(&*self.fs)?.newest().unwrap_or(self.id + 1);
            self.switch(newest.max(self.id + 1), now)?;
        }
    }

    fn switch(&mut self, id: u64, now: Instant) -> io::Result<()> {
        self.file = open_segment(&*self.fs, &self.layout, id)?;
        self.id = id;
        self.opened = now;
        self.known_len = u64::MAX;
        Ok(())
    }

    /// Called with the active file locked and known to be the newest;
    /// leaves the new file locked.
    fn rotate(&mut self, now: Instant) -> io::Result<()> {
        // Seal the old file durably before anyone can read past it.
        self.file.sync_data()?;
        let next = self.layout.plain(self.id + 1);
        // Created under the old file's lock, so no other writer can be
        // rotating this file at the same time.
        let file = self.fs.open_append(&next, true)?;
        self.fs.sync_dir(&self.layout.dir)?;
        file.lock()?;
        // Dropping the old handle releases its lock.
        self.file = file;
        self.id += 1;
        self.opened = now;
        self.known_len = 0;
        Ok(())
    }
}

fn open_segment(fs: &dyn Fs, layout: &Layout, id: u64) -> io::Result<Box<dyn File>> {
    let path = layout.plain(id);
    match fs.open_append(&path, false) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let file = fs.open_append(&path, true)?;
            fs.sync_dir(&layout.dir)?;
            Ok(file)
        }
        Err(e) => Err(e),
    }
}
