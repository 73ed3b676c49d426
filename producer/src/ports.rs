//! The producer's ports on the backend the settings choose, and where a store key is for
//! people (a file or an S3 URI).

use anyhow::anyhow;
use aws::{Backend, Bus, Queue, Role, Store};
use cli::BackendArgs;
use shared::fleet::producer::ProducerPorts;

pub type Ports = ProducerPorts<Queue, Queue, Store, Bus>;

/// Open the backend with everything the producer needs (the events queue too).
pub async fn open(args: &BackendArgs) -> anyhow::Result<(Backend, Ports)> {
    let backend = args.open(Role::Producer).await.map_err(|e| anyhow!(e))?;
    let ports = ProducerPorts {
        jobs: backend.jobs.clone(),
        events: backend
            .events
            .clone()
            .ok_or_else(|| anyhow!("the producer needs the events queue"))?,
        triggers: backend.triggers.clone(),
        bucket: match &backend.store {
            Store::S3(s3) => Some(s3.bucket().to_string()),
            Store::Dir(_) => None,
        },
        store: backend.store.clone(),
        bus: backend.bus.clone(),
        views: Default::default(),
    };
    Ok((backend, ports))
}

/// Where a store key is, for people: a file under the state directory or an S3 URI.
pub fn locate(backend: &Backend, key: &str) -> String {
    match (&backend.store, &backend.state_dir) {
        (Store::S3(s3), _) => format!("s3://{}/{key}", s3.bucket()),
        (Store::Dir(_), Some(dir)) => dir.join("store").join(key).display().to_string(),
        (Store::Dir(_), None) => key.to_string(),
    }
}
