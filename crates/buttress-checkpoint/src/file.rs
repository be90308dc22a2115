//! [`FileStore`]: checkpoints as files, replaced atomically.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use buttress_fs::{File, Fs, RealFs};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::error::{ConfigError, LoadError, OpenError, ReadError, SaveError};
use crate::frame::HEADER_LEN;
use crate::store::{Candidate, Loaded, Store, encode_frame, pick};

/// How many generations a [`FileStore`] keeps, and how large a file loads
/// read.
///
/// Build it from [`Default`] with the chainable setters;
/// [`validate`](FileStoreConfig::validate) (called by
/// [`FileStore::open`]) rejects nonsense with a [`ConfigError`].
///
/// ```
/// use buttress_checkpoint::FileStoreConfig;
///
/// let config = FileStoreConfig::default().keep(5).max_bytes(64 << 20);
/// assert!(config.validate().is_ok());
/// assert!(FileStoreConfig::default().keep(0).validate().is_err());
/// ```
///
/// Under the `serde` feature it loads from a configuration file: every
/// field is optional, unknown fields are refused, and `max_bytes` is
/// written like `"64MiB"`, `"1GB"` or a plain number of bytes.
/// Deserializing checks the form; [`validate`](FileStoreConfig::validate)
/// (or opening the store) checks the values.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use buttress_checkpoint::FileStoreConfig;
///
/// let config: FileStoreConfig = serde_json::from_str(r#"{"keep": 5, "max_bytes": "64MiB"}"#).unwrap();
/// assert_eq!(config, FileStoreConfig::default().keep(5).max_bytes(64 << 20));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct FileStoreConfig {
    /// Generations kept (at least 1). Default 3: two damaged files in a
    /// row still leave one to fall back on.
    pub keep: usize,
    /// Files larger than this are passed over by loads without being read
    /// (at least 36 bytes, an empty checkpoint). Default: 1 GiB.
    #[cfg_attr(feature = "serde", serde(with = "buttress_core::human::size"))]
    pub max_bytes: u64,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        FileStoreConfig {
            keep: 3,
            max_bytes: 1 << 30,
        }
    }
}

impl FileStoreConfig {
    buttress_core::setters! {
        /// Sets [`keep`](FileStoreConfig::keep).
        ///
        /// ```
        /// use buttress_checkpoint::FileStoreConfig;
        ///
        /// let config = FileStoreConfig::default().keep(5);
        /// assert_eq!(config.keep, 5);
        /// ```
        keep: usize,
        /// Sets [`max_bytes`](FileStoreConfig::max_bytes).
        ///
        /// ```
        /// use buttress_checkpoint::FileStoreConfig;
        ///
        /// let config = FileStoreConfig::default().max_bytes(64 << 20);
        /// assert_eq!(config.max_bytes, 64 << 20);
        /// ```
        max_bytes: u64,
    }

    /// Checks the values; the first problem found is returned.
    ///
    /// ```
    /// use buttress_checkpoint::{ConfigError, FileStoreConfig};
    ///
    /// assert_eq!(FileStoreConfig::default().validate(), Ok(()));
    /// assert_eq!(FileStoreConfig::default().keep(0).validate(), Err(ConfigError::Keep));
    /// assert!(matches!(
    ///     FileStoreConfig::default().max_bytes(10).validate(),
    ///     Err(ConfigError::MaxBytes { max_bytes: 10, .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.keep == 0 {
            return Err(ConfigError::Keep);
        }
        let min = HEADER_LEN as u64;
        if self.max_bytes < min {
            return Err(ConfigError::MaxBytes {
                max_bytes: self.max_bytes,
                min,
            });
        }
        Ok(())
    }
}

