//! The job queue on SQLite: `JobQueue` with SQS's semantics for one machine.
//!
//! A receive is one `BEGIN IMMEDIATE` transaction (so two processes never lease the same
//! message): visible messages are picked oldest first; one already received
//! `max_receive_count` times is dead-lettered instead of delivered; the others get a new
//! receipt, a higher receive count and a `visible_at` one visibility timeout away. Candidates
//! are read in `(queue, dead_at, visible_at, seq)` index order, so a receive costs the same with
//! 100,000 messages waiting as with 10 (redelivered messages, visible again from their lease's
//! end, line up behind those sent before it ended, as on SQS, which promises no order).
//!
//! Long polling wakes at once when this process sends (the `Db`'s notify), within
//! `CROSS_PROCESS_TICK` when another process commits (`data_version` changes), and re-checks
//! every `POLL` for leases that ran out.

use super::db::{Db, now_ms, random_id};
use crate::ports::queue::{DeadLetter, JobQueue, Message, QueueError};
use rusqlite::{TransactionBehavior, params};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SqliteQueue {
    db: Db,
    name: String,
    max_receive_count: u32,
}

/// The visible messages of a queue, oldest visible first, straight off `messages_ready`.
const RECEIVE: &str = "SELECT seq, id, body, receive_count FROM messages
     WHERE queue = ?1 AND dead_at IS NULL AND visible_at <= ?2
     ORDER BY visible_at, seq LIMIT ?3";
/// How often a waiting receive re-checks whatever happened (leases run out without a commit).
const POLL: Duration = Duration::from_millis(50);
/// How often a waiting receive looks for another process's commit.
const CROSS_PROCESS_TICK: Duration = Duration::from_millis(10);

impl SqliteQueue {
    pub fn new(db: Db, name: impl Into<String>, max_receive_count: u32) -> Self {
        SqliteQueue {
            db,
            name: name.into(),
            max_receive_count: max_receive_count.max(1),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, e: rusqlite::Error) -> QueueError {
        QueueError::Backend {
            queue: self.name.clone(),
            message: format!("SQLite ({}): {e}", self.db.path().display()),
            source: Some(Box::new(e)),
        }
    }

    async fn receive_once(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let queue = self.name.clone();
        let max_receives = i64::from(self.max_receive_count);
        let lease_ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 2);
        let max = i64::try_from(max).unwrap_or(10);
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let candidates: Vec<(i64, String, String, i64)> = {
                    let mut stmt = tx.prepare_cached(RECEIVE)?;
                    stmt.query_map(params![queue, now, max], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                        .collect::<Result<_, _>>()?
                };
                let mut out = Vec::new();
                for (seq, id, body, count) in candidates {
                    if count >= max_receives {
                        tx.execute(
                            "UPDATE messages SET dead_at = ?1, receipt = NULL WHERE seq = ?2",
                            params![now, seq],
                        )?;
                        continue;
                    }
                    let receipt = random_id();
                    tx.execute(
                        "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?1, receipt = ?2
                         WHERE seq = ?3",
                        params![now.saturating_add(lease_ms), receipt, seq],
                    )?;
                    out.push(Message { id, receipt, body, receive_count: (count + 1) as u32 });
                }
                tx.commit()?;
                Ok(out)
            })
            .await
            .map_err(|e| self.error(e))
    }
}

impl JobQueue for SqliteQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, QueueError> {
        let queue = self.name.clone();
        let bodies = bodies.to_vec();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let mut ids = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let id = random_id();
                    tx.execute(
                        "INSERT INTO messages (queue, id, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![queue, id, body, now],
                    )?;
                    ids.push(id);
                }
                tx.commit()?;
                Ok(ids)
            })
            .await
            .map_err(|e| self.error(e))
            .inspect(|_| self.db.sent().notify_waiters())
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let deadline = Instant::now() + wait;
        let mut version = None;
        loop {
            // registered before looking, so a send between the look and the wait still wakes
            let sent = self.db.sent().notified();
            tokio::pin!(sent);
            sent.as_mut().enable();
            let got = self.receive_once(max.max(1), visibility).await?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            let next_look = (Instant::now() + POLL).min(deadline);
            loop {
                let tick =
                    CROSS_PROCESS_TICK.min(next_look.saturating_duration_since(Instant::now()));
                tokio::select! {
                    _ = &mut sent => break,
                    _ = tokio::time::sleep(tick) => {}
                }
                if Instant::now() >= next_look {
                    break;
                }
                let now = self.db.data_version().await.map_err(|e| self.error(e))?;
                if version.replace(now).is_some_and(|v| v != now) {
                    break; // another process committed
                }
            }
        }
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<(), QueueError> {
        let owned = receipt.to_string();
        let lease_ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 2);
        let changed = self
            .db
            .call(move |conn| {
                conn.execute(
                    "UPDATE messages SET visible_at = ?1 WHERE receipt = ?2 AND dead_at IS NULL",
                    params![now_ms().saturating_add(lease_ms), owned],
                )
            })
            .await
            .map_err(|e| self.error(e))?;
        if changed == 0 {
            return Err(QueueError::LeaseLost {
                receipt: receipt.to_string(),
            });
        }
        Ok(())
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let owned = receipt.to_string();
        let deleted = self
            .db
            .call(move |conn| {
                conn.execute("DELETE FROM messages WHERE receipt = ?1", params![owned])
            })
            .await
            .map_err(|e| self.error(e))?;
        if deleted == 0 {
            return Err(QueueError::LeaseLost {
                receipt: receipt.to_string(),
            });
        }
        Ok(())
    }

    async fn ack_batch(&self, receipts: &[String]) -> Result<(), QueueError> {
        let owned = receipts.to_vec();
        let lost = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut lost = None;
                for receipt in owned {
                    let deleted =
                        tx.execute("DELETE FROM messages WHERE receipt = ?1", params![receipt])?;
                    if deleted == 0 && lost.is_none() {
                        lost = Some(receipt);
                    }
                }
                tx.commit()?;
                Ok(lost)
            })
            .await
            .map_err(|e| self.error(e))?;
        match lost {
            Some(receipt) => Err(QueueError::LeaseLost { receipt }),
            None => Ok(()),
        }
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let queue = self.name.clone();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, body, receive_count FROM messages
                     WHERE queue = ?1 AND dead_at IS NOT NULL ORDER BY dead_at, seq",
                )?;
                stmt.query_map(params![queue], |r| {
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        body: r.get(1)?,
                        receive_count: r.get::<_, i64>(2)? as u32,
                    })
                })?
                .collect()
            })
            .await
            .map_err(|e| self.error(e))
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let (queue, id) = (self.name.clone(), id.to_string());
        self.db
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM messages WHERE queue = ?1 AND id = ?2 AND dead_at IS NOT NULL",
                    params![queue, id],
                )
            })
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for a receive: read off the `messages_ready` index in the order asked
    /// for, never a sort of every visible message (which made a receive cost O(queued)).
    #[tokio::test]
    async fn a_receive_reads_the_index_in_order_without_sorting_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("q.db")).unwrap();
        let plan: Vec<String> = db
            .call(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {RECEIVE}"))?;
                stmt.query_map(params!["jobs", 0, 10], |r| r.get::<_, String>(3))?
                    .collect()
            })
            .await
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("USING INDEX messages_ready"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
