//! The state of the simulated file system, the log of the operations that
//! change it, and the crash states built from it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A logged operation of [`SimFs`](crate::SimFs): one that changes what a
/// crash can leave on "disk". Reads, locks and metadata are not logged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// A directory was created (taken to be durable at once).
    CreateDir {
        /// The directory.
        path: PathBuf,
    },
    /// A file was created, as inode `ino`.
    Create {
        /// The new entry.
        path: PathBuf,
        /// Its inode.
        ino: u64,
    },
    /// Bytes were written at the end of inode `ino`.
    Write {
        /// The inode.
        ino: u64,
        /// What was written.
        bytes: Vec<u8>,
    },
    /// A sync of inode `ino` succeeded: its data is durable.
    Sync {
        /// The inode.
        ino: u64,
    },
    /// A sync of inode `ino` failed: its unsynced data is lost for good,
    /// though the file keeps its length (Linux marks the pages clean).
    SyncFailed {
        /// The inode.
        ino: u64,
    },
    /// An entry was renamed, replacing any entry at `to`.
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// An entry was removed.
    Remove {
        /// The entry.
        path: PathBuf,
    },
    /// A directory was synced: its entries are durable.
    SyncDir {
        /// The directory.
        path: PathBuf,
    },
}

/// What a crash does to data that was written but not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataLoss {
    /// Everything written survives: a process killed, the machine fine.
    Keep,
    /// Unsynced data is gone: files end where they were last synced.
    Drop,
    /// The file keeps its length but unsynced bytes read as zeros (the size
    /// reached the disk, the data did not).
    Zero,
    /// Unsynced data survives up to the next 4 KiB boundary and no further:
    /// a write torn at a page.
    Torn,
}

/// What a crash does to directory entries that were not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirLoss {
    /// Creates, renames and removes since the directory's last sync are
    /// undone.
    LoseUnsynced,
    /// Every entry change survives.
    KeepAll,
}

/// One way of crashing: what happens to unsynced data and entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Crash {
    /// Unsynced file data.
    pub data: DataLoss,
    /// Unsynced directory entries.
    pub dirs: DirLoss,
}

impl Crash {
    /// `kill -9`: the kernel keeps everything that was written.
    pub const PROCESS_KILL: Crash = Crash {
        data: DataLoss::Keep,
        dirs: DirLoss::KeepAll,
    };
    /// Power loss, the plain way: unsynced data and entries are gone.
    pub const POWER_LOSS: Crash = Crash {
        data: DataLoss::Drop,
        dirs: DirLoss::LoseUnsynced,
    };

    /// Every combination, for tests that try them all.
    pub const ALL: [Crash; 8] = {
        const D: [DataLoss; 4] = [
            DataLoss::Keep,
            DataLoss::Drop,
            DataLoss::Zero,
            DataLoss::Torn,
        ];
        const R: [DirLoss; 2] = [DirLoss::LoseUnsynced, DirLoss::KeepAll];
        let mut all = [Crash::PROCESS_KILL; 8];
        let mut i = 0;
        while i < 8 {
            all[i] = Crash {
                data: D[i / 2],
                dirs: R[i % 2],
            };
            i += 1;
        }
        all
    };
}

const PAGE: usize = 4096;

#[derive(Clone, Debug, Default)]
pub(crate) struct Inode {
    pub(crate) data: Vec<u8>,
    /// Bytes before this are durable (unless in `lost`).
    synced: usize,
    /// Ranges whose write-back failed: zeros after any power loss.
    lost: Vec<Range<usize>>,
}

#[derive(Clone, Debug, Default)]
struct Dir {
    entries: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

/// The whole simulated disk.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    next_ino: u64,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

/// Splits `path` into its directory and name.
pub(crate) fn split(path: &Path) -> io::Result<(&Path, OsString)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok((crate::parent_dir(path), name.to_owned()))
}

/// What an entry names.
pub(crate) enum Entry {
    File(u64),
    Dir,
}

impl State {
    pub(crate) fn next_ino(&self) -> u64 {
        self.next_ino + 1
    }

