//! The event bus contract (see `crate::ports::bus` for the promises).

use super::next_message;
use crate::ports::bus::{Event, EventBus};
use crate::ports::queue::JobQueue;
use std::future::Future;
use std::time::Duration;

/// Makes a bus and a fresh queue subscribed to the given detail types.
pub trait BusFixture: Send + Sync {
    type Bus: EventBus + Clone + 'static;
    type Queue: JobQueue + Clone + 'static;
    fn subscribed(
        &self,
        detail_types: &[&str],
    ) -> impl Future<Output = (Self::Bus, Self::Queue)> + Send;
}

fn event(detail_type: &str, n: u32) -> Event {
    Event {
        id: format!("evt-{detail_type}-{n}"),
        source: "experiment-broker".into(),
        detail_type: detail_type.into(),
        time: "2026-11-25T00:00:00Z".into(),
        detail: serde_json::json!({"n": n}),
    }
}

pub async fn events_reach_subscribed_queues_once_as_envelopes<F: BusFixture>(f: &F) {
    let (bus, q) = f.subscribed(&["Experiment Completed"]).await;
    let sent = event("Experiment Completed", 1);
    bus.publish(&sent).await.unwrap();
    let m = next_message(&q, Duration::from_secs(30), "the event on the queue").await;
    let got: Event = serde_json::from_str(&m.body).expect("an EventBridge envelope");
    assert_eq!(got.detail_type, sent.detail_type);
    assert_eq!(got.source, sent.source);
    assert_eq!(got.detail, sent.detail);
    q.ack(&m.receipt).await.unwrap();
    assert!(
        q.receive(1, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "delivered once"
    );
}

pub async fn queues_only_receive_the_types_they_subscribed_to<F: BusFixture>(f: &F) {
    let (bus, completed) = f.subscribed(&["Experiment Completed"]).await;
    let (_, waves) = f.subscribed(&["Wave Released"]).await;
    bus.publish(&event("Wave Released", 1)).await.unwrap();
    bus.publish(&event("Experiment Completed", 2))
        .await
        .unwrap();
    let m = next_message(&waves, Duration::from_secs(30), "the wave event").await;
    assert_eq!(
        serde_json::from_str::<Event>(&m.body).unwrap().detail_type,
        "Wave Released"
    );
    let m = next_message(&completed, Duration::from_secs(30), "the completion event").await;
    assert_eq!(
        serde_json::from_str::<Event>(&m.body).unwrap().detail_type,
        "Experiment Completed"
    );
    assert!(
        completed
            .receive(1, Duration::from_secs(30), Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Expand the bus contract into tests for a fixture expression.
#[macro_export]
macro_rules! bus_contract {
    ($fixture:expr) => {
        $crate::bus_contract!(@tests $fixture;
            events_reach_subscribed_queues_once_as_envelopes,
            queues_only_receive_the_types_they_subscribed_to
        );
    };
    (@tests $fixture:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fixture;
                $crate::contract::bus::$name(&fixture).await;
            }
        )+
    };
}
