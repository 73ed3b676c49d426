//! The event bus port (EventBridge semantics, subscribed through a queue).
//!
//! Promises, each checked by `crate::contract::bus`:
//! - **publish**: an event reaches every queue subscribed to its detail type, once, as an
//!   EventBridge-shaped JSON envelope (`id`, `source`, `detail-type`, `time`, `detail`);
//! - **routing**: a queue receives only the detail types it subscribed to.

use serde::{Deserialize, Serialize};
use std::future::Future;

/// The EventBridge envelope, as it arrives on a subscribed queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub time: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus {bus}: {message}")]
    Backend {
        bus: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub trait EventBus: Send + Sync {
    fn publish(&self, event: &Event) -> impl Future<Output = Result<(), BusError>> + Send;
}
