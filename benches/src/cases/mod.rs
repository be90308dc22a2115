//! The routines the benchmark report gates (`benches/src/bin/report.rs`),
//! one module per crate. Each returns a [`Routine`](crate::Routine): it
//! builds its subject once and then, like criterion's `iter_custom`, runs
//! the operation `iters` times and returns how long that took. The
//! criterion benches measure the same routines, so the report and the
//! detailed tables can never measure two different things.

pub mod admin;
pub mod breaker;
pub mod checkpoint;
pub mod degrade;
pub mod executor;
pub mod health;
pub mod journal;
pub mod limit;
pub mod pressure;
pub mod retry;
pub mod stack;
