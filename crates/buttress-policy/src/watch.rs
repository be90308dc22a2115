//! Watching the policy file: each saved version is applied, or refused
//! and logged with its problems while the running policy stays as it was.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::document::PolicyDocument;
use crate::file::{FileError, read};
use crate::policy::Policy;

/// How long a burst of file events must be quiet before the file is
/// read: editors write a file in several steps (truncate, write, rename).
const SETTLE: Duration = Duration::from_millis(100);

/// Why a file could not be watched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The file's extension names no format this crate reads.
    #[error("the policy file {0} must end in .toml, .yaml, .yml or .json")]
    Format(PathBuf),
    /// The file's directory cannot be watched.
    #[error("cannot watch the directory of {path}")]
    Watch {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
    /// Watching needs a tokio runtime to apply changes on.
    #[error("watching a policy file needs a tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
}

/// A watch on a policy file; dropping it stops the watch.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    status: watch::Receiver<WatchStatus>,
}

/// What a [`FileWatch`] did last.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WatchStatus {
    /// How many times the file was read after a change.
    pub reads: u64,
    /// Why the last version read was refused; `None` once one is applied
    /// (or when it held the policy already in force).
    pub last_error: Option<Arc<FileError>>,
}

impl FileWatch {
    /// Why the last saved version was refused, until one is applied.
    pub fn last_error(&self) -> Option<Arc<FileError>> {
        self.status.borrow().last_error.clone()
    }

    /// A receiver that sees each read of the file and its outcome.
    pub fn subscribe(&self) -> watch::Receiver<WatchStatus> {
        self.status.clone()
    }
}

impl Policy {
    /// Watches `path` and applies each version saved there, by
    /// `"file <path>"`. The directory is watched, not the file, so an
    /// editor that saves by writing a new file and renaming it over the old
    /// one is followed. A version that is invalid, or that the running
    /// primitives cannot take, is refused whole: its problems are logged
    /// (`tracing` errors, one per problem, with path and line) and kept in
    /// [`FileWatch::last_error`], and the policy in force stays.
    ///
    /// Must be called inside a tokio runtime.
    pub fn watch_file(&self, path: impl AsRef<FsPath>) -> Result<FileWatch, WatchError> {
        let path = path.as_ref().to_owned();
        if crate::Format::from_path(&path).is_none() {
            return Err(WatchError::Format(path));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(WatchError::NoRuntime)?;
        // A bare file name's parent is "", which the watcher takes as the
        // current directory.
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), ToOwned::to_owned);
        let name = path.file_name().map(ToOwned::to_owned);
        let (tx, rx) = mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let ours = match &event {
                    // Reading the file is an event too (an open, a close):
                    // only a change counts, or each read would cause the next.
                    Ok(e) if e.kind.is_access() => false,
                    Ok(e) => e.paths.iter().any(|p| p.file_name() == name.as_deref()),
                    // An error of the watch itself: read the file to be sure.
                    Err(_) => true,
                };
                if ours {
                    // Full means a read is already due: it will see this change.
                    let _ = tx.try_send(());
                }
            })
            .map_err(|source| WatchError::Watch {
                path: path.clone(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                path: path.clone(),
                source,
            })?;
        let (status, status_rx) = watch::channel(WatchStatus::default());
        // The task ends when the watcher, which holds the sending side of
        // its channel, is dropped with the `FileWatch`.
        runtime.spawn(follow(self.clone(), path, rx, status));
        Ok(FileWatch {
            _watcher: watcher,
            status: status_rx,
        })
    }
}

/// Applies the file each time it settles after a change.
async fn follow(
    policy: Policy,
    path: PathBuf,
    mut changed: mpsc::Receiver<()>,
    status: watch::Sender<WatchStatus>,
) {
    while changed.recv().await.is_some() {
        // Let the editor finish: wait until events stop for a moment.
        while let Ok(Some(())) = tokio::time::timeout(SETTLE, changed.recv()).await {}
        let outcome = read(&path).and_then(|(text, format)| {
            let refused = |source| FileError::Document {
                path: path.clone(),
                source,
            };
            // The same policy saved again (or the watcher's own noise) is
            // not a new version.
            let document = PolicyDocument::parse(&text, format).map_err(refused)?;
            if document == policy.current().document {
                return Ok(None);
            }
            policy
                .apply_text(&text, format, crate::file::by(&path))
                .map(Some)
                .map_err(refused)
        });
        let error = match outcome {
            Ok(None) => None,
            Ok(Some(applied)) => {
                tracing::info!(file = %path.display(), version = applied.version, "policy file applied");
                None
            }
            Err(e) => {
                match e.document() {
                    Some(d) => {
                        for p in d.problems() {
                            tracing::error!(file = %path.display(), "policy file refused: {p}");
                        }
                    }
                    None => tracing::error!(file = %path.display(), "policy file refused: {e}"),
                }
                Some(Arc::new(e))
            }
        };
        status.send_modify(|s| {
            s.reads += 1;
            s.last_error = error;
        });
    }
}
