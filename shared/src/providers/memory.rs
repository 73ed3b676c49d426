//! A run's memory: what native activities of one run keep for the others of the same run.
//!
//! The engine makes one `RunMemory` per run and hands it to every native call of that run
//! (hypotheses, method, background activities, rollbacks); it never looks inside. A provider
//! keeps its own state there under its own type, e.g. the load generator's request records,
//! which the load probes of the same run read back. Nothing outlives the run and nothing is
//! shared between runs, so two experiments a worker runs at once never see each other's data.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Slots = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// One run's memory: at most one value per type, made on first use. Cloning shares it.
#[derive(Clone, Default)]
pub struct RunMemory(Arc<Mutex<Slots>>);

impl RunMemory {
    /// The run's value of type `T`, made with `T::default()` the first time it is asked for.
    pub fn get<T: Any + Send + Sync + Default>(&self) -> Arc<T> {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        match slot.clone().downcast::<T>() {
            Ok(value) => value,
            // the slot is keyed by T's TypeId, so it always holds a T
            Err(_) => unreachable!("a run memory slot holds another type than its key"),
        }
    }
}

impl std::fmt::Debug for RunMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "RunMemory({n} slots)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Default)]
    struct Counter(AtomicU32);

    #[test]
    fn clones_share_one_value_per_type_and_separate_memories_do_not() {
        let run = RunMemory::default();
        let same_run = run.clone();
        run.get::<Counter>().0.fetch_add(1, Ordering::SeqCst);
        same_run.get::<Counter>().0.fetch_add(1, Ordering::SeqCst);
        assert_eq!(run.get::<Counter>().0.load(Ordering::SeqCst), 2);
        let other_run = RunMemory::default();
        assert_eq!(other_run.get::<Counter>().0.load(Ordering::SeqCst), 0);
        assert_eq!(
            run.get::<String>().as_str(),
            "",
            "another type, another slot"
        );
    }
}
