//! [`RealFs`]: the operating system's files.

use std::fs::{self, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{File, FileId, Fs, Metadata, poisoned};

/// The real file system (Linux; other unixes best effort).
///
/// Files are opened with `O_CLOEXEC` (std's default), so a child process
/// never inherits a lock.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl RealFs {
    /// The real file system.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use buttress_fs::{Fs, RealFs};
    ///
    /// let fs = RealFs::new();
    /// let dir = std::env::temp_dir().join(format!("buttress-fs-real-doc-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// fs.create_dir_all(&dir)?;
    /// let path = dir.join("hello");
    /// let file = fs.create_new(&path)?;
    /// file.write_all(b"hello")?;
    /// file.sync_data()?; // fdatasync
    /// fs.sync_dir(&dir)?; // and the new entry
    /// assert_eq!(fs.read(&path)?, b"hello");
    /// assert_eq!(fs.create_new(&path).unwrap_err().kind(), ErrorKind::AlreadyExists); // O_EXCL
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        RealFs
    }
}

fn meta(m: &fs::Metadata) -> Metadata {
    Metadata {
        len: m.len(),
        id: FileId {
            dev: m.dev(),
            ino: m.ino(),
        },
        is_dir: m.is_dir(),
        is_file: m.is_file(),
    }
}

impl Fs for RealFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)?;
        Ok(Box::new(RealFile::new(file)))
    }

    fn open_append(&self, path: &Path, create: bool) -> io::Result<Box<dyn File>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(create)
            .mode(0o644)
            .open(path)?;
        Ok(Box::new(RealFile::new(file)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn File>> {
        Ok(Box::new(RealFile::new(fs::File::open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Opening a directory read-only and fsyncing it is how Linux makes
        // its entries (creates, renames, removes) durable.
        fs::File::open(dir)?.sync_all()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        fs::metadata(path).map(|m| meta(&m))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(PathBuf::from(entry?.file_name()));
        }
        Ok(names)
    }
}

/// An open file of [`RealFs`].
#[derive(Debug)]
struct RealFile {
    file: fs::File,
    /// Set by the first failed sync; every later sync fails (fsyncgate).
    poisoned: AtomicBool,
}

impl RealFile {
    fn new(file: fs::File) -> Self {
        RealFile {
            file,
            poisoned: AtomicBool::new(false),
        }
    }

    fn sync_with(&self, sync: impl FnOnce(&fs::File) -> io::Result<()>) -> io::Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(poisoned());
        }
        sync(&self.file).inspect_err(|_| self.poisoned.store(true, Ordering::Release))
    }
}

impl File for RealFile {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync_with(fs::File::sync_data)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_with(fs::File::sync_all)
    }

    fn lock(&self) -> io::Result<()> {
        self.file.lock()
    }

    fn try_lock(&self) -> io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn unlock(&self) -> io::Result<()> {
        self.file.unlock()
    }

    fn metadata(&self) -> io::Result<Metadata> {
        self.file.metadata().map(|m| meta(&m))
    }
}
