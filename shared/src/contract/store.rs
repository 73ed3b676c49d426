//! The object store contract (see `crate::ports::store` for the promises), and the per-target
//! lock protocol (`crate::fleet::safety::locks`) on each store, since its safety rests on the store's
//! conditional writes.

use crate::fleet::safety::locks::{self, OnConflict};
use crate::ports::store::{Created, ObjectStore, StoreError, Version, create_owned};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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

pub async fn an_owned_create_whose_answer_was_lost_is_known_as_ours<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    let key = format!("{p}/runs/r1/journal.json");
    let (ours, theirs) = (&b"{\"token\": \"a\"}"[..], &b"{\"token\": \"b\"}"[..]);
    assert_eq!(create_owned(&s, &key, ours).await.unwrap(), Created::New);
    // the same create again: what an SDK retry sends after the first answer was lost
    assert_eq!(
        create_owned(&s, &key, ours).await.unwrap(),
        Created::Ours,
        "the object holds our bytes: our own write"
    );
    assert_eq!(
        create_owned(&s, &key, theirs).await.unwrap(),
        Created::Theirs(ours.to_vec()),
        "another writer is told whose object stands"
    );
    assert_eq!(
        s.get(&key).await.unwrap().as_deref(),
        Some(ours),
        "never overwritten"
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
        let v = Version::new("\"0\"");
        assert!(
            matches!(
                s.replace_if(&key, b"x", &v).await,
                Err(StoreError::InvalidKey { .. })
            ),
            "{key:?}"
        );
        assert!(
            matches!(
                s.delete_if(&key, &v).await,
                Err(StoreError::InvalidKey { .. })
            ),
            "{key:?}"
        );
        assert!(
            matches!(
                s.get_versioned(&key).await,
                Err(StoreError::InvalidKey { .. })
            ),
            "{key:?}"
        );
    }
}

pub async fn a_stale_version_is_refused_and_the_current_one_wins<F: StoreFixture>(f: &F) {
    let (s, p) = f.store().await;
    let key = format!("{p}/locks/i-1");
    s.put(&key, b"first").await.unwrap();
    let (bytes, v1) = s.get_versioned(&key).await.unwrap().unwrap();
    assert_eq!(bytes, b"first");
    let v2 = s.replace_if(&key, b"second", &v1).await.unwrap();
    assert_ne!(v1, v2, "a write of other bytes is a new version");
    assert!(
        matches!(
            s.replace_if(&key, b"stale", &v1).await,
            Err(StoreError::VersionMismatch { .. })
        ),
        "a replace on the version read before is refused"
    );
    assert!(
        matches!(
            s.delete_if(&key, &v1).await,
            Err(StoreError::VersionMismatch { .. })
        ),
        "a delete on the version read before is refused"
    );
    let (bytes, current) = s.get_versioned(&key).await.unwrap().unwrap();
    assert_eq!(bytes, b"second", "the refused writes changed nothing");
    assert_eq!(current, v2, "replace_if returns the version it wrote");
    s.delete_if(&key, &v2).await.unwrap();
    assert_eq!(
        s.get(&key).await.unwrap(),
        None,
        "the current version deletes"
    );
    s.delete_if(&key, &v2).await.unwrap();
    assert!(
        matches!(
            s.replace_if(&key, b"again", &v2).await,
            Err(StoreError::VersionMismatch { .. })
        ),
        "a replace of a missing object is refused"
    );
    assert_eq!(s.get(&key).await.unwrap(), None);
    assert_eq!(s.get_versioned(&key).await.unwrap(), None);
}

