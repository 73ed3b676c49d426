//! The worker's job lifecycle, generic over the ports: receive → lease → heartbeat → fetch →
//! run (checkpoints as it goes) → journal → completion event → ack.
//!
//! Invariants kept here:
//! - **Never re-inject on redelivery.** Before the engine runs, a `started` marker is created
//!   under the run's key (conditional create: one owner per run). A job received again whose
//!   marker exists and whose journal does not (its worker died or lost the lease) only runs its
//!   rollbacks and ends `interrupted`. A second copy of a job (SQS delivers at least once; a
//!   producer may resend) is told apart by the marker's message id and receive count
//!   (`claim`): it neither runs nor reverts while the owner may still be running.
//! - **A lost answer never loses a completion.** Each delivery draws a random token and puts
//!   it in the objects it creates conditionally (the `started` marker, the journal's
//!   `broker.delivery`). When a create is answered "exists" (the SDK retried a write whose
//!   answer was lost), the object is read back (`create_owned`): if it holds this delivery's
//!   bytes, it is ours and the delivery carries on (runs; publishes the journal unless its
//!   `completed` marker is there); only another delivery's object makes it stand aside.
//! - **A revert keeps what the dead owner did, and stops it.** The owner keeps the exact
//!   experiment text under the run's prefix before anything runs; the revert reads the dead
//!   owner's checkpoint first, has what its `broker.records` name stopped (`orphans`: e.g. an
//!   SSM command cancelled and seen to end), then plays the rollbacks of that copy, loaded with
//!   validation limited to what rollbacks need (`load::revert`): a source deleted or edited
//!   since, a missing variable or module never skips them. Its checkpoints and journal carry
//!   the dead owner's runs and records, then the revert (`checkpoints::carry_over`).
//! - **Nothing is lost.** Every received message ends in one journal and one completion event,
//!   then is acked: a malformed message, a missing or invalid experiment, a run the engine
//!   refuses: all become `failed` journals with the reason. A journal already written with its
//!   event published (the ack was lost) is acked without running again.
//! - **Leases are held while runs are live.** A heartbeat extends the lease every third of the
//!   visibility timeout; if the lease is lost anyway, the run is interrupted (its rollbacks
//!   run), since another worker now owns the job.
//! - **Shutdown is graceful.** When `shutdown` resolves, no new message is received; running
//!   jobs get `grace` to finish, then are interrupted (rollbacks run), journaled and acked.

//!
//! One job per file: `serve` (the loop: receive, spawn, drain), `job` (one delivery: claim,
//! journal, completion event, ack), `run` (fetch, load and run or revert the experiment),
//! `claim` (the pure ownership decisions), `heartbeat` (the lease), `checkpoints`, `error` (why
//! a delivery is left to come back, why a fetch failed).

pub mod checkpoints;
pub mod claim;
pub mod error;
mod heartbeat;
mod job;
mod run;
pub mod serve;

#[cfg(test)]
mod ownership_tests;

pub use claim::{AfterJournal, Claim, after_journal, claim};
pub use serve::serve;

use std::time::Duration;

/// How a worker serves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// The lease on a received job; heartbeats renew it every third of it.
    pub visibility: Duration,
    /// Long-poll wait of each receive.
    pub wait: Duration,
    /// On shutdown, how long running jobs may go on before they are interrupted.
    pub grace: Duration,
    /// Names this worker in markers and events.
    pub worker_id: String,
}

/// The ports a worker uses.
#[derive(Debug, Clone)]
pub struct WorkerPorts<Q, S, B> {
    pub jobs: Q,
    pub store: S,
    pub bus: B,
}
