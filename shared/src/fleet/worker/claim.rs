//! Who owns a run: the pure decisions a delivery makes from the `started` marker it found and
//! from its journal's conditional create.

use crate::ports::queue::Message;
use crate::ports::store::Created;

/// What a delivery of a job does, given the `started` marker already there (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No marker: this delivery owns the run.
    Run,
    /// The marker is this message's from an earlier receive: the owner lost its lease (died,
    /// or stalled past the visibility timeout). Revert only.
    Revert,
    /// The marker belongs to another message: a copy of the job (sent twice). The owner's own
    /// message handles the run, its redelivery and its dead-lettering; this copy is dropped.
    Duplicate { owner: String },
    /// The marker is this message's at the same (or a later) receive by another worker: SQS
    /// delivered one message twice at once. Leave it to come back.
    InFlight,
}

/// Decide from another delivery's marker (pure; every case is tested below). This delivery's
/// own marker (created by an attempt whose answer was lost) is recognised before, by its token
/// (`create_owned`), and means `Run`.
pub fn claim(marker: Option<&serde_json::Value>, message: &Message) -> Claim {
    let Some(marker) = marker else {
        return Claim::Run;
    };
    let Some(owner) = marker["message_id"].as_str() else {
        // unreadable: something started this run; never run it again
        return Claim::Revert;
    };
    if owner != message.id {
        return Claim::Duplicate {
            owner: owner.to_string(),
        };
    }
    let seen = marker["receive_count"].as_u64().unwrap_or(0);
    if u64::from(message.receive_count) > seen {
        Claim::Revert
    } else {
        // the same receive, or a later one, by another delivery (its token is not ours)
        Claim::InFlight
    }
}

/// What a delivery does once its journal's conditional create has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterJournal {
    /// The journal is this delivery's: publish its completion event, then mark it published.
    Publish,
    /// This delivery's journal, already published (its `completed` marker is there): ack.
    Done,
    /// Another delivery's journal stands, and that delivery publishes it: ack, publish nothing.
    Drop,
}

/// Decide from the create's outcome and whether the `completed` marker exists (pure; every
/// case is tested below).
pub fn after_journal(created: &Created, published: bool) -> AfterJournal {
    match (created, published) {
        (Created::Theirs(_), _) => AfterJournal::Drop,
        (_, true) => AfterJournal::Done,
        (Created::New | Created::Ours, false) => AfterJournal::Publish,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(id: &str, receive_count: u32) -> Message {
        Message {
            id: id.into(),
            receipt: "r".into(),
            body: String::new(),
            receive_count,
        }
    }

    #[test]
    fn every_marker_case() {
        // another delivery's marker (this delivery's own is recognised by its token before)
        let marker = json!({"worker": "w1", "message_id": "m1", "receive_count": 1, "token": "t1"});
        let garbage = json!("not a marker");
        let cases = [
            (None, message("m1", 1), Claim::Run),
            (Some(&marker), message("m1", 2), Claim::Revert),
            // the same receive by another delivery (even on the same worker): SQS delivered
            // one message twice at once
            (Some(&marker), message("m1", 1), Claim::InFlight),
            (Some(&marker), message("m1", 0), Claim::InFlight),
            (
                Some(&marker),
                message("m2", 1),
                Claim::Duplicate { owner: "m1".into() },
            ),
            (
                Some(&marker),
                message("m2", 5),
                Claim::Duplicate { owner: "m1".into() },
            ),
            (Some(&garbage), message("m1", 1), Claim::Revert),
        ];
        for (marker, msg, expected) in cases {
            assert_eq!(claim(marker, &msg), expected, "{marker:?} {msg:?}");
        }
    }

    #[test]
    fn after_the_journal_create_only_our_unpublished_journal_is_published() {
        let theirs = Created::Theirs(b"{}".to_vec());
        let cases = [
            (Created::New, false, AfterJournal::Publish),
            (Created::Ours, false, AfterJournal::Publish),
            (Created::Ours, true, AfterJournal::Done),
            (Created::New, true, AfterJournal::Done),
            (theirs.clone(), false, AfterJournal::Drop),
            (theirs, true, AfterJournal::Drop),
        ];
        for (created, published, expected) in cases {
            assert_eq!(
                after_journal(&created, published),
                expected,
                "{created:?} published={published}"
            );
        }
    }
}
