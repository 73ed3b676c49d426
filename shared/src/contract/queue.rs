//! The job queue contract (see `crate::ports::queue` for the promises).

use super::{eventually, next_message};
use crate::ports::queue::{JobQueue, QueueError};
use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

/// Makes fresh, empty queues for one test each.
pub trait QueueFixture: Send + Sync {
    type Queue: JobQueue + Clone + 'static;
    fn queue(&self, max_receive_count: u32) -> impl Future<Output = Self::Queue> + Send;
}

const LONG: Duration = Duration::from_secs(30);

fn bodies(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub async fn sent_messages_are_received_intact<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    let ids = q.send_batch(&bodies(&["a", "b", "c"])).await.unwrap();
    assert_eq!(ids.len(), 3);
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while got.len() < 3 {
        assert!(
            Instant::now() < until,
            "timed out waiting for three messages: {got:?}"
        );
        got.extend(
            q.receive(10, LONG, Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    let mut received: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    received.sort();
    assert_eq!(received, ["a", "b", "c"]);
    assert!(got.iter().all(|m| m.receive_count == 1));
    let got_ids: HashSet<&String> = got.iter().map(|m| &m.id).collect();
    assert_eq!(got_ids, ids.iter().collect());
}

pub async fn leased_message_is_invisible_until_the_lease_expires<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    q.send_batch(&bodies(&["job"])).await.unwrap();
    // leases long enough that a slow machine still checks invisibility inside one
    let first = next_message(&q, Duration::from_secs(2), "a message").await;
    assert!(
        q.receive(1, LONG, Duration::ZERO).await.unwrap().is_empty(),
        "a leased message is invisible"
    );
    let again = next_message(&q, LONG, "redelivery after the lease").await;
    assert_eq!(again.id, first.id);
    assert_eq!(again.receive_count, 2);
    assert_ne!(
        again.receipt, first.receipt,
        "a new lease has a new receipt"
    );
}

pub async fn heartbeats_keep_a_message_invisible<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    q.send_batch(&bodies(&["long job"])).await.unwrap();
    let leased = next_message(&q, Duration::from_secs(2), "a message").await;
    // heartbeats every ~0.3 s keep a 2 s lease alive well past its first expiry
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        q.extend(&leased.receipt, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            q.receive(1, LONG, Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty(),
            "heartbeats keep the message leased"
        );
    }
    let again = next_message(&q, LONG, "redelivery once heartbeats stop").await;
    assert_eq!(again.id, leased.id);
}

pub async fn ack_is_final<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    q.send_batch(&bodies(&["done"])).await.unwrap();
    let leased = next_message(&q, Duration::from_millis(500), "a message").await;
    q.ack(&leased.receipt).await.unwrap();
    // a long poll spanning well past the old lease: nothing comes back
    assert!(
        q.receive(1, LONG, Duration::from_secs(2))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(q.dead_letters().await.unwrap().is_empty());
}

pub async fn a_batch_ack_deletes_every_message_whose_lease_holds<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    let names: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    q.send_batch(&names).await.unwrap();
    let mut leased = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while leased.len() < names.len() {
        assert!(Instant::now() < until, "timed out leasing: {leased:?}");
        // leases short enough that any message not deleted is back before the check below
        leased.extend(
            q.receive(10, Duration::from_secs(3), Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    let receipts: Vec<String> = leased.iter().map(|m| m.receipt.clone()).collect();
    q.ack_batch(&receipts).await.unwrap();
    // one whose lease was lost (it expired and the message was received again) is refused,
    // and the others of the batch are deleted all the same
    q.send_batch(&bodies(&["expires"])).await.unwrap();
    let first = next_message(&q, Duration::from_millis(300), "a message").await;
    let second = next_message(&q, LONG, "its redelivery").await;
    assert_eq!(second.id, first.id);
    q.send_batch(&bodies(&["kept"])).await.unwrap();
    let kept = next_message(&q, Duration::from_secs(2), "another message").await;
    assert!(matches!(
        q.ack_batch(&[kept.receipt.clone(), first.receipt.clone()]).await,
        Err(QueueError::LeaseLost { receipt }) if receipt == first.receipt
    ));
    q.ack(&second.receipt).await.unwrap();
    // a long poll spanning well past the leases: nothing comes back
    assert!(
        q.receive(10, LONG, Duration::from_secs(4))
            .await
            .unwrap()
            .is_empty(),
        "every message whose lease held was deleted"
    );
}

pub async fn a_lost_lease_cannot_be_extended<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    q.send_batch(&bodies(&["job"])).await.unwrap();
    let first = next_message(&q, Duration::from_millis(300), "a message").await;
    let second = next_message(&q, LONG, "redelivery").await;
    assert_eq!(second.id, first.id);
    assert!(matches!(
        q.extend(&first.receipt, LONG).await,
        Err(QueueError::LeaseLost { .. })
    ));
    q.ack(&second.receipt).await.unwrap();
}

pub async fn dead_letters_after_max_receives<F: QueueFixture>(f: &F) {
    let q = f.queue(2).await;
    let ids = q.send_batch(&bodies(&["poison"])).await.unwrap();
    for attempt in 1..=2u32 {
        let m = next_message(&q, Duration::from_millis(200), "a delivery").await;
        assert_eq!(m.receive_count, attempt);
    }
    let dead = eventually(Duration::from_secs(10), "the dead letter", || {
        let q = q.clone();
        async move {
            let delivered = q
                .receive(1, LONG, Duration::from_millis(100))
                .await
                .unwrap();
            assert!(
                delivered.is_empty(),
                "a message past max_receive_count is not delivered"
            );
            q.dead_letters().await.unwrap().pop()
        }
    })
    .await;
    assert_eq!(
        (dead.id.as_str(), dead.body.as_str(), dead.receive_count),
        (ids[0].as_str(), "poison", 2)
    );
    q.remove_dead_letter(&dead.id).await.unwrap();
    assert!(q.dead_letters().await.unwrap().is_empty());
}

pub async fn long_poll_returns_as_soon_as_a_message_arrives<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    let sender = q.clone();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send_batch(&bodies(&["late"])).await.unwrap();
    });
    let started = Instant::now();
    let got = q.receive(1, LONG, Duration::from_secs(10)).await.unwrap();
    send.await.unwrap();
    assert_eq!(got.len(), 1, "the long poll returned the message");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "it returned before the wait ran out"
    );
}

pub async fn concurrent_receivers_never_share_a_message<F: QueueFixture>(f: &F) {
    let q = f.queue(5).await;
    let names: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    q.send_batch(&names[..10]).await.unwrap();
    q.send_batch(&names[10..]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..40 {
                let got = q
                    .receive(3, LONG, Duration::from_millis(100))
                    .await
                    .unwrap();
                mine.extend(got.into_iter().map(|m| m.body));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "no message was leased twice: {all:?}"
    );
    assert_eq!(unique.len(), 20);
}

/// Expand the queue contract into tests for a fixture expression.
#[macro_export]
macro_rules! queue_contract {
    ($fixture:expr) => {
        $crate::queue_contract!(@tests $fixture;
            sent_messages_are_received_intact,
            leased_message_is_invisible_until_the_lease_expires,
            heartbeats_keep_a_message_invisible,
            ack_is_final,
            a_batch_ack_deletes_every_message_whose_lease_holds,
            a_lost_lease_cannot_be_extended,
            dead_letters_after_max_receives,
            long_poll_returns_as_soon_as_a_message_arrives,
            concurrent_receivers_never_share_a_message
        );
    };
    (@tests $fixture:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fixture;
                $crate::contract::queue::$name(&fixture).await;
            }
        )+
    };
}
