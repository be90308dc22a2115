//! A file system that lets "another process" act at one chosen instant of
//! a reader's or a writer's work: the races between their steps, made exact.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use buttress_fs::{File, Fs, Metadata, SimFs};

/// Where the action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Just before a read handle's first lock probe (`try_lock`): between
    /// the reader's last read of the newest file and its probe.
    Probe,
    /// Just before the first directory listing after [`Interleave::arm`]:
    /// between the reader's last read of a file and its look for a newer one.
    List,
    /// Just before the first open for reading: between the listing that
    /// named a file and its open.
    Open,
    /// Just before the first read of an open file.
    Read,
    /// Just before the first `metadata` of a path: between a listing that
    /// named a file and a look at its size.
    Metadata,
    /// Just before the first directory sync: between a writer's creation of
    /// the journal's first file and its open of that file for appending.
    SyncDir,
}

type Action = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// Delegates to a [`SimFs`]; runs its armed action once, at [`At`]. An
/// action that fails makes the operation fail with its error.
#[derive(Clone)]
pub struct Interleave {
    fs: SimFs,
    at: At,
    action: Arc<Mutex<Option<Action>>>,
}

impl fmt::Debug for Interleave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interleave").field("at", &self.at).finish()
    }
}

impl Interleave {
    pub fn new(fs: &SimFs, at: At) -> Interleave {
        Interleave {
            fs: fs.clone(),
            at,
            action: Arc::new(Mutex::new(None)),
        }
    }

    /// Sets the action to run at the next [`At`].
    pub fn arm(&self, action: impl FnOnce() -> io::Result<()> + Send + 'static) {
        *self.action.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(action));
    }

    /// Whether the armed action has run.
    pub fn ran(&self) -> bool {
        self.action
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    fn fire(&self, at: At) -> io::Result<()> {
        if at != self.at {
            return Ok(());
        }
        let action = self.action.lock().unwrap_or_else(|e| e.into_inner()).take();
        action.map_or(Ok(()), |act| act())
    }
}

impl Fs for Interleave {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn File>> {
        self.fs.create_new(path)
    }
    fn open_append(&self, path: &Path, create: bool) -> io::Result<Box<dyn File>> {
        self.fs.open_append(path, create)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn File>> {
        self.fire(At::Open)?;
        Ok(Box::new(Probed {
            file: self.fs.open_read(path)?,
            fs: self.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.fs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fire(At::SyncDir)?;
        self.fs.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fs.create_dir_all(dir)
    }
    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.fire(At::Metadata)?;
        self.fs.metadata(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.fire(At::List)?;
        self.fs.list(dir)
    }
}

/// A read handle whose lock probe and reads run their actions first.
#[derive(Debug)]
struct Probed {
    file: Box<dyn File>,
    fs: Interleave,
}

impl File for Probed {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.fs.fire(At::Read)?;
        self.file.read_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }
    fn lock(&self) -> io::Result<()> {
        self.file.lock()
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.fs.fire(At::Probe)?;
        self.file.try_lock()
    }
    fn unlock(&self) -> io::Result<()> {
        self.file.unlock()
    }
    fn metadata(&self) -> io::Result<Metadata> {
        self.file.metadata()
    }
}