/// Checkpoints as files in one directory: `name.<seq>.ckpt`, the last
/// [`keep`](FileStoreConfig::keep) generations, and `name.lock`.
///
/// A save:
///
/// 1. creates `name.<seq>.ckpt.tmp-<pid>-<random>` exclusively, in the same
///    directory (so the rename below stays on one file system);
/// 2. writes the header and the payload;
/// 3. `fsync`s the file: without it, a crash after the rename can leave a
///    file of the right name and the wrong (zero) length;
/// 4. renames it to `name.<seq>.ckpt`;
/// 5. `fsync`s the directory: without it, the rename itself can be lost;
/// 6. only now acknowledges, then removes generations beyond `keep`
///    (without syncing the directory again: an old generation brought back
///    by a crash is harmless). The async [`save`](crate::save) answers
///    first and removes them after, on the blocking pool, while the caller
///    goes on: freeing a file's blocks can cost as much as an `fsync`. The
///    store's lock is held until that is done (the last handle, when
///    dropped, waits for it).
///
/// A new sequence number is used for every save, so no step ever
/// overwrites the newest good checkpoint; a failure at any step leaves it
/// as it was.
///
/// One writer per store, across processes: the writer holds an exclusive
/// `flock` on `name.lock` for as long as it lives, and a second writer gets
/// [`OpenError::Locked`]. Readers ([`FileStore::open_read_only`]) take no
/// lock.
///
/// Saving and loading come in two forms, as the journal's appends do: the
/// async [`save`](crate::save) and [`load`](crate::load) (the file work
/// runs on tokio's blocking pool), and [`save_blocking`](FileStore::save_blocking)
/// and [`load_blocking`](FileStore::load_blocking) on the calling thread,
/// for programs without a tokio runtime. Both run the same protocol under
/// the same lock.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
    /// Shared by the handles only (not by the file work on the blocking
    /// pool): the last handle to go releases the lock.
    _owner: Arc<Owner>,
}

#[derive(Debug)]
struct Inner {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    name: String,
    keep: usize,
    max_bytes: u64,
    /// Whether this store holds the lock (readers do not).
    writable: bool,
    /// Serializes saves; what this writer knows of the generations.
    gens: Mutex<Gens>,
    /// Saves (and their removals of old generations) still running on the
    /// blocking pool, which the lock must outlive.
    busy: Mutex<usize>,
    idle: Condvar,
    /// Generations a save made redundant and is removing: this store no
    /// longer lists them, though they may be on disk for a moment.
    removing: Mutex<Vec<u64>>,
}

/// The writer's `flock` on `name.lock`, held until the last handle is
/// dropped and no file work of its saves is left.
#[derive(Debug)]
struct Owner {
    inner: Arc<Inner>,
    /// `None` for readers.
    lock: Option<Box<dyn File>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // An async save acknowledges before it removes the generations it
        // made redundant, and one whose future was dropped goes on; either
        // way its file work must finish under the lock (so no new writer
        // can start meanwhile). Waits at most that long: no new work can
        // start without a handle.
        let mut busy = self.inner.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy > 0 {
            busy = self
                .inner
                .idle
                .wait(busy)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(busy);
        self.lock.take();
    }
}

/// One save's file work on the blocking pool, counted in `Inner::busy`
/// from before it is spawned until it is dropped (done, or never run).
struct Busy(Arc<Inner>);

