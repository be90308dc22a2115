//! [`SimFs`]: an in-memory file system that logs, crashes and fails on
//! demand.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::sim_state::{Crash, Entry, Op, State};
use crate::{File, FileId, Fs, Metadata, poisoned};

/// The kinds of operation a [`Fault`] can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A `write(2)` to a file.
    Write,
    /// `sync_data` or `sync_all` of a file.
    Sync,
    /// A create (exclusive, or by an append open).
    Create,
    /// A rename.
    Rename,
    /// A remove.
    Remove,
    /// A directory sync.
    SyncDir,
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Fails with `EIO`. On a sync, the unsynced data of the file is lost
    /// for good and the handle is poisoned, as on Linux.
    Io,
    /// Fails with `ENOSPC`, writing nothing.
    NoSpace,
    /// On a write, writes only this many bytes (fewer if the buffer is
    /// shorter) and returns that count; on other operations, like `Io`.
    ShortWrite(usize),
}

/// A fault to inject: the `skip + 1`-th operation of kind `op` from now
/// fails as `kind` says. Each fault fires once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Which operations it counts.
    pub op: OpKind,
    /// How many matching operations succeed first.
    pub skip: usize,
    /// What the failing operation does.
    pub kind: FaultKind,
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

#[derive(Debug, Default)]
struct Sim {
    /// The state the log starts from.
    base: State,
    state: State,
    log: Vec<Op>,
    faults: Vec<Fault>,
    /// Inode → the handle holding its `flock`.
    locks: HashMap<u64, u64>,
    next_handle: u64,
}

impl Sim {
    /// Counts a matching operation against the armed faults; returns the
    /// fault that fires, if any.
    fn fault(&mut self, op: OpKind) -> Option<FaultKind> {
        let mut fired = None;
        self.faults.retain_mut(|f| {
            if f.op != op {
                return true;
            }
            if f.skip == 0 && fired.is_none() {
                fired = Some(f.kind);
                return false;
            }
            f.skip = f.skip.saturating_sub(1);
            true
        });
        fired
    }

    fn run(&mut self, op: Op) -> io::Result<()> {
        self.state.apply(&op)?;
        self.log.push(op);
        Ok(())
    }

    fn fail_or_run(&mut self, kind: OpKind, op: Op) -> io::Result<()> {
        if let Some(fault) = self.fault(kind) {
            return Err(fault_error(fault));
        }
        self.run(op)
    }
}

fn fault_error(kind: FaultKind) -> io::Error {
    match kind {
        FaultKind::NoSpace => io::Error::from_raw_os_error(ENOSPC),
        FaultKind::Io | FaultKind::ShortWrite(_) => io::Error::from_raw_os_error(EIO),
    }
}

#[derive(Debug, Default)]
struct Shared {
    sim: Mutex<Sim>,
    /// Signalled when a lock is released.
    unlocked: Condvar,
}

impl Shared {
    fn sim(&self) -> MutexGuard<'_, Sim> {
        // A panic in a test thread must not hide the state from the others.
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An in-memory file system that records every operation that changes the
/// "disk", and builds the state any crash would leave after any prefix of
/// that record.
///
/// Clones share one file system. All operations are atomic with respect to
/// each other; `lock` blocks like `flock` does, so several threads can use
/// one `SimFs` as several processes would use one disk.
///
/// The model: a file's data is durable up to where it was last synced;
/// directory entries are durable as of the directory's last sync;
/// directories themselves are durable once created. Every write lands at
/// the end of its file.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    shared: Arc<Shared>,
}

