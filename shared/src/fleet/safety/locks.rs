//! Per-target locks: before a fault acts on a target it takes an exclusive, expiring lock on it
//! in the store (`locks/<target>`, a conditional create), and releases it after the fault's
//! revert; so two faults never stack on one host, even from two workers or two experiments.
//!
//! A lock names its owner and when it expires (the fault's duration plus a margin), so a lock
//! left by a worker that died is taken over once it has expired. A second experiment aiming at
//! a locked target fails at once (the default) or waits up to `wait_seconds`, as its
//! `experiment-broker` extension says: `locks: {on_conflict: wait, wait_seconds: 600}`.
//!
//! Taking over an expired lock replaces it conditionally on the version read (`replace_if`),
//! so of any number of takers of one expired lock exactly one wins; a release deletes the lock
//! only if it is still the version it read and names the releasing owner (`delete_if`), so a
//! former owner never deletes a lock someone took over since. When a create or takeover is
//! refused, the lock is read again: if it names our owner, an earlier attempt of ours landed
//! (a write retried after a lost answer) and we hold it. Owners must therefore be unique to
//! one holding (the worker's host, process id and a random number).

use crate::ports::store::Version;
use crate::ports::{ObjectStore, StoreError};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why locks could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another fault holds `target`: a guard rail's refusal, not a store failure.
    #[error("{message}")]
    Held { target: String, message: String },
    /// The store could not be read or written while `doing` (e.g. "taking") the lock `key`.
    #[error("{doing} the lock {key}: {source}")]
    Store {
        doing: &'static str,
        key: String,
        #[source]
        source: StoreError,
    },
}

/// Why an experiment's `locks` policy (its `experiment-broker` extension) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `locks` is not a mapping.
    #[error("{POLICY_FIELD}: expected {{on_conflict: fail|wait, wait_seconds: N}}")]
    NotAMapping,
    /// `wait_seconds` is not a number of seconds from 1 to 86400.
    #[error("{POLICY_FIELD}.wait_seconds: expected seconds from 1 to 86400, got {got}")]
    WaitSeconds { got: Value },
    /// `on_conflict` is neither `fail` nor `wait`.
    #[error("{POLICY_FIELD}.on_conflict: expected fail or wait, got {got:?}")]
    OnConflict { got: String },
}

impl PolicyError {
    /// Whether `text` is in the message (tests and callers that only look).
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }
}

/// Where the lock policy sits in an experiment, for messages.
const POLICY_FIELD: &str = "extensions[experiment-broker].locks";

impl LockError {
    /// Whether `text` is in the message (tests and callers that only look).
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }
}

/// What to do when a target is locked by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Fail,
    Wait(Duration),
}