impl Busy {
    fn new(inner: &Arc<Inner>) -> Busy {
        *inner.busy.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Busy(inner.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock().unwrap_or_else(|e| e.into_inner());
        *busy -= 1;
        if *busy == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// The writer's view: it is the only one creating or removing generations.
#[derive(Debug, Default)]
struct Gens {
    /// The highest sequence seen or used.
    latest: u64,
    /// Generations on disk, ascending.
    kept: Vec<u64>,
}

enum Entry {
    Generation(u64),
    Temp,
}

impl Inner {
    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{}.{seq:020}.ckpt", self.name))
    }

    fn parse(&self, file: &str) -> Option<Entry> {
        let rest = file.strip_prefix(&self.name)?.strip_prefix('.')?;
        let (digits, ext) = rest.split_once('.')?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq = digits.parse().ok()?;
        match ext {
            "ckpt" => Some(Entry::Generation(seq)),
            _ if ext.starts_with("ckpt.tmp-") => Some(Entry::Temp),
            _ => None,
        }
    }

    /// Generations (ascending) and temp files.
    fn list(&self) -> io::Result<(Vec<u64>, Vec<PathBuf>)> {
        let mut gens = Vec::new();
        let mut temps = Vec::new();
        let names = match self.fs.list(&self.dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for name in names {
            match name.to_str().and_then(|n| self.parse(n)) {
                Some(Entry::Generation(seq)) => gens.push(seq),
                Some(Entry::Temp) => temps.push(self.dir.join(name)),
                None => {}
            }
        }
        gens.sort_unstable();
        Ok((gens, temps))
    }

    /// Steps 1 to 5 of a save: when it returns `Ok`, checkpoint `seq` is
    /// durable and may be acknowledged. Returns the generations it made
    /// redundant (beyond `keep`), already forgotten, for [`remove`] to
    /// delete.
    ///
    /// [`remove`]: Inner::remove
    fn put_durable(&self, seq: u64, bytes: &[u8]) -> Result<Vec<u64>, SaveError> {
        if !self.writable {
            return Err(SaveError::ReadOnly);
        }
        let mut gens = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        if seq <= gens.latest {
            return Err(SaveError::Stale {
                current: gens.latest,
                attempted: seq,
            });
        }
        let target = self.path(seq);
        let temp = buttress_fs::temp_path(&target);
        let io = |step: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| SaveError::Io { step, path, source }
        };
        let file = self.fs.create_new(&temp).map_err(io("create", &temp))?;
        let written = file
            .write_all(bytes)
            .map_err(io("write", &temp))
            .and_then(|()| file.sync_all().map_err(io("fsync", &temp)));
        drop(file);
        if let Err(e) = written {
            let _ = self.fs.remove_file(&temp);
            return Err(e);
        }
        if let Err(e) = self.fs.rename(&temp, &target) {
            let _ = self.fs.remove_file(&temp);
            return Err(io("rename", &target)(e));
        }
        // From here the new name is visible; it is durable, and the save
        // acknowledged, only once the directory is synced.
        gens.latest = seq;
        gens.kept.push(seq);
        self.fs
            .sync_dir(&self.dir)
            .map_err(io("fsync directory", &self.dir))?;
        // Only now may older generations go: the newest `keep` are all
        // durable.
        let excess = gens.kept.len().saturating_sub(self.keep);
        let redundant: Vec<u64> = gens.kept.drain(..excess).collect();
        self.removing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&redundant);
        Ok(redundant)
    }

    /// A whole save on the calling thread: durable, then the redundant
    /// generations removed.
    fn put(&self, seq: u64, bytes: &[u8]) -> Result<(), SaveError> {
        let redundant = self.put_durable(seq, bytes)?;
        self.remove(&redundant);
        Ok(())
    }

    /// Removes generations older than the newest `keep`, once the newest
    /// is durable ([`put_durable`](Inner::put_durable) chose them, so
    /// another save may run meanwhile). The removals are not synced: a
    /// crash may bring an old generation back, which is harmless (loads
    /// take the newest), and saves one directory fsync per save. Failures
    /// are logged: the save already succeeded.
    fn remove(&self, redundant: &[u64]) {
        for &seq in redundant {
            match self.fs.remove_file(&self.path(seq)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::warn!(store = %self.name, seq, error = %e, "could not remove an old checkpoint");
                }
                _ => {}
            }
            self.removing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|&s| s != seq);
        }
    }

    fn candidates(&self) -> Result<Vec<Candidate>, LoadError> {
        // A writer may prune every listed generation between our listing
        // and our reads; list again rather than report an empty store.
        for _ in 0..8 {
            let (mut gens, _) = self.list().map_err(|source| LoadError::Io {
                path: self.dir.clone(),
                source,
            })?;
            // Not those this store's saves are removing (a load right after
            // a save sees the same generations whether or not the removal
            // has happened yet); one removed since it was listed is skipped
            // when it is read.
            {
                let removing = self.removing.lock().unwrap_or_else(|e| e.into_inner());
                gens.retain(|seq| !removing.contains(seq));
            }
            let out = self.read_generations(&gens);
            if gens.is_empty() || !out.is_empty() {
                return Ok(out);
            }
        }
        Err(LoadError::Vanishing {
            path: self.dir.clone(),
        })
    }

    /// Reads the listed generations, newest first; skips those removed
    /// since the listing.
    fn read_generations(&self, gens: &[u64]) -> Vec<Candidate> {
        let mut out = Vec::with_capacity(gens.len());
        for &seq in gens.iter().rev() {
            let path = self.path(seq);
            let bytes = match self.read_bounded(&path) {
                // Gone since the listing (before or after its size was
                // looked at): pruned, not damaged.
                Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other,
            };
            out.push(Candidate {
                seq,
                location: path.display().to_string(),
                bytes,
            });
        }
        out
    }

    /// The bytes of a regular file of at most `max_bytes`.
    fn read_bounded(&self, path: &Path) -> Result<Vec<u8>, ReadError> {
        let meta = self.fs.metadata(path)?;
        // A FIFO or a device would block or never end.
        if !meta.is_file {
            return Err(ReadError::NotAFile);
        }
        if meta.len > self.max_bytes {
            return Err(ReadError::TooLarge {
                len: meta.len,
                max_bytes: self.max_bytes,
            });
        }
        Ok(self.fs.read(path)?)
    }

    fn latest_seq(&self) -> Result<u64, LoadError> {
        let (gens, _) = self.list().map_err(|source| LoadError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let latest = self.gens.lock().unwrap_or_else(|e| e.into_inner()).latest;
        Ok(gens.last().copied().unwrap_or(0).max(latest))
    }
}

