//! What an SSM send is: the document, the instances, the parameters and how long to wait. The
//! one type both the sender (`send`) and the follower (`run`) need, below both.

use std::collections::BTreeMap;
use std::time::Duration;

/// What to send.
#[derive(Debug, Clone)]
pub struct Command {
    pub document: String,
    pub instance_ids: Vec<String>,
    pub parameters: BTreeMap<String, Vec<String>>,
    /// How long to wait for every invocation to end before cancelling the command.
    pub wait: Duration,
}

/// A command's parameters from one string per name: every document parameter the library
/// sends is a single value.
pub fn one_value_each(parameters: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    parameters
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.clone()]))
        .collect()
}