impl SimFs {
    /// An empty file system.
    ///
    /// ```
    /// use std::path::{Path, PathBuf};
    /// use buttress_fs::{Fs, SimFs};
    ///
    /// let fs = SimFs::new();
    /// assert!(fs.metadata(Path::new("/data")).is_err()); // nothing at all yet
    /// fs.create_dir_all(Path::new("/data"))?;
    /// let other = fs.clone(); // clones share one file system
    /// other.create_new(Path::new("/data/a"))?;
    /// assert_eq!(fs.list(Path::new("/data"))?, [PathBuf::from("a")]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        SimFs::default()
    }

    fn from_state(state: State) -> Self {
        let fs = SimFs::new();
        {
            let mut sim = fs.shared.sim();
            sim.base = state.clone();
            sim.state = state;
        }
        fs
    }

    /// The operations logged since this file system was made (by
    /// [`new`](SimFs::new) or by a crash).
    ///
    /// ```
    /// use std::path::Path;
    /// use buttress_fs::{Fs, Op, SimFs};
    ///
    /// let fs = SimFs::new();
    /// fs.create_dir_all(Path::new("/d"))?;
    /// let file = fs.create_new(Path::new("/d/a"))?;
    /// file.write_all(b"hi")?;
    /// file.sync_data()?;
    /// let _ = fs.read(Path::new("/d/a"))?; // reads change nothing: not logged
    /// let ino = file.metadata()?.id.ino;
    /// assert_eq!(fs.log()[2..], [ // after the two directories, "/" and "/d"
    ///     Op::Create { path: "/d/a".into(), ino },
    ///     Op::Write { ino, bytes: b"hi".to_vec() },
    ///     Op::Sync { ino },
    /// ]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn log(&self) -> Vec<Op> {
        self.shared.sim().log.clone()
    }

    /// How many operations have been logged.
    ///
    /// ```
    /// use std::path::Path;
    /// use buttress_fs::{Fs, SimFs};
    ///
    /// let fs = SimFs::new();
    /// fs.create_dir_all(Path::new("/d"))?;
    /// let file = fs.create_new(Path::new("/d/a"))?;
    /// let before = fs.op_count();
    /// file.write_all(b"one")?;
    /// file.sync_data()?;
    /// file.lock()?; // locks, like reads, are not logged
    /// assert_eq!(fs.op_count(), before + 2);
    /// assert_eq!(fs.op_count(), fs.log().len());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn op_count(&self) -> usize {
        self.shared.sim().log.len()
    }

    /// A new file system holding what `crash` would leave now.
    ///
    /// ```
    /// use std::path::Path;
    /// use buttress_fs::{Crash, Fs, SimFs};
    ///
    /// let fs = SimFs::new();
    /// let (dir, path) = (Path::new("/d"), Path::new("/d/a"));
    /// fs.create_dir_all(dir)?;
    /// let file = fs.create_new(path)?;
    /// fs.sync_dir(dir)?;
    /// file.write_all(b"synced")?;
    /// file.sync_data()?;
    /// file.write_all(b" + not yet")?;
    ///
    /// assert_eq!(fs.crash(Crash::PROCESS_KILL).read(path)?, b"synced + not yet"); // the kernel has it
    /// assert_eq!(fs.crash(Crash::POWER_LOSS).read(path)?, b"synced");
    /// assert_eq!(fs.read(path)?, b"synced + not yet"); // the original is untouched
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn crash(&self, crash: Crash) -> SimFs {
        SimFs::from_state(self.shared.sim().state.crash(crash))
    }

    /// A new file system holding what `crash` would have left had the
    /// machine died after the first `ops` logged operations.
    ///
    /// # Panics
    ///
    /// If `ops` is greater than [`op_count`](SimFs::op_count).
    ///
    /// ```
    /// use std::path::Path;
    /// use buttress_fs::{Crash, Fs, SimFs};
    ///
    /// let fs = SimFs::new();
    /// let (dir, path) = (Path::new("/d"), Path::new("/d/a"));
    /// fs.create_dir_all(dir)?;
    /// let start = fs.op_count();
    /// let file = fs.create_new(path)?;
    /// file.write_all(b"data")?;
    /// file.sync_data()?;
    /// fs.sync_dir(dir)?;
    ///
    /// // Die after each operation in turn: when is the file safe?
    /// let survives: Vec<bool> = (start..=fs.op_count())
    ///     .map(|ops| fs.crash_after(ops, Crash::POWER_LOSS).read(path).is_ok_and(|d| d == b"data"))
    ///     .collect();
    /// // Not after the create, the write, or even the file's sync: only once
    /// // the directory's sync made its entry durable.
    /// assert_eq!(survives, [false, false, false, false, true]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn crash_after(&self, ops: usize, crash: Crash) -> SimFs {
        let sim = self.shared.sim();
        let mut state = sim.base.clone();
        for op in &sim.log[..ops] {
            // Every logged op applied once, from the same state; it applies
            // again.
            let _ = state.apply(op);
        }
        SimFs::from_state(state.crash(crash))
    }

    /// Arms a fault.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::path::Path;
    /// use buttress_fs::{Fault, FaultKind, Fs, OpKind, SimFs};
    ///
    /// let fs = SimFs::new();
    /// fs.create_dir_all(Path::new("/d"))?;
    /// let file = fs.create_new(Path::new("/d/a"))?;
    /// // The second write from now is cut short after 3 bytes.
    /// fs.inject(Fault { op: OpKind::Write, skip: 1, kind: FaultKind::ShortWrite(3) });
    /// assert_eq!(file.write(b"first")?, 5);
    /// assert_eq!(file.write(b"second")?, 3);
    /// assert_eq!(file.write(b"third")?, 5); // each fault fires once
    /// assert_eq!(fs.read(Path::new("/d/a"))?, b"firstsecthird");
    ///
    /// fs.inject(Fault { op: OpKind::Create, skip: 0, kind: FaultKind::NoSpace });
    /// let e = fs.create_new(Path::new("/d/b")).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::StorageFull); // ENOSPC
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inject(&self, fault: Fault) {
        self.shared.sim().faults.push(fault);
    }

    /// Disarms every fault not yet fired.
    ///
    /// ```
    /// use std::path::Path;
    /// use buttress_fs::{Fault, FaultKind, Fs, OpKind, SimFs};
    ///
    /// let fs = SimFs::new();
    /// fs.create_dir_all(Path::new("/d"))?;
    /// let file = fs.create_new(Path::new("/d/a"))?;
    /// fs.inject(Fault { op: OpKind::Sync, skip: 0, kind: FaultKind::Io });
    /// fs.clear_faults(); // the disk is healthy again before the fault fired
    /// file.write_all(b"data")?;
    /// file.sync_data()?; // succeeds: the handle is not poisoned
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear_faults(&self) {
        self.shared.sim().faults.clear();
    }

    fn open(&self, path: &Path, create: Option<bool>) -> io::Result<Box<dyn File>> {
        let mut sim = self.shared.sim();
        let ino = match sim.state.lookup(path) {
            Ok(Entry::File(ino)) if create != Some(true) => ino,
            Ok(Entry::File(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: file exists", path.display()),
                ));
            }
            Ok(Entry::Dir) => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("{}: is a directory", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create.is_some() => {
                let ino = sim.state.next_ino();
                sim.fail_or_run(
                    OpKind::Create,
                    Op::Create {
                        path: path.to_owned(),
                        ino,
                    },
                )?;
                ino
            }
            Err(e) => return Err(e),
        };
        sim.next_handle += 1;
        Ok(Box::new(SimFile {
            shared: self.shared.clone(),
            ino,
            handle: sim.next_handle,
            poisoned: AtomicBool::new(false),
        }))
    }
}