impl FileStore {
    fn new(inner: Inner, lock: Option<Box<dyn File>>) -> FileStore {
        let inner = Arc::new(inner);
        FileStore {
            _owner: Arc::new(Owner {
                inner: inner.clone(),
                lock,
            }),
            inner,
        }
    }

    /// Opens store `name` in `dir` for writing (creating the directory),
    /// on the real file system.
    ///
    /// The config is validated first ([`OpenError::Config`]); the name must
    /// be letters, digits, `-` and `_` ([`OpenError::Name`]); a second
    /// writer of the same store, in any process, gets
    /// [`OpenError::Locked`].
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, OpenError};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-open-doc-{}", std::process::id()));
    /// let store = FileStore::open(&dir, "learner", FileStoreConfig::default().keep(5))?;
    /// assert!(matches!(
    ///     FileStore::open(&dir, "learner", FileStoreConfig::default()),
    ///     Err(OpenError::Locked { .. })
    /// ));
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn open(
        dir: impl AsRef<Path>,
        name: &str,
        config: FileStoreConfig,
    ) -> Result<FileStore, OpenError> {
        FileStore::open_with(Arc::new(RealFs::new()), dir, name, config)
    }

    /// [`open`](FileStore::open) on any [`Fs`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json};
    /// use buttress_fs::{Crash, SimFs};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let store = FileStore::open_with(Arc::new(fs.clone()), "/ckpt", "model", FileStoreConfig::default())?;
    /// store.save_blocking(&Json, 1, &[0.5f64, 0.25])?;
    ///
    /// // Power loss right after the save returned: the checkpoint is there.
    /// let after = FileStore::open_read_only_with(Arc::new(fs.crash(Crash::POWER_LOSS)), "/ckpt", "model")?;
    /// let loaded = after.load_blocking::<_, Vec<f64>>(&Json)?.expect("saved");
    /// assert_eq!(loaded.state, vec![0.5, 0.25]);
    /// # Ok(()) }
    /// ```
    pub fn open_with(
        fs: Arc<dyn Fs>,
        dir: impl AsRef<Path>,
        name: &str,
        config: FileStoreConfig,
    ) -> Result<FileStore, OpenError> {
        if !buttress_fs::is_plain_name(name) {
            return Err(OpenError::Name(name.to_owned()));
        }
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OpenError::Io { path, source }
        };
        if fs.metadata(&dir).is_err() {
            fs.create_dir_all(&dir).map_err(io(&dir))?;
            let _ = fs.sync_dir(buttress_fs::parent_dir(&dir));
        }
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = fs.open_append(&lock_path, true).map_err(io(&lock_path))?;
        if !lock.try_lock().map_err(io(&lock_path))? {
            return Err(OpenError::Locked { path: lock_path });
        }
        let inner = Inner {
            fs,
            dir,
            name: name.to_owned(),
            keep: config.keep,
            max_bytes: config.max_bytes,
            writable: true,
            gens: Mutex::new(Gens::default()),
            busy: Mutex::new(0),
            idle: Condvar::new(),
            removing: Mutex::new(Vec::new()),
        };
        // Temp files are leftovers of saves that never finished: no other
        // writer can be running (we hold the lock).
        let (gens, temps) = inner.list().map_err(io(&inner.dir))?;
        for temp in &temps {
            if let Err(e) = inner.fs.remove_file(temp) {
                tracing::warn!(path = %temp.display(), error = %e, "could not remove a stale checkpoint temp file");
            }
        }
        // Also makes durable a rename a killed writer did not sync: the
        // generation we resume from must not vanish in a later power loss.
        inner.fs.sync_dir(&inner.dir).map_err(io(&inner.dir))?;
        *inner.gens.lock().unwrap_or_else(|e| e.into_inner()) = Gens {
            latest: gens.last().copied().unwrap_or(0),
            kept: gens,
        };
        Ok(FileStore::new(inner, Some(lock)))
    }

    /// Opens store `name` in `dir` for loading only: no lock, no clean-up,
    /// saves fail with [`SaveError::ReadOnly`]. Any number of readers may
    /// run beside the writer.
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json, SaveError};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-open-read-only-doc-{}", std::process::id()));
    /// let writer = FileStore::open(&dir, "learner", FileStoreConfig::default())?;
    /// writer.save_blocking(&Json, 1, &42u64)?;
    /// let reader = FileStore::open_read_only(&dir, "learner")?; // beside the writer
    /// assert_eq!(reader.load_blocking::<_, u64>(&Json)?.map(|l| l.state), Some(42));
    /// assert!(matches!(reader.save_blocking(&Json, 2, &43u64), Err(SaveError::ReadOnly)));
    /// # drop(writer);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn open_read_only(dir: impl AsRef<Path>, name: &str) -> Result<FileStore, OpenError> {
        FileStore::open_read_only_with(Arc::new(RealFs::new()), dir, name)
    }

    /// [`open_read_only`](FileStore::open_read_only) on any [`Fs`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{FileStore, Json};
    /// use buttress_fs::SimFs;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let reader = FileStore::open_read_only_with(Arc::new(fs), "/ckpt", "model")?;
    /// assert!(reader.load_blocking::<_, u64>(&Json)?.is_none()); // nothing saved yet
    /// # Ok(()) }
    /// ```
    pub fn open_read_only_with(
        fs: Arc<dyn Fs>,
        dir: impl AsRef<Path>,
        name: &str,
    ) -> Result<FileStore, OpenError> {
        if !buttress_fs::is_plain_name(name) {
            return Err(OpenError::Name(name.to_owned()));
        }
        let inner = Inner {
            fs,
            dir: dir.as_ref().to_owned(),
            name: name.to_owned(),
            keep: usize::MAX,
            max_bytes: FileStoreConfig::default().max_bytes,
            writable: false,
            gens: Mutex::new(Gens::default()),
            busy: Mutex::new(0),
            idle: Condvar::new(),
            removing: Mutex::new(Vec::new()),
        };
        Ok(FileStore::new(inner, None))
    }

    /// [`save`](crate::save) on the calling thread: encodes `state` with
    /// `codec` as checkpoint `seq` and stores it through the whole
    /// protocol (temp file, `fsync`, rename, directory `fsync`), returning
    /// when it is durable. No tokio runtime is needed; in async code use
    /// [`save`](crate::save), which runs this on the blocking pool.
    ///
    /// Everything [`save`](crate::save) promises holds: `seq` must be above
    /// every sequence stored ([`SaveError::Stale`] otherwise), a read-only
    /// store refuses ([`SaveError::ReadOnly`]), saves through clones of one
    /// store take turns, and a failure at any step leaves the last
    /// acknowledged checkpoint intact. Like [`save`](crate::save), it does
    /// not check that the state decodes back
    /// ([`Checkpointer::save`](crate::Checkpointer::save) does).
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-save-blocking-doc-{}", std::process::id()));
    /// // No runtime anywhere.
    /// let store = FileStore::open(&dir, "model", FileStoreConfig::default())?;
    /// let next = store.latest_seq_blocking()? + 1;
    /// store.save_blocking(&Json, next, &vec![0.5f64, 0.25])?; // durable now
    /// let loaded = store.load_blocking::<_, Vec<f64>>(&Json)?.expect("one checkpoint");
    /// assert_eq!((loaded.seq, loaded.state), (next, vec![0.5, 0.25]));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn save_blocking<C: Codec, T: Serialize + ?Sized>(
        &self,
        codec: &C,
        seq: u64,
        state: &T,
    ) -> Result<(), SaveError> {
        self.inner.put(seq, &encode_frame(codec, seq, state)?)
    }

    /// [`load`](crate::load) on the calling thread: the newest generation
    /// that is intact and decodes as `T`, with the newer ones it passed
    /// over (in [`Loaded::skipped`]); `None` when the store is empty. No
    /// tokio runtime is needed; in async code use [`load`](crate::load).
    ///
    /// ```
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("ckpt-load-blocking-doc-{}", std::process::id()));
    /// let store = FileStore::open(&dir, "learner", FileStoreConfig::default())?;
    /// assert!(store.load_blocking::<_, u64>(&Json)?.is_none()); // nothing saved yet
    /// store.save_blocking(&Json, 1, &42u64)?;
    /// drop(store);
    ///
    /// // Any number of read-only stores can load beside the writer.
    /// let reader = FileStore::open_read_only(&dir, "learner")?;
    /// let loaded = reader.load_blocking::<_, u64>(&Json)?.expect("saved above");
    /// assert_eq!((loaded.seq, loaded.state), (1, 42));
    /// assert!(loaded.skipped.is_empty());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn load_blocking<C: Codec, T: DeserializeOwned>(
        &self,
        codec: &C,
    ) -> Result<Option<Loaded<T>>, LoadError> {
        pick(codec, self.inner.candidates()?)
    }

    /// [`Store::put`] on the calling thread: stores checkpoint bytes as
    /// they are (header included), through the whole protocol.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json};
    /// use buttress_fs::SimFs;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let src = FileStore::open_with(Arc::new(SimFs::new()), "/a", "model", FileStoreConfig::default())?;
    /// # src.save_blocking(&Json, 1, &"state")?;
    /// let backup = FileStore::open_with(Arc::new(SimFs::new()), "/b", "model", FileStoreConfig::default())?;
    /// let newest = src.candidates_blocking()?.remove(0);
    /// backup.put_blocking(newest.seq, &newest.bytes?)?;
    /// assert_eq!(backup.load_blocking::<_, String>(&Json)?.map(|l| l.state).as_deref(), Some("state"));
    /// # Ok(()) }
    /// ```
    pub fn put_blocking(&self, seq: u64, bytes: &[u8]) -> Result<(), SaveError> {
        self.inner.put(seq, bytes)
    }

    /// [`Store::candidates`] on the calling thread: every generation,
    /// newest first, with its bytes unchecked.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json};
    /// use buttress_fs::SimFs;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "model", FileStoreConfig::default())?;
    /// store.save_blocking(&Json, 1, &"a")?;
    /// store.save_blocking(&Json, 2, &"b")?;
    /// let seqs: Vec<u64> = store.candidates_blocking()?.iter().map(|c| c.seq).collect();
    /// assert_eq!(seqs, vec![2, 1]);
    /// # Ok(()) }
    /// ```
    pub fn candidates_blocking(&self) -> Result<Vec<Candidate>, LoadError> {
        self.inner.candidates()
    }

    /// [`Store::latest_seq`] on the calling thread: the highest sequence
    /// stored, valid or not (0 when empty).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{FileStore, FileStoreConfig, Json};
    /// use buttress_fs::SimFs;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "model", FileStoreConfig::default())?;
    /// assert_eq!(store.latest_seq_blocking()?, 0);
    /// store.save_blocking(&Json, 5, &"state")?;
    /// assert_eq!(store.latest_seq_blocking()?, 5);
    /// # Ok(()) }
    /// ```
    pub fn latest_seq_blocking(&self) -> Result<u64, LoadError> {
        self.inner.latest_seq()
    }

    /// The path of generation `seq` (whether it exists or not).
    ///
    /// ```
    /// use std::path::Path;
    /// use std::sync::Arc;
    /// use buttress_checkpoint::{FileStore, FileStoreConfig};
    /// use buttress_fs::SimFs;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FileStore::open_with(Arc::new(SimFs::new()), "/ckpt", "model", FileStoreConfig::default())?;
    /// assert_eq!(store.path(7), Path::new("/ckpt/model.00000000000000000007.ckpt"));
    /// # Ok(()) }
    /// ```
    pub fn path(&self, seq: u64) -> PathBuf {
        self.inner.path(seq)
    }
}

