//! Per-target locks: before a fault acts on a target it takes an exclusive, expiring lock on it
//! in the store (`locks/<target>`, a conditional create), and releases it after the fault's
//! revert; so two faults never stack on one host, even from two workers or two experiments.
//!
//! A lock names its owner and when it expires (the fault's duration plus a margin), so a lock
//! left by a worker that died is taken over once it has expired. A second experiment aiming at
//! a locked target fails at once (the default) or waits up to `wait_seconds`, as its
//! `experiment-broker` extension says: `locks: {on_conflict: wait, wait_seconds: 600}`.
//!
//! Taking over an expired lock is a delete then a conditional create: two workers doing it at
//! the same instant both delete, and only one creates. The window is the lock's expiry, i.e.
//! only for locks whose holder is long gone.

use crate::ports::{ObjectStore, StoreError};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to do when a target is locked by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Fail,
    Wait(Duration),
}

/// The experiment's lock policy, from its `experiment-broker` extension. Pure.
pub fn policy(extension: &Map<String, Value>) -> Result<OnConflict, String> {
    let Some(locks) = extension.get("locks").filter(|v| !v.is_null()) else {
        return Ok(OnConflict::Fail);
    };
    let field = "extensions[experiment-broker].locks";
    let locks = locks
        .as_object()
        .ok_or_else(|| format!("{field}: expected {{on_conflict: fail|wait, wait_seconds: N}}"))?;
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
                    .ok_or_else(|| {
                        format!("{field}.wait_seconds: expected seconds from 1 to 86400, got {v}")
                    })?,
            };
            Ok(OnConflict::Wait(Duration::from_secs_f64(secs)))
        }
        other => Err(format!(
            "{field}.on_conflict: expected fail or wait, got {other:?}"
        )),
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

/// Take a lock on every target (in sorted order, so two takers cannot deadlock), or none: on
/// a conflict the locks taken so far are released and the error names the target and holder.
pub async fn acquire<S: ObjectStore>(
    store: &S,
    targets: &[String],
    owner: &str,
    activity: &str,
    ttl: Duration,
    on_conflict: OnConflict,
) -> Result<(), String> {
    let mut sorted = targets.to_vec();
    sorted.sort();
    sorted.dedup();
    let deadline = match on_conflict {
        OnConflict::Fail => None,
        OnConflict::Wait(d) => Some(std::time::Instant::now() + d),
    };
    let mut taken: Vec<String> = Vec::new();
    for target in &sorted {
        let k = key(target);
        loop {
            let body = json!({"owner": owner, "activity": activity, "target": target,
                              "acquired_at": now(), "expires_at": now().saturating_add(ttl.as_secs().max(1))});
            match store.put_if_absent(&k, body.to_string().as_bytes()).await {
                Ok(()) => {
                    taken.push(target.clone());
                    break;
                }
                Err(StoreError::AlreadyExists { .. }) => {
                    let existing = store.get(&k).await.map_err(|e| e.to_string())?;
                    match existing.as_deref().and_then(|b| holder(b, now())) {
                        None => {
                            tracing::warn!("lock {k} has expired: taking it over");
                            store.delete(&k).await.map_err(|e| e.to_string())?;
                        }
                        Some(by) => match deadline {
                            Some(d) if std::time::Instant::now() < d => {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            _ => {
                                release(store, &taken, owner).await;
                                return Err(format!(
                                    "target {target} is locked by {by}: another fault is acting on it{}",
                                    if deadline.is_some() {
                                        " (waited as long as locks.wait_seconds allows)"
                                    } else {
                                        "; set locks: {on_conflict: wait} to wait for it"
                                    }
                                ));
                            }
                        },
                    }
                }
                Err(e) => {
                    release(store, &taken, owner).await;
                    return Err(format!("taking the lock {k}: {e}"));
                }
            }
        }
    }
    Ok(())
}

/// Release the locks `owner` holds on `targets` (a lock another owner took over is left).
pub async fn release<S: ObjectStore>(store: &S, targets: &[String], owner: &str) {
    for target in targets {
        let k = key(target);
        let mine = match store.get(&k).await {
            Ok(Some(bytes)) => serde_json::from_slice::<Value>(&bytes)
                .map(|v| v["owner"] == owner)
                .unwrap_or(false),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("reading lock {k} to release it: {e} (it expires on its own)");
                false
            }
        };
        if mine && let Err(e) = store.delete(&k).await {
            tracing::warn!("releasing lock {k}: {e} (it expires on its own)");
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