pub async fn concurrent_replacements_of_one_version_have_exactly_one_winner<F: StoreFixture>(
    f: &F,
) {
    let (s, p) = f.store().await;
    let key = format!("{p}/locks/i-0123");
    s.put(&key, b"expired").await.unwrap();
    let (_, version) = s.get_versioned(&key).await.unwrap().unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (s, key, version, start) = (s.clone(), key.clone(), version.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            s.replace_if(&key, format!("owner-{i}").as_bytes(), &version)
                .await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => winners.push(i),
            Err(StoreError::VersionMismatch { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one replacer wins: {winners:?}");
    assert_eq!(
        s.get(&key).await.unwrap().unwrap(),
        format!("owner-{}", winners[0]).into_bytes()
    );
}

pub async fn read_modify_writes_on_versions_lose_no_update<F: StoreFixture>(f: &F) {
    const WRITERS: usize = 8;
    const EACH: usize = 12;
    let (s, p) = f.store().await;
    let key = format!("{p}/counter");
    s.put(&key, b"0").await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (s, key, start) = (s.clone(), key.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let mut done = 0;
            while done < EACH {
                let (bytes, v) = s.get_versioned(&key).await.unwrap().unwrap();
                let n: usize = String::from_utf8(bytes).unwrap().parse().unwrap();
                match s.replace_if(&key, (n + 1).to_string().as_bytes(), &v).await {
                    Ok(_) => done += 1,
                    Err(StoreError::VersionMismatch { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        String::from_utf8(s.get(&key).await.unwrap().unwrap()).unwrap(),
        (WRITERS * EACH).to_string(),
        "every successful replace_if counted once"
    );
}

/// An expired lock, left by a worker that died, on a target of this test's own.
async fn expired_lock<S: ObjectStore>(s: &S, p: &str) -> String {
    let target = format!("{p}/i-0abc");
    let stale = serde_json::json!({"owner": "dead", "activity": "cpu", "expires_at": 1});
    s.put(&locks::key(&target), stale.to_string().as_bytes())
        .await
        .unwrap();
    target
}

/// The owner the lock on `target` names.
async fn lock_owner<S: ObjectStore>(s: &S, target: &str) -> Option<String> {
    let bytes = s.get(&locks::key(target)).await.unwrap()?;
    locks::owner_of(&bytes)
}

pub async fn concurrent_takers_of_an_expired_lock_leave_exactly_one_holder<F: StoreFixture>(f: &F) {
    const TAKERS: usize = 24;
    let (s, p) = f.store().await;
    let target = expired_lock(&s, &p).await;
    let start = Arc::new(tokio::sync::Barrier::new(TAKERS));
    let mut tasks = Vec::new();
    for i in 0..TAKERS {
        let (s, target, start) = (s.clone(), target.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let ttl = Duration::from_secs(600);
            locks::acquire(
                &s,
                &[target],
                &format!("taker-{i}"),
                "cpu",
                ttl,
                OnConflict::Fail,
            )
            .await
        }));
    }
    let mut holders = Vec::new();
    let mut refusals = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => holders.push(format!("taker-{i}")),
            Err(e) => refusals.push(e),
        }
    }
    assert_eq!(holders.len(), 1, "never two holders: {holders:?}");
    assert_eq!(lock_owner(&s, &target).await, Some(holders[0].clone()));
    for e in refusals {
        assert!(
            e.contains(&format!("is locked by {} (cpu)", holders[0])),
            "{e}"
        );
    }
}

/// The `ObjectStore` methods a test wrapper below hands to its `inner` store unchanged.
macro_rules! pass_through {
    ($($method:ident),+) => { $( pass_through!(@ $method); )+ };
    (@ get) => {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key).await
        }
    };
    (@ get_versioned) => {
        async fn get_versioned(
            &self,
            key: &str,
        ) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
            self.inner.get_versioned(key).await
        }
    };
    (@ put) => {
        async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
            self.inner.put(key, bytes).await
        }
    };
    (@ put_if_absent) => {
        async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
            self.inner.put_if_absent(key, bytes).await
        }
    };
    (@ list) => {
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(prefix).await
        }
    };
    (@ delete) => {
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
    };
    (@ replace_if) => {
        async fn replace_if(
            &self,
            key: &str,
            bytes: &[u8],
            v: &Version,
        ) -> Result<Version, StoreError> {
            self.inner.replace_if(key, bytes, v).await
        }
    };
    (@ delete_if) => {
        async fn delete_if(&self, key: &str, version: &Version) -> Result<(), StoreError> {
            self.inner.delete_if(key, version).await
        }
    };
}

/// What a competitor does between a read and the write that depends on it.
type Competitor = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The store, running `then` once, right after its first read: a competitor acting between a
/// read and the write that depends on it, which racing alone would hit only now and then.
#[derive(Clone)]
struct AfterFirstRead<S> {
    inner: S,
    then: Arc<tokio::sync::Mutex<Option<Competitor>>>,
}

impl<S: ObjectStore> AfterFirstRead<S> {
    async fn fire(&self) {
        let then = self.then.lock().await.take();
        if let Some(then) = then {
            then.await;
        }
    }
}

impl<S: ObjectStore> ObjectStore for AfterFirstRead<S> {
    pass_through!(put, put_if_absent, list, delete, replace_if, delete_if);
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.inner.get(key).await;
        self.fire().await;
        read
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        let read = self.inner.get_versioned(key).await;
        self.fire().await;
        read
    }
}

