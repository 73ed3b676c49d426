//! The port contracts on the embedded adapters: a real SQLite file and a real directory,
//! fresh per test.

use shared::adapters::embedded::{Db, DirStore, SqliteBus, SqliteQueue};
use shared::contract::bus::BusFixture;
use shared::contract::queue::QueueFixture;
use shared::contract::store::StoreFixture;
use std::sync::atomic::{AtomicU32, Ordering};

/// A state directory with its SQLite file; removed when the test ends.
struct Embedded {
    dir: tempfile::TempDir,
    db: Db,
    next: AtomicU32,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("broker.db")).unwrap();
        Embedded {
            dir,
            db,
            next: AtomicU32::new(0),
        }
    }

    fn unique(&self, what: &str) -> String {
        format!("{what}-{}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}

impl QueueFixture for Embedded {
    type Queue = SqliteQueue;
    async fn queue(&self, max_receive_count: u32) -> SqliteQueue {
        // a second connection to the same file, as a second process would open it
        let db = Db::open(self.db.path()).unwrap();
        SqliteQueue::new(db, self.unique("jobs"), max_receive_count)
    }
}

impl StoreFixture for Embedded {
    type Store = DirStore;
    async fn store(&self) -> (DirStore, String) {
        (
            DirStore::new(self.dir.path().join("store")),
            self.unique("t"),
        )
    }
}

impl BusFixture for Embedded {
    type Bus = SqliteBus;
    type Queue = SqliteQueue;
    async fn subscribed(&self, detail_types: &[&str]) -> (SqliteBus, SqliteQueue) {
        let bus = SqliteBus::new(self.db.clone(), "broker");
        let queue = SqliteQueue::new(self.db.clone(), self.unique("events"), 5);
        for t in detail_types {
            bus.subscribe(t, queue.name()).await.unwrap();
        }
        (bus, queue)
    }
}

mod queue {
    shared::queue_contract!(super::Embedded::new());
}

mod store {
    shared::store_contract!(super::Embedded::new());
}

mod bus {
    shared::bus_contract!(super::Embedded::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_reopening_the_file() {
    use shared::ports::JobQueue;
    let e = Embedded::new();
    let q = SqliteQueue::new(e.db.clone(), "durable", 3);
    q.send_batch(&["kept".to_string()]).await.unwrap();
    drop(q);
    let reopened = SqliteQueue::new(Db::open(e.db.path()).unwrap(), "durable", 3);
    let got = reopened
        .receive(
            1,
            std::time::Duration::from_secs(5),
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(got[0].body, "kept");
}
