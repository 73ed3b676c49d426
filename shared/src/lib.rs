//! # Experiment Broker
//!
//! The library behind the `worker` (and, later, `producer`) binaries: it loads Chaos Toolkit
//! experiments, runs them exactly as the reference implementation does, and writes Chaos
//! Toolkit journals — as one static binary, with no Python needed unless an experiment calls a
//! Python extension.
//!
//! Key choices: the engine is plain async Rust that takes providers and a stop token and
//! returns a journal, and knows nothing of queues, stores or AWS; the loader collects every
//! problem with its file, line, column and field rather than stopping at the first; Python's
//! semantics where experiments depend on them (`str()`, `==`, truthiness, `re`) are reproduced
//! in small pure modules; secrets are masked in everything the engine emits.
//!
//! # Layout
//!
//! - [`model`]: the experiment and the journal, as types (no I/O).
//! - [`load`]: file → `Experiment`: parsing with locations, validation, `--var`/`--var-file`,
//!   configuration and secrets resolution.
//! - [`scope`], [`clock`]: `${name}` substitution and the time helpers, below both the engine
//!   and the providers.
//! - [`engine`]: the run loop, hypothesis, tolerances, strategies.
//! - [`providers`]: `process`, `http`, `python` and the native registry.
//! - [`pyvalue`], [`pyregex`]: Python semantics on JSON values and Python regex patterns.
//! - [`redact`]: secret masking.
//! - [`report`]: HTML, Markdown and JUnit reports of suite runs and journals; the resilience
//!   score.
//! - [`ids`]: unique identifiers (messages, events, suite runs).
//! - [`cleanup`]: work a dropped future's guards leave behind, awaited before exit.
//! - [`fleet`]: the job lifecycle and wave gating around the engine, by who runs it: `worker`,
//!   `producer`, and `safety` (targets, locks, tripwires, orphans).
//! - [`config`]: which adapters back the ports (embedded under a state directory today).
//! - [`ports`]: the job queue, object store and event bus traits (SQS/S3/EventBridge semantics).
//! - [`adapters`]: their implementations; `embedded` is a SQLite file and a directory.
//! - [`contract`]: one test per port promise, run against every adapter.

pub mod adapters;
pub mod cleanup;
pub mod clock;
pub mod config;
pub mod contract;
pub mod durable;
pub mod engine;
pub mod fleet;
pub mod ids;
pub mod load;
pub mod model;
pub mod ports;
pub mod providers;
pub mod pyregex;
pub mod pyvalue;
pub mod redact;
pub mod report;
pub mod scope;

pub use engine::{RunOptions, run_experiment};
pub use load::{Problems, Vars, load_experiment};
pub use model::{Experiment, Journal};
pub use providers::Providers;