impl Fs for SimFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn File>> {
        self.open(path, Some(true))
    }

    fn open_append(&self, path: &Path, create: bool) -> io::Result<Box<dyn File>> {
        self.open(path, create.then_some(false))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn File>> {
        self.open(path, None)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.shared.sim().fail_or_run(
            OpKind::Rename,
            Op::Rename {
                from: from.to_owned(),
                to: to.to_owned(),
            },
        )
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.shared.sim();
        if let Entry::Dir = sim.state.lookup(path)? {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", path.display()),
            ));
        }
        sim.fail_or_run(
            OpKind::Remove,
            Op::Remove {
                path: path.to_owned(),
            },
        )
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.shared.sim().fail_or_run(
            OpKind::SyncDir,
            Op::SyncDir {
                path: dir.to_owned(),
            },
        )
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.shared.sim();
        let mut path = PathBuf::new();
        for part in dir.components() {
            path.push(part);
            if !matches!(sim.state.lookup(&path), Ok(Entry::Dir)) {
                sim.run(Op::CreateDir { path: path.clone() })?;
            }
        }
        Ok(())
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let sim = self.shared.sim();
        Ok(match sim.state.lookup(path)? {
            Entry::Dir => Metadata {
                len: 0,
                id: FileId { dev: 0, ino: 0 },
                is_dir: true,
                is_file: false,
            },
            Entry::File(ino) => file_meta(&sim.state, ino),
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.shared.sim().state.names(dir)
    }
}

fn file_meta(state: &State, ino: u64) -> Metadata {
    Metadata {
        len: state.inode(ino).data.len() as u64,
        id: FileId { dev: 0, ino },
        is_dir: false,
        is_file: true,
    }
}

/// An open file of [`SimFs`].
#[derive(Debug)]
struct SimFile {
    shared: Arc<Shared>,
    ino: u64,
    handle: u64,
    poisoned: AtomicBool,
}

impl SimFile {
    fn sync(&self) -> io::Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(poisoned());
        }
        let mut sim = self.shared.sim();
        if let Some(fault) = sim.fault(OpKind::Sync) {
            self.poisoned.store(true, Ordering::Release);
            sim.run(Op::SyncFailed { ino: self.ino })?;
            return Err(fault_error(fault));
        }
        sim.run(Op::Sync { ino: self.ino })
    }
}

impl File for SimFile {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut sim = self.shared.sim();
        let n = match sim.fault(OpKind::Write) {
            None => buf.len(),
            Some(FaultKind::ShortWrite(n)) => n.min(buf.len()),
            Some(other) => return Err(fault_error(other)),
        };
        sim.run(Op::Write {
            ino: self.ino,
            bytes: buf[..n].to_vec(),
        })?;
        Ok(n)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let sim = self.shared.sim();
        let data = &sim.state.inode(self.ino).data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn lock(&self) -> io::Result<()> {
        let mut sim = self.shared.sim();
        loop {
            match sim.locks.get(&self.ino) {
                Some(&holder) if holder != self.handle => {
                    sim = self
                        .shared
                        .unlocked
                        .wait(sim)
                        .unwrap_or_else(|e| e.into_inner());
                }
                _ => {
                    sim.locks.insert(self.ino, self.handle);
                    return Ok(());
                }
            }
        }
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut sim = self.shared.sim();
        match sim.locks.get(&self.ino) {
            Some(&holder) if holder != self.handle => Ok(false),
            _ => {
                sim.locks.insert(self.ino, self.handle);
                Ok(true)
            }
        }
    }

    fn unlock(&self) -> io::Result<()> {
        let mut sim = self.shared.sim();
        if sim.locks.get(&self.ino) == Some(&self.handle) {
            sim.locks.remove(&self.ino);
            self.shared.unlocked.notify_all();
        }
        Ok(())
    }

    fn metadata(&self) -> io::Result<Metadata> {
        Ok(file_meta(&self.shared.sim().state, self.ino))
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}
