//! The object store contract (see `crate::ports::store` for the promises).

use crate::ports::store::{ObjectStore, StoreError};
use std::future::Future;

/// Makes a store and a key prefix no other test uses.
pub trait StoreFixture: Send + Sync {
    type Store: ObjectStore + Clone + 'static;
    fn store(&self) -> impl Future<Output = (Self::Store, String)> + Send;
}

pub async fn put_then_get_returns_the_bytes<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    let key = format!("{p}/runs/r1/journal.json");
    s.put(&key, b"{\"status\": \"completed\"}").await.unwrap();
    assert_eq!(
        s.get(&key).await.unwrap().as_deref(),
        Some(&b"{\"status\": \"completed\"}"[..])
    );
    s.put(&key, b"replaced").await.unwrap();
    assert_eq!(
        s.get(&key).await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
}

pub async fn delete_removes_the_key_and_a_missing_one_is_fine<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    let key = format!("{p}/locks/i-1");
    s.put_if_absent(&key, b"held").await.unwrap();
    s.delete(&key).await.unwrap();
    assert_eq!(s.get(&key).await.unwrap(), None);
    assert!(!s.list(&format!("{p}/locks")).await.unwrap().contains(&key));
    s.delete(&key).await.unwrap();
    s.put_if_absent(&key, b"again").await.unwrap();
    assert_eq!(s.get(&key).await.unwrap().as_deref(), Some(&b"again"[..]));
}

pub async fn a_missing_key_is_none<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    assert_eq!(s.get(&format!("{p}/nothing/here")).await.unwrap(), None);
}

pub async fn conditional_create_is_exclusive_under_concurrency<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    let key = format!("{p}/locks/i-0123");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (s, key) = (s.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            s.put_if_absent(&key, format!("owner-{i}").as_bytes()).await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => winners.push(i),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one creator wins: {winners:?}");
    let owner = s.get(&key).await.unwrap().unwrap();
    assert_eq!(
        owner,
        format!("owner-{}", winners[0]).into_bytes(),
        "the winner's content, whole"
    );
}

pub async fn list_returns_keys_under_a_prefix_sorted<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    for key in ["b/2", "a/1", "b/1", "c"] {
        s.put(&format!("{p}/{key}"), b"x").await.unwrap();
    }
    assert_eq!(
        s.list(&format!("{p}/b/")).await.unwrap(),
        vec![format!("{p}/b/1"), format!("{p}/b/2")]
    );
    assert_eq!(s.list(&format!("{p}/")).await.unwrap().len(), 4);
    assert!(s.list(&format!("{p}/zzz")).await.unwrap().is_empty());
}

pub async fn bad_keys_are_refused<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    let keys = [
        String::new(),
        format!("/{p}/abs"),
        format!("{p}/../b"),
        format!("{p}//b"),
        format!("{p}/trailing/"),
    ];
    for key in keys {
        assert!(
            matches!(s.put(&key, b"x").await, Err(StoreError::InvalidKey { .. })),
            "{key:?}"
        );
        assert!(
            matches!(
                s.put_if_absent(&key, b"x").await,
                Err(StoreError::InvalidKey { .. })
            ),
            "{key:?}"
        );
    }
}

/// Expand the store contract into tests for a fixture expression.
#[macro_export]
macro_rules! store_contract {
    ($fixture:expr) => {
        $crate::store_contract!(@tests $fixture;
            put_then_get_returns_the_bytes,
            a_missing_key_is_none,
            delete_removes_the_key_and_a_missing_one_is_fine,
            conditional_create_is_exclusive_under_concurrency,
            list_returns_keys_under_a_prefix_sorted,
            bad_keys_are_refused
        );
    };
    (@tests $fixture:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fixture;
                $crate::contract::store::$name(&fixture).await;
            }
        )+
    };
}