/// The experiment's lock policy, from its `experiment-broker` extension. Pure.
pub fn policy(extension: &Map<String, Value>) -> Result<OnConflict, PolicyError> {
    let Some(locks) = extension.get("locks").filter(|v| !v.is_null()) else {
        return Ok(OnConflict::Fail);
    };
    let locks = locks.as_object().ok_or(PolicyError::NotAMapping)?;
    match locks
        .get("on_conflict")
        .and_then(Value::as_str)
        .unwrap_or("fail")
    {
        "fail" => Ok(OnConflict::Fail),
        "wait" => {
            let secs = match locks.get("wait_seconds") {
                None | Some(Value::Null) => 300.0,
                Some(v) => v
                    .as_f64()
                    .filter(|s| *s > 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| PolicyError::WaitSeconds { got: v.clone() })?,
            };
            Ok(OnConflict::Wait(Duration::from_secs_f64(secs)))
        }
        other => Err(PolicyError::OnConflict {
            got: other.to_string(),
        }),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The store key of a target's lock.
pub fn key(target: &str) -> String {
    format!("locks/{}", target.replace('/', "_"))
}

/// Who holds a lock, if it still holds: `None` when it has expired or is unreadable. Pure.
pub fn holder(lock: &[u8], now: u64) -> Option<String> {
    let v: Value = serde_json::from_slice(lock).ok()?;
    let until = v["expires_at"].as_u64()?;
    (until > now).then(|| {
        format!(
            "{} ({}) until {}",
            v["owner"].as_str().unwrap_or("?"),
            v["activity"].as_str().unwrap_or("?"),
            until
        )
    })
}

/// The owner a lock names, if it is readable. Pure.
pub fn owner_of(lock: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(lock).ok()?;
    v["owner"].as_str().map(str::to_string)
}

/// What a taker does once its create found the key taken, given the lock it read then. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The lock has gone since: create it again.
    Create,
    /// The lock names us and holds: an earlier write of ours landed, so we hold it.
    Ours,
    /// Expired or unreadable: replace it, conditional on the version read.
    TakeOver,
    /// Someone else holds it (who, and until when): wait, or fail.
    Held(String),
}

/// Decide what to do about the lock read after a refused create. Pure.
pub fn next(lock: Option<&[u8]>, owner: &str, now: u64) -> Next {
    let Some(lock) = lock else {
        return Next::Create;
    };
    match holder(lock, now) {
        None => Next::TakeOver,
        Some(_) if owner_of(lock).as_deref() == Some(owner) => Next::Ours,
        Some(by) => Next::Held(by),
    }
}

/// Take a lock on every target (in sorted order, so two takers cannot deadlock), or none: on
/// a conflict the locks taken so far are released and the error names the target and holder.
/// `owner` must be unique to this holding: a lock found naming it is taken to be ours.
pub async fn acquire<S: ObjectStore>(
    store: &S,
    targets: &[String],
    owner: &str,
    activity: &str,
    ttl: Duration,
    on_conflict: OnConflict,
) -> Result<(), LockError> {
    let mut sorted = targets.to_vec();
    sorted.sort();
    sorted.dedup();
    let deadline = match on_conflict {
        OnConflict::Fail => None,
        OnConflict::Wait(d) => Some(std::time::Instant::now() + d),
    };
    let mut taken: Vec<String> = Vec::new();
    for target in &sorted {
        let lock = Lock {
            target,
            owner,
            activity,
            ttl,
        };
        if let Err(e) = take(store, &lock, deadline).await {
            release(store, &taken, owner).await;
            return Err(e);
        }
        taken.push(target.clone());
    }
    Ok(())
}

/// One lock to take.
struct Lock<'a> {
    target: &'a str,
    owner: &'a str,
    activity: &'a str,
    ttl: Duration,
}

impl Lock<'_> {
    /// The lock's content, expiring `ttl` from now.
    fn body(&self) -> Vec<u8> {
        json!({"owner": self.owner, "activity": self.activity, "target": self.target,
               "acquired_at": now(), "expires_at": now().saturating_add(self.ttl.as_secs().max(1))})
        .to_string()
        .into_bytes()
    }
}

/// Take one target's lock, waiting for its holder until `deadline` (none: fail at once).
async fn take<S: ObjectStore>(
    store: &S,
    lock: &Lock<'_>,
    deadline: Option<std::time::Instant>,
) -> Result<(), LockError> {
    let k = key(lock.target);
    loop {
        match store.put_if_absent(&k, &lock.body()).await {
            Ok(()) => return Ok(()),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(source) => {
                return Err(LockError::Store {
                    doing: "taking",
                    key: k,
                    source,
                });
            }
        }
        let existing: Option<(Vec<u8>, Version)> =
            store
                .get_versioned(&k)
                .await
                .map_err(|source| LockError::Store {
                    doing: "reading",
                    key: k.clone(),
                    source,
                })?;
        match next(existing.as_ref().map(|(b, _)| &b[..]), lock.owner, now()) {
            Next::Create => {}
            Next::Ours => return Ok(()),
            Next::TakeOver => {
                let Some((_, version)) = existing else {
                    continue;
                };
                tracing::warn!("lock {k} has expired: taking it over");
                match store.replace_if(&k, &lock.body(), &version).await {
                    Ok(_) => return Ok(()),
                    // changed since read: another taker won, or our own write landed before a
                    // retry; the next round reads whose it is
                    Err(StoreError::VersionMismatch { .. }) => {}
                    Err(source) => {
                        return Err(LockError::Store {
                            doing: "taking over",
                            key: k,
                            source,
                        });
                    }
                }
            }
            Next::Held(by) => match deadline {
                Some(d) if std::time::Instant::now() < d => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                _ => {
                    return Err(LockError::Held {
                        target: lock.target.to_string(),
                        message: format!(
                            "target {} is locked by {by}: another fault is acting on it{}",
                            lock.target,
                            if deadline.is_some() {
                                " (waited as long as locks.wait_seconds allows)"
                            } else {
                                "; set locks: {on_conflict: wait} to wait for it"
                            }
                        ),
                    });
                }
            },
        }
    }
}