pub async fn a_former_owner_releasing_never_deletes_a_lock_taken_over_since<F: StoreFixture>(
    f: &F,
) {
    let (s, p) = f.store().await;
    let target = expired_lock(&s, &p).await;
    // "dead" comes back and releases just as "b" takes its expired lock over
    let taker = {
        let (s, target) = (s.clone(), target.clone());
        async move {
            let ttl = Duration::from_secs(600);
            locks::acquire(&s, &[target], "b", "mem", ttl, OnConflict::Fail)
                .await
                .unwrap();
        }
    };
    let racing = AfterFirstRead {
        inner: s.clone(),
        then: Arc::new(tokio::sync::Mutex::new(Some(Box::pin(taker)))),
    };
    locks::release(&racing, std::slice::from_ref(&target), "dead").await;
    assert_eq!(
        lock_owner(&s, &target).await.as_deref(),
        Some("b"),
        "b's fresh lock survives the former owner's release"
    );
    locks::release(&s, std::slice::from_ref(&target), "dead").await;
    assert_eq!(lock_owner(&s, &target).await.as_deref(), Some("b"));
    locks::release(&s, std::slice::from_ref(&target), "b").await;
    assert_eq!(lock_owner(&s, &target).await, None, "its owner releases it");
}

/// What [`Interfering`] does to the first conditional create of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interference {
    /// The create lands but its answer is lost: the caller sees the SDK's retry, answered
    /// `AlreadyExists` (what S3 does after a lost `PutObject` answer).
    LoseAnswer,
    /// Another writer's object (these bytes) lands just before the create.
    Competitor(Vec<u8>),
}

/// A store that interferes once with the first conditional create (for a competitor: the
/// first write of any kind) of every key ending in `suffix`, as the network or a competing
/// writer would (see [`Interference`]); everything else passes through. For tests of what the broker does after an ambiguous create.
#[derive(Clone)]
pub struct Interfering<S> {
    pub inner: S,
    suffix: String,
    what: Interference,
    done: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl<S> Interfering<S> {
    pub fn new(inner: S, suffix: impl Into<String>, what: Interference) -> Self {
        Interfering {
            inner,
            suffix: suffix.into(),
            what,
            done: Arc::default(),
        }
    }

    /// The keys interfered with so far.
    pub fn interfered(&self) -> Vec<String> {
        self.done.lock().unwrap().iter().cloned().collect()
    }

    fn first_time(&self, key: &str) -> bool {
        key.ends_with(&self.suffix) && self.done.lock().unwrap().insert(key.to_string())
    }
}

impl<S: ObjectStore> ObjectStore for Interfering<S> {
    pass_through!(get, get_versioned, list, delete, replace_if, delete_if);
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        // a plain write meets the competitor too (and overwrites it: what it does)
        if let Interference::Competitor(theirs) = &self.what
            && self.first_time(key)
        {
            self.inner.put_if_absent(key, theirs).await?;
        }
        self.inner.put(key, bytes).await
    }
    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if self.first_time(key) {
            match &self.what {
                Interference::LoseAnswer => {
                    self.inner.put_if_absent(key, bytes).await?;
                }
                Interference::Competitor(theirs) => {
                    self.inner.put_if_absent(key, theirs).await?;
                }
            }
        }
        self.inner.put_if_absent(key, bytes).await
    }
}

/// A store whose conditional writes (`put_if_absent`, `replace_if`, `delete_if`) are decided one
/// at a time in this process. For an emulator that checks a write's condition and then writes,
/// in two steps across its request threads: moto's S3 (`put_object` compares `If-Match` with the
/// current ETag, then stores), where two concurrent writers of one version can both succeed, a
/// lost update S3 itself never allows. The adapter's requests and the emulator's answers stay
/// the real ones, and so does every interleaving of reads with writes (a writer still meets a
/// stale version); only the emulator's missing atomicity is made up for.
#[derive(Clone)]
pub struct Serialized<S> {
    pub inner: S,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<S> Serialized<S> {
    pub fn new(inner: S) -> Self {
        Serialized {
            inner,
            gate: Arc::default(),
        }
    }
}

impl<S: ObjectStore> ObjectStore for Serialized<S> {
    pass_through!(get, get_versioned, put, list, delete);
    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _one_at_a_time = self.gate.lock().await;
        self.inner.put_if_absent(key, bytes).await
    }
    async fn replace_if(
        &self,
        key: &str,
        bytes: &[u8],
        v: &Version,
    ) -> Result<Version, StoreError> {
        let _one_at_a_time = self.gate.lock().await;
        self.inner.replace_if(key, bytes, v).await
    }
    async fn delete_if(&self, key: &str, version: &Version) -> Result<(), StoreError> {
        let _one_at_a_time = self.gate.lock().await;
        self.inner.delete_if(key, version).await
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
            an_owned_create_whose_answer_was_lost_is_known_as_ours,
            list_returns_keys_under_a_prefix_sorted,
            bad_keys_are_refused,
            a_stale_version_is_refused_and_the_current_one_wins,
            concurrent_replacements_of_one_version_have_exactly_one_winner,
            read_modify_writes_on_versions_lose_no_update,
            concurrent_takers_of_an_expired_lock_leave_exactly_one_holder,
            a_former_owner_releasing_never_deletes_a_lock_taken_over_since
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
