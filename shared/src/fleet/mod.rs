//! The fleet: the job lifecycle and wave gating around the engine, generic over the ports, split
//! by who runs it. `worker/` is the worker's job lifecycle (serve, claim, heartbeat, run,
//! checkpoints); `producer/` the producer's (plan, state, submit, triggers, gating, dead
//! letters, its serve loop, status); `safety/` the machinery that keeps faults bounded and
//! stoppable (target selection, per-target locks, tripwires, what a dead worker left acting).
//! Decisions are small pure functions beside the I/O that acts on them. What worker and
//! producer share is typed here: the store keys of a run (`keys`), how jobs and suites end
//! (`outcome`), and the events (`events`), matching `docs/schemas/events/`; `trace` carries a
//! suite run's trace context from the producer to the workers.

pub mod events;
pub mod keys;
pub mod outcome;
pub mod producer;
pub mod safety;
pub mod trace;
pub mod worker;
