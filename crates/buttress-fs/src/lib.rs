//! The file-system seam of buttress's durable crates.
//!
//! The journal and the checkpoint store never call `std::fs`: they call an
//! [`Fs`], and the files it opens are [`File`]s. Two implementations:
//!
//! * [`RealFs`]: the operating system, doing the sequences that make data
//!   durable on Linux (`fdatasync`, `fsync` of the directory after a create
//!   or a rename, `flock` for locks between processes). Other unixes get the
//!   same calls, best effort.
//! * [`SimFs`]: an in-memory file system that records every operation that
//!   changes what is on "disk", and can build the state a power loss would
//!   leave after any prefix of that log ([`SimFs::crash_after`]): unsynced
//!   data dropped, zero-filled or torn at 4 KiB, directory entries that were
//!   never synced lost. It injects faults too ([`SimFs::inject`]): `EIO` on
//!   a sync, `ENOSPC`, short writes.
//!
//! # The rules every implementation keeps
//!
//! * A failed `sync_data`/`sync_all` is final for that handle: every later
//!   sync on it fails with [`SyncPoisoned`]. Linux marks the pages of a
//!   failed write-back clean, so a second fsync would "succeed" without
//!   writing them (fsyncgate); retrying would turn lost data into a false
//!   acknowledgement.
//! * Files are written sequentially: appended to, or written from the start
//!   after an exclusive create. There is no positional write, because no
//!   durable protocol here needs one, and it keeps the crash model exact.
//! * Locks are `flock` locks: they belong to the open handle, so two handles
//!   in one process exclude each other and closing another handle of the
//!   same file keeps the lock. POSIX record locks are never used.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use buttress_fs::{Crash, Fs, SimFs};
//!
//! let fs = SimFs::new();
//! let dir = Path::new("/data");
//! fs.create_dir_all(dir).unwrap();
//! let file = fs.create_new(&dir.join("a")).unwrap();
//! file.write_all(b"hello").unwrap();
//! file.sync_data().unwrap();
//! fs.sync_dir(dir).unwrap();
//! file.write_all(b" world").unwrap(); // never synced
//!
//! // Power loss now: the synced part survives, the rest is dropped.
//! let after = fs.crash(Crash::POWER_LOSS);
//! assert_eq!(after.read(&dir.join("a")).unwrap(), b"hello");
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod real;
mod sim;
mod sim_state;

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

pub use real::RealFs;
pub use sim::{Fault, FaultKind, OpKind, SimFs};
pub use sim_state::{Crash, DataLoss, DirLoss, Op};

/// Identity of a file: device and inode on a real file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

/// What [`Fs::metadata`] and [`File::metadata`] report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Length in bytes.
    pub len: u64,
    /// Device and inode.
    pub id: FileId,
    /// Whether this is a directory.
    pub is_dir: bool,
    /// Whether this is a regular file (not a directory, FIFO, device...).
    pub is_file: bool,
}

/// The error a sync returns on a handle whose earlier sync failed.
///
/// It is carried inside an [`io::Error`] of kind `Other`; find it with
/// [`is_sync_poisoned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "an earlier fsync of this file handle failed; data written through it may be lost, \
     so no later sync can confirm it"
)]
pub struct SyncPoisoned;

/// Whether `error` is the [`SyncPoisoned`] error of a handle whose earlier
/// sync failed.
///
/// ```
/// use std::path::Path;
/// use buttress_fs::{Fault, FaultKind, Fs, OpKind, SimFs, is_sync_poisoned};
///
/// let fs = SimFs::new();
/// fs.create_dir_all(Path::new("/data"))?;
/// let file = fs.create_new(Path::new("/data/log"))?;
/// file.write_all(b"record")?;
/// fs.inject(Fault { op: OpKind::Sync, skip: 0, kind: FaultKind::Io });
/// let first = file.sync_data().unwrap_err();
/// assert!(!is_sync_poisoned(&first)); // the EIO itself
/// let again = file.sync_data().unwrap_err();
/// assert!(is_sync_poisoned(&again)); // never a false "synced" after a failure
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_sync_poisoned(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<SyncPoisoned>())
}

pub(crate) fn poisoned() -> io::Error {
    io::Error::other(SyncPoisoned)
}

