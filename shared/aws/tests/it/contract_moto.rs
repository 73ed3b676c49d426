//! The port contracts on the AWS adapters, against the moto server that `scripts/test.sh`
//! starts on 127.0.0.1 (its URL in `BROKER_TEST_AWS_ENDPOINT`). Every test makes its own
//! queues, bucket and rules, so the tests share one server and run in parallel.

use crate::util::endpoint;
use aws::{EventBridgeBus, S3Store, SqsQueue, provision};
use aws_config::SdkConfig;
use shared::contract::bus::BusFixture;
use shared::contract::queue::QueueFixture;
use shared::contract::store::{Serialized, StoreFixture};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(what: &str) -> String {
    format!(
        "{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// One fixture per test: its subscriptions share one bus, so routing between them is tested.
struct Moto {
    bus: String,
}

impl Moto {
    fn new() -> Moto {
        Moto { bus: unique("bus") }
    }

    async fn sdk(&self) -> SdkConfig {
        aws::sdk::emulator(&endpoint()).await
    }
}

impl QueueFixture for Moto {
    type Queue = SqsQueue;
    async fn queue(&self, max_receive_count: u32) -> SqsQueue {
        let sdk = self.sdk().await;
        let url = provision::queue(&sdk, &unique("jobs"), Some(max_receive_count))
            .await
            .unwrap();
        SqsQueue::with_dead_letters(aws_sdk_sqs::Client::new(&sdk), &url)
            .await
            .unwrap()
    }
}

/// moto checks a conditional write's `If-Match`/`If-None-Match` and then stores, two steps its
/// request threads can interleave: `Serialized` decides the conditional writes one at a time
/// (S3's own atomicity is not exercised; README "Not exercised for real").
impl StoreFixture for Moto {
    type Store = Serialized<S3Store>;
    async fn store(&self) -> (Serialized<S3Store>, String) {
        let sdk = self.sdk().await;
        let bucket = unique("store");
        provision::bucket(&sdk, &bucket).await.unwrap();
        let s3 = S3Store::new(aws::sdk::s3_client(&sdk), bucket);
        (Serialized::new(s3), unique("t"))
    }
}

impl BusFixture for Moto {
    type Bus = EventBridgeBus;
    type Queue = SqsQueue;
    async fn subscribed(&self, detail_types: &[&str]) -> (EventBridgeBus, SqsQueue) {
        let sdk = self.sdk().await;
        // the first subscription creates the bus; later ones find it there
        let _ = provision::bus(&sdk, &self.bus).await;
        let bus = self.bus.clone();
        let url = provision::queue(&sdk, &unique("events"), Some(5))
            .await
            .unwrap();
        provision::subscribe(&sdk, &bus, &unique("rule"), detail_types, &url)
            .await
            .unwrap();
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &url);
        (
            EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus),
            queue,
        )
    }
}

mod queue {
    shared::queue_contract!(super::Moto::new());
}

mod store {
    shared::store_contract!(super::Moto::new());
}

mod bus {
    shared::bus_contract!(super::Moto::new());
}