    pub(crate) fn lookup(&self, path: &Path) -> io::Result<Entry> {
        if self.dirs.contains_key(path) {
            return Ok(Entry::Dir);
        }
        let (dir, name) = split(path)?;
        self.dirs
            .get(dir)
            .and_then(|d| d.entries.get(&name))
            .map(|&ino| Entry::File(ino))
            .ok_or_else(|| not_found(path))
    }

    pub(crate) fn inode(&self, ino: u64) -> &Inode {
        // Inodes are never freed, and only handed out once created.
        &self.inodes[&ino]
    }

    pub(crate) fn names(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut names: Vec<PathBuf> = self
            .dirs
            .get(dir)
            .ok_or_else(|| not_found(dir))?
            .entries
            .keys()
            .map(PathBuf::from)
            .collect();
        names.extend(
            self.dirs
                .keys()
                .filter(|d| d.parent() == Some(dir))
                .filter_map(|d| d.file_name().map(PathBuf::from)),
        );
        Ok(names)
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    /// Checks and applies `op`. A failed op changes nothing.
    pub(crate) fn apply(&mut self, op: &Op) -> io::Result<()> {
        match op {
            Op::CreateDir { path } => {
                self.dirs.entry(path.clone()).or_default();
            }
            Op::Create { path, ino } => {
                let (dir, name) = split(path)?;
                let d = self.dir_mut(dir)?;
                if d.entries.contains_key(&name) {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: file exists", path.display()),
                    ));
                }
                d.entries.insert(name, *ino);
                self.inodes.insert(*ino, Inode::default());
                self.next_ino = self.next_ino.max(*ino);
            }
            Op::Write { ino, bytes } => {
                let inode = self
                    .inodes
                    .get_mut(ino)
                    .ok_or_else(|| not_found(Path::new("inode")))?;
                inode.data.extend_from_slice(bytes);
            }
            Op::Sync { ino } => {
                let inode = self
                    .inodes
                    .get_mut(ino)
                    .ok_or_else(|| not_found(Path::new("inode")))?;
                inode.synced = inode.data.len();
            }
            Op::SyncFailed { ino } => {
                let inode = self
                    .inodes
                    .get_mut(ino)
                    .ok_or_else(|| not_found(Path::new("inode")))?;
                // (An empty range, when all was synced, loses nothing.)
                inode.lost.push(inode.synced..inode.data.len());
                inode.synced = inode.data.len();
            }
            Op::Rename { from, to } => {
                let (from_dir, from_name) = split(from)?;
                let (to_dir, to_name) = split(to)?;
                self.dir_mut(to_dir)?;
                let ino = self
                    .dir_mut(from_dir)?
                    .entries
                    .remove(&from_name)
                    .ok_or_else(|| not_found(from))?;
                self.dir_mut(to_dir)?.entries.insert(to_name, ino);
            }
            Op::Remove { path } => {
                let (dir, name) = split(path)?;
                self.dir_mut(dir)?
                    .entries
                    .remove(&name)
                    .ok_or_else(|| not_found(path))?;
            }
            Op::SyncDir { path } => {
                let d = self.dir_mut(path)?;
                d.durable = d.entries.clone();
            }
        }
        Ok(())
    }

    /// The state a crash of kind `crash` leaves.
    pub(crate) fn crash(&self, crash: Crash) -> State {
        let mut out = self.clone();
        for dir in out.dirs.values_mut() {
            if crash.dirs == DirLoss::LoseUnsynced {
                dir.entries = dir.durable.clone();
            }
            dir.durable = dir.entries.clone();
        }
        for inode in out.inodes.values_mut() {
            let len = inode.data.len();
            let synced = inode.synced.min(len);
            match crash.data {
                DataLoss::Keep => {}
                DataLoss::Drop => inode.data.truncate(synced),
                DataLoss::Zero => inode.data[synced..].fill(0),
                DataLoss::Torn => inode.data.truncate(((synced / PAGE) + 1) * PAGE),
            }
            if crash.data != DataLoss::Keep {
                for range in &inode.lost {
                    let end = range.end.min(inode.data.len());
                    // Nothing when the range now lies past the end.
                    if let Some(lost) = inode.data.get_mut(range.start..end) {
                        lost.fill(0);
                    }
                }
            }
            inode.synced = inode.data.len();
            inode.lost.clear();
        }
        out
    }
}
