//! Work on sealed files, off the write path: compression, retention, and
//! cleaning up after a crash in the middle of either.
//!
//! Compression of file `n` keeps one whole copy on disk at every instant:
//!
//! 1. take the `flock` of `n.jsonl` without waiting (if another process is
//!    compressing it, leave it to that one);
//! 2. write `n.jsonl.gz.tmp-<pid>-<random>`, created exclusively, and
//!    finish the gzip stream;
//! 3. fsync it, rename it to `n.jsonl.gz`, fsync the directory;
//! 4. only then remove `n.jsonl` and fsync the directory.
//!
//! A crash before 3 leaves a temp file, removed on the next run; a crash
//! between 3 and 4 leaves both, and readers use the plain one until the
//! next run removes it.

use std::io::{self, Write};
use std::path::Path;

use buttress_fs::{File, Fs};
use flate2::Compression as Level;
use flate2::write::GzEncoder;

use crate::config::Compression;
use crate::layout::{Layout, Segment};

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) compressed: usize,
    pub(crate) removed: usize,
}

/// Keeps what the config says, compresses what it says; never touches the
/// newest file.
pub(crate) fn run(
    fs: &dyn Fs,
    layout: &Layout,
    compression: Compression,
    keep_files: Option<usize>,
    keep_bytes: Option<u64>,
) -> io::Result<Report> {
    let mut report = Report::default();
    let listing = layout.list(fs)?;
    let Some(newest) = listing.newest() else {
        return Ok(report);
    };
    let mut dir_dirty = false;

    // Temp files whose compression is not running any more.
    for temp in &listing.temps {
        let plain = layout.plain(temp.id);
        let busy = match fs.open_read(&plain) {
            Ok(file) => !file.try_lock()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if !busy {
            remove_if_present(fs, &layout.dir.join(&temp.name))?;
            dir_dirty = true;
        }
    }

    if compression == Compression::Gzip {
        let sealed: Vec<u64> = listing
            .segments
            .iter()
            .filter(|s| !s.compressed && s.id < newest)
            .map(|s| s.id)
            .collect();
        for id in sealed {
            if compress(fs, layout, id)? {
                report.compressed += 1;
            }
        }
    }

    // Retention, oldest first, never the newest.
    if keep_files.is_some() || keep_bytes.is_some() {
        let listing = layout.list(fs)?;
        let files = listing.readable();
        let mut sizes = Vec::with_capacity(files.len());
        for seg in &files {
            sizes.push(fs.metadata(&layout.path(*seg)).map(|m| m.len).unwrap_or(0));
        }
        let mut count = files.len();
        let mut total: u64 = sizes.iter().sum();
        for (seg, size) in files.iter().zip(&sizes) {
            let over_count = keep_files.is_some_and(|k| count > k);
            let over_bytes = keep_bytes.is_some_and(|k| total > k);
            if seg.id == newest || !(over_count || over_bytes) {
                break;
            }
            // Both copies, when a crash left two.
            for compressed in [false, true] {
                remove_if_present(
                    fs,
                    &layout.path(Segment {
                        id: seg.id,
                        compressed,
                    }),
                )?;
            }
            count -= 1;
            total -= size;
            report.removed += 1;
            dir_dirty = true;
        }
    }
    if dir_dirty {
        fs.sync_dir(&layout.dir)?;
    }
    Ok(report)
}

fn remove_if_present(fs: &dyn Fs, path: &Path) -> io::Result<()> {
    match fs.remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `io::Write` over a seam file.
struct Sink<'a>(&'a dyn File);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compresses sealed file `id`; returns whether this call did it.
fn compress(fs: &dyn Fs, layout: &Layout, id: u64) -> io::Result<bool> {
    let plain = layout.plain(id);
    let source = match fs.open_read(&plain) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !source.try_lock()? {
        return Ok(false);
    }
    let gz = layout.path(Segment {
        id,
        compressed: true,
    });
    if fs.metadata(&gz).is_ok() {
        // A crash came between the rename and the removal.
        remove_if_present(fs, &plain)?;
        fs.sync_dir(&layout.dir)?;
        return Ok(false);
    }
    let temp = layout.temp(id);
    let out = fs.create_new(&temp)?;
    let result = (|| {
        let mut encoder = GzEncoder::new(Sink(&*out), Level::default());
        let mut buf = vec![0; 256 * 1024];
        let mut offset = 0u64;
        loop {
            let n = source.read_at(&mut buf, offset)?;
            if n == 0 {
                break;
            }
            encoder.write_all(&buf[..n])?;
            offset += n as u64;
        }
        encoder.finish()?;
        out.sync_all()?;
        fs.rename(&temp, &gz)?;
        fs.sync_dir(&layout.dir)
    })();
    if let Err(e) = result {
        let _ = fs.remove_file(&temp);
        return Err(e);
    }
    remove_if_present(fs, &plain)?;
    fs.sync_dir(&layout.dir)?;
    Ok(true)
}
