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

use buttress_fs::{File, FileId, Fs};

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
    /// Device and inode of `file`, to tell whether the path still names it.
    file_id: FileId,
    id: u64,
    /// When this writer opened the active file.
    opened: Instant,
    /// The length our last write left, or `u64::MAX` when unknown.
    known_len: u64,
    /// No write yet since this writer opened the journal, on a file it did
    /// not create: its first write starts a new file. After a power loss
    /// the newest file may be shorter than a reader's saved cursor (even
    /// empty); records appended there would land before the cursor and be
    /// skipped.
    fresh: bool,
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
        let (id, file, created) = open_newest(&*fs, &layout, 0)?;
        let file_id = file.metadata()?.id;
        Ok(Writer {
            file_id,
            fs,
            layout,
            rotate_bytes: config.rotate_bytes,
            rotate_age: config.rotate_age,
            file,
            id,
            opened: now,
            known_len: u64::MAX,
            fresh: !created,
        })
    }

    /// The id of the file this writer last wrote to.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Writes `batch` (whole records), following the protocol of the
    /// module docs: one `write` per file it lands in.
    pub(crate) fn write(&mut self, batch: &[u8], now: Instant) -> io::Result<WriteReport> {
        let mut report = WriteReport::default();
        let mut rest = batch;
        while !rest.is_empty() {
            self.lock_newest(now)?;
            let result = self.write_locked(&mut rest, now, &mut report);
            // After a rotation this is the new, not yet locked file; the
            // old one was unlocked when its handle was dropped.
            let _ = self.file.unlock();
            result?;
        }
        Ok(report)
    }

    /// With the newest file locked: seals a torn tail, then writes the
    /// records of `rest` that fit, or rotates (and returns, so that the new
    /// file is locked and checked like any other).
    fn write_locked(
        &mut self,
        rest: &mut &[u8],
        now: Instant,
        report: &mut WriteReport,
    ) -> io::Result<()> {
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
        let too_old = std::mem::take(&mut self.fresh)
            || (len > 0
                && self
                    .rotate_age
                    .is_some_and(|age| now.saturating_duration_since(self.opened) >= age));
        let piece = match self.rotate_bytes {
            _ if too_old => None,
            Some(max) if len + rest.len() as u64 > max => {
                let room = usize::try_from(max.saturating_sub(len)).unwrap_or(usize::MAX);
                match memchr::memrchr(b'\n', &rest[..room.min(rest.len())]) {
                    // The whole records that fit.
                    Some(end) => Some(&rest[..=end]),
                    None if len > 0 => None,
                    // One record larger than a whole file: alone.
                    None => Some(match memchr::memchr(b'\n', rest) {
                        Some(end) => &rest[..=end],
                        None => *rest,
                    }),
                }
            }
            _ => Some(*rest),
        };
        let Some(piece) = piece else {
            self.rotate(now)?;
            report.rotated = true;
            return Ok(());
        };
        self.known_len = u64::MAX;
        if let Err(e) = self.file.write_all(piece) {
            // A short write followed by a failure leaves a fragment: seal
            // it now if we can (the next writer would otherwise).
            let _ = self.file.write_all(b"\n");
            return Err(e);
        }
        self.known_len = len + piece.len() as u64;
        *rest = &rest[piece.len()..];
        Ok(())
    }

    /// `fdatasync` of the active file.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Leaves the active file locked, and it is the newest.
    fn lock_newest(&mut self, now: Instant) -> io::Result<()> {
        loop {
            // A writer with a stale handle must not wait behind a
            // compression of its old file: if the lock is busy, look first.
            if !self.file.try_lock()? {
                if !self.is_newest()? {
                    self.reopen(now)?;
                    continue;
                }
                self.file.lock()?;
            }
            match self.is_newest() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    let _ = self.file.unlock();
                    return Err(e);
                }
            }
            // Another writer rotated. Our earlier writes to this file are
            // already synced when the journal is durable (each batch is
            // synced before the next is written).
            let _ = self.file.unlock();
            self.reopen(now)?;
        }
    }

    /// Moves to the newest file.
    fn reopen(&mut self, now: Instant) -> io::Result<()> {
        let (id, file, _) = open_newest(&*self.fs, &self.layout, self.id + 1)?;
        self.file_id = file.metadata()?.id;
        self.file = file;
        self.id = id;
        self.opened = now;
        self.known_len = u64::MAX;
        Ok(())
    }

    /// Whether our file is still the active one, asked under its lock. Only
    /// a writer holding this lock can create the next file, so the answer
    /// holds until we unlock. The next file may already be compressed, and
    /// ours compressed or removed by retention (which unlinks it), so all
    /// three are checked.
    fn is_newest(&self) -> io::Result<bool> {
        let absent = |path: &std::path::Path| match self.fs.metadata(path) {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        };
        let ours = match self.fs.metadata(&self.layout.plain(self.id)) {
            Ok(meta) => meta.id == self.file_id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        Ok(ours
            && absent(&self.layout.plain(self.id + 1))?
            && absent(&self.layout.path(crate::layout::Segment {
                id: self.id + 1,
                compressed: true,
            }))?)
    }

    /// Called with the active file locked and known to be the newest.
    /// Creates the next file and makes it ours, unlocked: between its
    /// creation and our lock another writer may fill, rotate and compress
    /// it, so it is locked and checked like any other before a write.
    fn rotate(&mut self, now: Instant) -> io::Result<()> {
        // Seal the old file durably before anyone can read past it.
        self.file.sync_data()?;
        let next = self.layout.plain(self.id + 1);
        // Created under the old file's lock, so no other writer can be
        // rotating this file at the same time.
        let file = self.fs.open_append(&next, true)?;
        self.fs.sync_dir(&self.layout.dir)?;
        self.file_id = file.metadata()?.id;
        // Dropping the old handle releases its lock.
        self.file = file;
        self.id += 1;
        self.opened = now;
        self.known_len = u64::MAX;
        Ok(())
    }
}

/// Opens the newest file, which has an id of at least `at_least`. Only the
/// very first file is created here; every other one is created by the
/// rotation that seals its predecessor. A file that vanishes between the
/// listing and the open was sealed and compressed meanwhile: list again.
/// Returns the id, the handle, and whether this call created the file.
fn open_newest(
    fs: &dyn Fs,
    layout: &Layout,
    at_least: u64,
) -> io::Result<(u64, Box<dyn File>, bool)> {
    loop {
        let Some(id) = layout.list(fs)?.newest() else {
            // Exclusive, so that a stale empty listing cannot recreate a
            // first file that was meanwhile sealed and compressed.
            match fs.create_new(&layout.plain(1)) {
                Ok(_) => fs.sync_dir(&layout.dir)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            // Between the creation and this open, other writers may have
            // filled, sealed and compressed the new file: then list again,
            // as after any vanished file.
            match fs.open_append(&layout.plain(1), false) {
                Ok(file) => return Ok((1, file, true)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        };
        if id < at_least {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("journal file {at_least} was removed while in use"),
            ));
        }
        match fs.open_append(&layout.plain(id), false) {
            Ok(file) => {
                // Another writer created it and may not have synced the
                // directory yet (or died before it could): records we
                // acknowledge in it must not vanish with its entry.
                fs.sync_dir(&layout.dir)?;
                return Ok((id, file, false));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
}
