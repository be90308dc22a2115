//! Where a journal's files live and what they are called.
//!
//! A journal `telemetry` in `dir` is the files `telemetry.<id>.jsonl`, with
//! ids counting up from 1 (ten digits, so that names sort). The file with
//! the highest id is the active one; the others are sealed and may be
//! compressed to `telemetry.<id>.jsonl.gz`. An id never changes and is
//! never reused, so a reader's cursor names a file by id whatever happens
//! to it afterwards.

use std::io;
use std::path::{Path, PathBuf};

use buttress_fs::Fs;

/// The journal's directory and name.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
}

/// One file of the journal, as listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) compressed: bool,
}

/// A leftover of an interrupted compression.
#[derive(Clone, Debug)]
pub(crate) struct TempFile {
    pub(crate) id: u64,
    pub(crate) name: PathBuf,
}

/// The journal's files: segments sorted by id (for an id with both a plain
/// and a compressed file, both are listed, plain first) and temp files.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) segments: Vec<Segment>,
    pub(crate) temps: Vec<TempFile>,
}

impl Listing {
    /// The highest id.
    pub(crate) fn newest(&self) -> Option<u64> {
        self.segments.last().map(|s| s.id)
    }

    /// The file to read for each id: the plain one when both exist (the
    /// compressed copy may be unfinished business of a crash).
    pub(crate) fn readable(&self) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            if out.last().is_none_or(|last| last.id != s.id) {
                out.push(*s);
            }
        }
        out
    }
}

impl Layout {
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        Layout {
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    pub(crate) fn path(&self, segment: Segment) -> PathBuf {
        let ext = if segment.compressed {
            "jsonl.gz"
        } else {
            "jsonl"
        };
        self.dir
            .join(format!("{}.{:010}.{ext}", self.name, segment.id))
    }

    pub(crate) fn plain(&self, id: u64) -> PathBuf {
        self.path(Segment {
            id,
            compressed: false,
        })
    }

    pub(crate) fn temp(&self, id: u64) -> PathBuf {
        buttress_fs::temp_path(&self.path(Segment {
            id,
            compressed: true,
        }))
    }

    /// Parses a file name of this journal.
    fn parse(&self, name: &str) -> Option<Result<Segment, u64>> {
        let rest = name.strip_prefix(&self.name)?.strip_prefix('.')?;
        let (digits, ext) = rest.split_once('.')?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id = digits.parse().ok()?;
        match ext {
            "jsonl" => Some(Ok(Segment {
                id,
                compressed: false,
            })),
            "jsonl.gz" => Some(Ok(Segment {
                id,
                compressed: true,
            })),
            _ if ext.starts_with("jsonl.gz.tmp-") => Some(Err(id)),
            _ => None,
        }
    }

    /// Lists the journal's files; a directory not yet created holds none.
    pub(crate) fn list(&self, fs: &dyn Fs) -> io::Result<Listing> {
        let mut listing = Listing::default();
        let entries = match fs.list(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let Some(name) = entry.to_str() else { continue };
            match self.parse(name) {
                Some(Ok(segment)) => listing.segments.push(segment),
                Some(Err(id)) => listing.temps.push(TempFile {
                    id,
                    name: entry.clone(),
                }),
                None => {}
            }
        }
        listing.segments.sort();
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let layout = Layout::new(Path::new("/j"), "t");
        let seg = Segment {
            id: 42,
            compressed: true,
        };
        let path = layout.path(seg);
        assert_eq!(path, Path::new("/j/t.0000000042.jsonl.gz"));
        assert_eq!(layout.parse("t.0000000042.jsonl.gz"), Some(Ok(seg)));
        assert_eq!(layout.parse("t.0000000042.jsonl.gz.tmp-1-2"), Some(Err(42)));
        for stranger in [
            "t.42.jsonl",
            "u.0000000042.jsonl",
            "t.000000004x.jsonl",
            "t.0000000042.txt",
            "tt.0000000042.jsonl",
        ] {
            assert_eq!(layout.parse(stranger), None, "{stranger}");
        }
    }
}