/// Release the locks `owner` holds on `targets`: each is deleted only if it names `owner` and
/// is still the version read (a lock another owner took over, even after the read, is left).
pub async fn release<S: ObjectStore>(store: &S, targets: &[String], owner: &str) {
    for target in targets {
        let k = key(target);
        let version = match store.get_versioned(&k).await {
            Ok(Some((bytes, version))) if owner_of(&bytes).as_deref() == Some(owner) => version,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("reading lock {k} to release it: {e} (it expires on its own)");
                continue;
            }
        };
        match store.delete_if(&k, &version).await {
            Ok(()) => {}
            Err(StoreError::VersionMismatch { .. }) => {
                tracing::warn!(
                    "lock {k} was taken over as it was being released: left to its new owner"
                );
            }
            Err(e) => tracing::warn!("releasing lock {k}: {e} (it expires on its own)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::DirStore;

    #[test]
    fn the_policy_is_read_from_the_extension() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(policy(&Map::new()).unwrap(), OnConflict::Fail);
        assert_eq!(
            policy(&m(json!({"locks": {"on_conflict": "wait"}}))).unwrap(),
            OnConflict::Wait(Duration::from_secs(300))
        );
        assert_eq!(
            policy(&m(
                json!({"locks": {"on_conflict": "wait", "wait_seconds": 5}})
            ))
            .unwrap(),
            OnConflict::Wait(Duration::from_secs(5))
        );
        assert!(
            policy(&m(json!({"locks": {"on_conflict": "steal"}})))
                .unwrap_err()
                .contains("on_conflict")
        );
        assert!(
            policy(&m(
                json!({"locks": {"on_conflict": "wait", "wait_seconds": -1}})
            ))
            .unwrap_err()
            .contains("wait_seconds")
        );
        assert!(policy(&m(json!({"locks": true}))).is_err());
    }

    #[test]
    fn a_lock_holds_until_it_expires() {
        let lock = json!({"owner": "w1", "activity": "cpu", "expires_at": 100}).to_string();
        assert_eq!(
            holder(lock.as_bytes(), 99).as_deref(),
            Some("w1 (cpu) until 100")
        );
        assert_eq!(holder(lock.as_bytes(), 100), None);
        assert_eq!(
            holder(b"garbage", 0),
            None,
            "an unreadable lock does not hold"
        );
    }

    #[test]
    fn after_a_refused_create_the_lock_read_decides_the_next_step() {
        let lock = |owner: &str, until: u64| {
            json!({"owner": owner, "activity": "cpu", "expires_at": until}).to_string()
        };
        let (mine, theirs) = (lock("me", 100), lock("them", 100));
        let table: [(Option<&[u8]>, u64, Next); 7] = [
            (None, 50, Next::Create),
            (Some(mine.as_bytes()), 50, Next::Ours),
            (Some(mine.as_bytes()), 100, Next::TakeOver),
            (
                Some(theirs.as_bytes()),
                50,
                Next::Held("them (cpu) until 100".into()),
            ),
            (Some(theirs.as_bytes()), 100, Next::TakeOver),
            (Some(b"garbage"), 50, Next::TakeOver),
            (Some(b"{}"), 50, Next::TakeOver),
        ];
        for (existing, now, want) in table {
            assert_eq!(next(existing, "me", now), want, "{existing:?} at {now}");
        }
        assert_eq!(owner_of(theirs.as_bytes()).as_deref(), Some("them"));
        assert_eq!(owner_of(b"garbage"), None);
    }

    #[tokio::test]
    async fn a_create_that_landed_before_its_retry_answered_exists_is_held() {
        // an earlier attempt's write landed (its answer was lost): the lock names us
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let ours = json!({"owner": "a", "activity": "cpu", "expires_at": now() + 60}).to_string();
        store.put(&key("i-1"), ours.as_bytes()).await.unwrap();
        acquire(
            &store,
            &["i-1".into()],
            "a",
            "cpu",
            Duration::from_secs(60),
            OnConflict::Fail,
        )
        .await
        .unwrap();
        release(&store, &["i-1".into()], "a").await;
        assert_eq!(store.get(&key("i-1")).await.unwrap(), None, "released");
    }

    #[tokio::test]
    async fn a_lock_whose_create_lost_its_answer_is_held_by_its_taker_alone() {
        use crate::contract::store::{Interference, Interfering};
        let dir = tempfile::tempdir().unwrap();
        let plain = DirStore::new(dir.path());
        // the create lands, its answer is lost, the retry is answered "exists"
        let store = Interfering::new(plain.clone(), "i-1", Interference::LoseAnswer);
        let ttl = Duration::from_secs(60);
        acquire(&store, &["i-1".into()], "a", "cpu", ttl, OnConflict::Fail)
            .await
            .unwrap();
        assert_eq!(store.interfered(), [key("i-1")], "the answer was lost");
        let e = acquire(&plain, &["i-1".into()], "b", "mem", ttl, OnConflict::Fail)
            .await
            .unwrap_err();
        assert!(e.contains("target i-1 is locked by a (cpu)"), "{e}");
        release(&store, &["i-1".into()], "a").await;
        assert_eq!(plain.get(&key("i-1")).await.unwrap(), None, "released");
    }

    #[tokio::test]
    async fn two_owners_never_hold_one_target_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let ids = vec!["i-2".to_string(), "i-1".to_string()];
        let ttl = Duration::from_secs(60);
        acquire(&store, &ids, "a", "cpu", ttl, OnConflict::Fail)
            .await
            .unwrap();
        let e = acquire(
            &store,
            &["i-3".into(), "i-1".into()],
            "b",
            "mem",
            ttl,
            OnConflict::Fail,
        )
        .await
        .unwrap_err();
        assert!(e.contains("target i-1 is locked by a (cpu)"), "{e}");
        assert_eq!(
            store.get(&key("i-3")).await.unwrap(),
            None,
            "all or nothing: i-3 was released"
        );
        release(&store, &ids, "b").await;
        assert!(
            store.get(&key("i-1")).await.unwrap().is_some(),
            "b cannot release a's lock"
        );
        release(&store, &ids, "a").await;
        acquire(&store, &ids, "b", "mem", ttl, OnConflict::Fail)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_expired_lock_is_taken_over_and_a_waiter_gets_the_lock_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let stale = json!({"owner": "dead", "activity": "x", "expires_at": 1}).to_string();
        store.put(&key("i-1"), stale.as_bytes()).await.unwrap();
        acquire(
            &store,
            &["i-1".into()],
            "a",
            "cpu",
            Duration::from_secs(60),
            OnConflict::Fail,
        )
        .await
        .unwrap();
        let store2 = store.clone();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            release(&store2, &["i-1".into()], "a").await;
        });
        acquire(
            &store,
            &["i-1".into()],
            "b",
            "mem",
            Duration::from_secs(60),
            OnConflict::Wait(Duration::from_secs(10)),
        )
        .await
        .unwrap();
        releaser.await.unwrap();
        let lock: Value =
            serde_json::from_slice(&store.get(&key("i-1")).await.unwrap().unwrap()).unwrap();
        assert_eq!(lock["owner"], "b");
    }
}