/// Runs file work on tokio's blocking pool, off the async workers.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, tokio::task::JoinError> {
    tokio::task::spawn_blocking(f).await
}

impl Store for FileStore {
    async fn latest_seq(&self) -> Result<u64, LoadError> {
        let inner = self.inner.clone();
        blocking(move || inner.latest_seq())
            .await
            .map_err(LoadError::Task)?
    }

    /// Acknowledges as soon as the checkpoint is durable: the blocking
    /// task answers, then removes the generations it made redundant while
    /// the caller goes on (the last handle of the store waits for it
    /// before it releases the lock).
    async fn put(&self, seq: u64, bytes: Vec<u8>) -> Result<(), SaveError> {
        let inner = self.inner.clone();
        let busy = Busy::new(&inner);
        let (durable, acknowledged) = tokio::sync::oneshot::channel();
        let task = tokio::task::spawn_blocking(move || {
            let _busy = busy;
            let redundant = inner.put_durable(seq, &bytes)?;
            let _ = durable.send(());
            inner.remove(&redundant);
            Ok(())
        });
        match acknowledged.await {
            Ok(()) => Ok(()),
            // The save failed (or panicked) before it was durable.
            Err(_) => task.await.map_err(SaveError::Task)?,
        }
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, LoadError> {
        let inner = self.inner.clone();
        blocking(move || inner.candidates())
            .await
            .map_err(LoadError::Task)?
    }
}
