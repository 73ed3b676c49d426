//! Submitting a suite: its plan stored before any job is sent, refused before anything is
//! stored when a job cannot finish under the jobs queue's lease, then its first wave enqueued.

use super::plan::{Origin, Plan, new_suite_run_id, plan};
use super::state::State;
use super::{ProducerError, ProducerPorts};
use crate::fleet::keys::SuiteRunKeys;
use crate::model::suite::{ExperimentRef, Suite};
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::{ObjectStore, StoreError};
use std::path::Path;

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Store the plan of a suite read from a directory here, then enqueue its first wave.
    /// Returns the suite run id.
    pub async fn submit(&self, suite: &Suite, base: &Path) -> Result<String, ProducerError> {
        let source = None;
        self.submit_from(
            &new_suite_run_id(),
            suite,
            &Origin::Dir(base.to_path_buf()),
            source,
        )
        .await
    }

    /// Submit a suite read from a directory here to workers elsewhere: every experiment file
    /// it names is copied into the store first (`suite-runs/<id>/experiments/`), so the
    /// workers read exactly what was submitted, and the audit trail keeps it.
    pub async fn submit_uploading(
        &self,
        suite: &Suite,
        base: &Path,
    ) -> Result<String, ProducerError> {
        let id = new_suite_run_id();
        // refused before anything is uploaded
        let local = plan(suite, &id, &Origin::Dir(base.to_path_buf()))?;
        self.refuse_unfit(&local).await?;
        let mut uploaded = suite.clone();
        for (w, wave) in uploaded.waves.iter_mut().enumerate() {
            for (j, r) in wave.experiments.iter_mut().enumerate() {
                if let ExperimentRef::File { path } = r {
                    let file = base.join(&*path);
                    let bytes = std::fs::read(&file).map_err(|source| ProducerError::Read {
                        path: file.clone(),
                        source,
                    })?;
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("experiment");
                    let key = SuiteRunKeys::new(&id).experiment(w, j, name);
                    self.store.put(&key, &bytes).await?;
                    *r = ExperimentRef::Store { key };
                }
            }
        }
        self.store_and_start(&id, &uploaded, &Origin::Dir(base.to_path_buf()), None)
            .await
    }

    /// Store the plan, then enqueue the first wave; refused, storing and sending nothing, when
    /// a job cannot finish under the jobs queue's lease limit (see `lease_fit`).
    pub async fn submit_from(
        &self,
        id: &str,
        suite: &Suite,
        origin: &Origin,
        source: Option<String>,
    ) -> Result<String, ProducerError> {
        self.refuse_unfit(&plan(suite, id, origin)?).await?;
        self.store_and_start(id, suite, origin, source).await
    }

    /// `Err` naming every experiment of `plan` too long for the jobs queue's leases.
    async fn refuse_unfit(&self, plan: &Plan) -> Result<(), ProducerError> {
        let refused = super::lease_fit::refusals(&self.jobs, &self.store, plan).await?;
        if refused.is_empty() {
            Ok(())
        } else {
            Err(ProducerError::Unfit { refused })
        }
    }

    pub(super) async fn store_and_start(
        &self,
        id: &str,
        suite: &Suite,
        origin: &Origin,
        source: Option<String>,
    ) -> Result<String, ProducerError> {
        let mut plan = plan(suite, id, origin)?;
        plan.source = source;
        self.pin_versions(&mut plan).await;
        stamp_traces(&mut plan);
        let bytes = serde_json::to_vec_pretty(&plan).map_err(|source| ProducerError::Json {
            key: SuiteRunKeys::new(id).plan(),
            source,
        })?;
        let keys = SuiteRunKeys::new(id);
        match self.store.put_if_absent(&keys.plan(), &bytes).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists { .. }) => {
                // submitted before (a trigger delivered again): finish what was started, once
                let plan: Plan = self
                    .get_json(&keys.plan())
                    .await?
                    .ok_or_else(|| ProducerError::NoPlan { id: id.to_string() })?;
                if self.get_json::<State>(&keys.state()).await?.is_some() {
                    tracing::info!("suite run {id} was already submitted");
                    return Ok(id.to_string());
                }
                return self.start(&plan).await;
            }
            Err(e) => return Err(e.into()),
        }
        self.start(&plan).await
    }

    /// Pin each S3 experiment of `plan`, and each `store:` one when the store is a bucket, to
    /// its current version (in a versioned bucket), so the workers read what was submitted even
    /// if the object is replaced before their wave (and keep no copy of it: it cannot change).
    /// Each distinct object is read once, however many jobs run it. An object that cannot be
    /// read now is left unpinned: its worker reports why it cannot run.
    async fn pin_versions(&self, plan: &mut Plan) {
        let mut pinned: std::collections::HashMap<(String, String), Option<String>> =
            Default::default();
        for job in plan.waves.iter_mut().flat_map(|w| w.jobs.iter_mut()) {
            let (bucket, key) = match (
                job.bucket_name.as_deref().filter(|b| !b.is_empty()),
                job.experiment_source.strip_prefix("store:"),
            ) {
                (Some(bucket), _) => (bucket, job.experiment_source.as_str()),
                (None, Some(key)) => match self.store.own_bucket() {
                    Some(bucket) => (bucket, key),
                    None => continue,
                },
                (None, None) => continue,
            };
            let object = (bucket.to_string(), key.to_string());
            if let Some(version) = pinned.get(&object) {
                job.experiment_version = version.clone();
                continue;
            }
            let version = match self.store.get_from_bucket_at(bucket, key, None).await {
                Ok(Some((_, version))) => version,
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("s3://{bucket}/{key}: its version could not be pinned: {e}");
                    None
                }
            };
            job.experiment_version = version.clone();
            pinned.insert(object, version);
        }
    }

    /// Enqueue a stored plan's first wave to run (past skipped ones; a plan of skipped waves
    /// only ends here) and save its state.
    async fn start(&self, plan: &Plan) -> Result<String, ProducerError> {
        let id = &plan.suite_run_id;
        let state = self.begin(plan).await?;
        self.put_json(&SuiteRunKeys::new(id).state(), &state)
            .await?;
        self.index(plan, &state).await;
        Ok(id.to_string())
    }
}

/// When traces are exported: every job of `plan` carries the trace context of its wave's span
/// (`wave`), a child of the suite run's span (`suite`: the caller's, or one made here), so the
/// workers' job spans join the suite run's trace. Otherwise nothing changes.
fn stamp_traces(plan: &mut Plan) {
    let id = plan.suite_run_id.clone();
    let current = tracing::Span::current();
    let suite = if current.is_none() {
        tracing::info_span!("suite", suite_run_id = %id, suite = %plan.name)
    } else {
        current
    };
    for (w, wave) in plan.waves.iter_mut().enumerate() {
        let span = tracing::info_span!(parent: &suite, "wave", suite_run_id = %id, wave = w);
        let Some(traceparent) = crate::fleet::trace::traceparent(&span) else {
            return;
        };
        for job in &mut wave.jobs {
            job.traceparent = Some(traceparent.clone());
        }
    }
}
