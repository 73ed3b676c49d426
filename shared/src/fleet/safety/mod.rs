//! The safety machinery of the fleet: which targets a fault acts on (`targets`, pure), one
//! fault per target at a time (`locks`), what stops a run from outside it (`guard`: the kill
//! switch and stop conditions), and what a dead worker left acting (`orphans`).

pub mod guard;
pub mod locks;
pub mod orphans;
pub mod targets;
