//! The event bus on SQLite: a rule table routes each published event, by detail type, into the
//! subscribed queues of the same file (EventBridge rule → SQS target, on one machine).

use super::db::{Db, now_ms, random_id};
use crate::ports::bus::{BusError, Event, EventBus};
use rusqlite::{TransactionBehavior, params};

#[derive(Debug, Clone)]
pub struct SqliteBus {
    db: Db,
    name: String,
}

impl SqliteBus {
    pub fn new(db: Db, name: impl Into<String>) -> Self {
        SqliteBus {
            db,
            name: name.into(),
        }
    }

    fn error(&self, e: rusqlite::Error) -> BusError {
        BusError::Backend {
            bus: self.name.clone(),
            message: format!("SQLite: {e}"),
            source: Some(Box::new(e)),
        }
    }

    /// Route events of `detail_type` to `queue` (idempotent).
    pub async fn subscribe(&self, detail_type: &str, queue: &str) -> Result<(), BusError> {
        let (bus, detail_type, queue) = (
            self.name.clone(),
            detail_type.to_string(),
            queue.to_string(),
        );
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO subscriptions (bus, detail_type, queue) VALUES (?1, ?2, ?3)",
                    params![bus, detail_type, queue],
                )
            })
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

impl EventBus for SqliteBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let body = serde_json::to_string(event).map_err(|e| BusError::Backend {
            bus: self.name.clone(),
            message: format!("event {} is not serialisable: {e}", event.id),
            source: None,
        })?;
        let (bus, detail_type) = (self.name.clone(), event.detail_type.clone());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let queues: Vec<String> = {
                    let mut stmt =
                        tx.prepare_cached("SELECT queue FROM subscriptions WHERE bus = ?1 AND detail_type = ?2")?;
                    stmt.query_map(params![bus, detail_type], |r| r.get(0))?.collect::<Result<_, _>>()?
                };
                let now = now_ms();
                for queue in queues {
                    tx.execute(
                        "INSERT INTO messages (queue, id, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![queue, random_id(), body, now],
                    )?;
                }
                tx.commit()
            })
            .await
            .map_err(|e| self.error(e))?;
        self.db.sent().notify_waiters();
        Ok(())
    }
}