/// The operations buttress's durable crates need from a file system.
///
/// Paths are used as given; pass absolute paths or paths relative to the
/// process's working directory.
pub trait Fs: Send + Sync + Debug + 'static {
    /// Creates `path`, failing with `AlreadyExists` if it exists
    /// (`O_CREAT | O_EXCL`), open for sequential writing and reading.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn File>>;
    /// Opens `path` for appending (`O_APPEND`) and reading, creating it when
    /// `create` is true and it does not exist.
    fn open_append(&self, path: &Path, create: bool) -> io::Result<Box<dyn File>>;
    /// Opens `path` for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn File>>;
    /// Renames `from` to `to`, replacing `to` if it exists. Not durable until
    /// the directories are synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`. Not durable until the directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of directory `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates `dir` and its parents. Directories are taken to be durable
    /// once created.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Metadata of `path`, following symbolic links.
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// The names of the entries of `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;

    /// Reads the whole file `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open_read(path)?;
        let mut out = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = file.read_at(&mut buf, out.len() as u64)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// An open file of an [`Fs`].
pub trait File: Send + Sync + Debug {
    /// One `write(2)`: writes some prefix of `buf` at the end of what this
    /// handle has written (or at the end of the file, for an append handle)
    /// and returns its length, which may be short.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Reads at `offset` into `buf`; returns 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// `fdatasync`: makes the data written so far durable. A failure is final
    /// for this handle (see [`SyncPoisoned`]).
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: makes the data and the metadata durable. A failure is final
    /// for this handle.
    fn sync_all(&self) -> io::Result<()>;
    /// Takes the exclusive `flock` of this handle, waiting for it.
    fn lock(&self) -> io::Result<()>;
    /// Takes the exclusive `flock` if it is free; returns whether it did.
    fn try_lock(&self) -> io::Result<bool>;
    /// Releases the `flock`. Dropping the handle releases it too.
    fn unlock(&self) -> io::Result<()>;
    /// Metadata of the open file (`fstat`).
    fn metadata(&self) -> io::Result<Metadata>;

    /// Writes all of `buf`, one `write(2)` after another until done. Under
    /// the file's lock and on an append handle the bytes stay contiguous.
    fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether `name` can be the stem of the durable crates' file names: ASCII
/// letters, digits, `-` and `_`, and not empty. No separator, no dot, so no
/// `..` and no clash with the names built around it.
///
/// ```
/// use buttress_fs::is_plain_name;
///
/// assert!(is_plain_name("queries_2024-q1"));
/// assert!(!is_plain_name("")); // empty
/// assert!(!is_plain_name("../etc")); // separators and dots
/// assert!(!is_plain_name("queries.old"));
/// assert!(!is_plain_name("requêtes")); // ASCII only
/// ```
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A name beside `target` for the temp file of an atomic replace:
/// `<target>.tmp-<pid>-<random>`. Create it exclusively; two writers (or
/// two processes) never pick the same one.
///
/// ```
/// use std::path::Path;
/// use buttress_fs::{Fs, SimFs, parent_dir, temp_path};
///
/// let fs = SimFs::new();
/// fs.create_dir_all(Path::new("/data"))?;
/// let target = Path::new("/data/state");
/// let tmp = temp_path(target);
/// assert_eq!(tmp.parent(), target.parent()); // beside it: the rename stays in one directory
/// assert!(tmp.to_str().unwrap().starts_with(&format!("/data/state.tmp-{}-", std::process::id())));
///
/// // The atomic replace it is made for.
/// let file = fs.create_new(&tmp)?;
/// file.write_all(b"v2")?;
/// file.sync_data()?;
/// fs.rename(&tmp, target)?;
/// fs.sync_dir(parent_dir(target))?;
/// assert_eq!(fs.read(target)?, b"v2");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn temp_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(format!(
        ".tmp-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    name.into()
}

/// The directory part of `path`, or `.` for a bare name.
///
/// ```
/// use std::path::Path;
/// use buttress_fs::parent_dir;
///
/// assert_eq!(parent_dir(Path::new("/data/events.jsonl")), Path::new("/data"));
/// // A bare name is in the working directory; `Path::parent` would give "",
/// // which cannot be opened to sync.
/// assert_eq!(parent_dir(Path::new("events.jsonl")), Path::new("."));
/// assert_eq!(Path::new("events.jsonl").parent(), Some(Path::new("")));
/// ```
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
