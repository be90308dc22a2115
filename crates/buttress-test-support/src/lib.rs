//! Helpers shared by the buttress crates' integration tests, so that no
//! crate carries its own copy: scripted and flaky upstreams
//! ([`mock`]), the harness that runs the test binary itself as a child
//! process to `kill -9` ([`process`]), and the check that a service
//! (PostgreSQL, Redis) is there ([`services`]), the checks of the error
//! convention ([`errors`]) and of refused configuration documents
//! ([`config`]), and the warnings code logs ([`logs`]).
//!
//! Not published: the crates list it under `[dev-dependencies]` by path
//! only.
#![allow(clippy::unwrap_used)]

pub mod config;
pub mod errors;
pub mod logs;
pub mod mock;
pub mod process;
pub mod services;

use std::path::PathBuf;

/// A fresh, empty directory under `base` (a test's `CARGO_TARGET_TMPDIR`)
/// named for the crate, the test and this process.
pub fn fresh_dir(base: &str, prefix: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(base).join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}
