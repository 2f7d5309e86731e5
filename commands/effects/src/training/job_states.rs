//! Folded job states kept between worker calls: each call reads only the
//! events appended since the last one (a lifecycle stream grows by a cost
//! tick every `training.cost_tick_ms`, so folding it whole on every
//! heartbeat and report would cost more as a job runs longer). Streams are
//! append-only, so a cached state plus the newer events is the state.

use ftl_commands::store::{EventStore, StoreError};
use ftl_domain::job::{JobDecider, JobEvent, JobState};
use ftl_domain::{AggregateEvent, Decider, EventCodecError, JobId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Jobs kept; past this the cache starts over (live jobs refill it).
const CAPACITY: usize = 4096;
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] EventCodecError),
}

#[derive(Default)]
pub struct JobStates {
    inner: Mutex<HashMap<JobId, (u64, JobState)>>,
}

impl JobStates {
    /// The job's state as of now (`JobState::default()` for no such job).
    pub async fn load(&self, store: &dyn EventStore, job: JobId) -> Result<JobState, LoadError> {
        let cached = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job)
            .cloned();
        let (mut next, mut state) = cached.unwrap_or_default();
        loop {
            let page = store.read_stream(&job.stream(), next, PAGE).await?;
            for e in &page {
                if let Some(ev) = JobEvent::from_domain(e.decode()?) {
                    state = JobDecider::evolve(state, &ev);
                }
                next = e.stream_version + 1;
            }
            if page.len() < PAGE {
                break;
            }
        }
        if next > 0 {
            let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= CAPACITY && !map.contains_key(&job) {
                map.clear();
            }
            map.insert(job, (next, state.clone()));
        }
        Ok(state)
    }
}

/// A job's folded lifecycle state (incrementally, from the cache).
pub async fn load_job(st: &crate::Effects, job: JobId) -> Result<JobState, LoadError> {
    st.job_states.load(st.store.as_ref(), job).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftl_commands::db::DbOptions;
    use ftl_commands::handler::handle;
    use ftl_commands::store::{Metadata, read_full_stream, sqlite::SqliteEventStore};
    use ftl_domain::ProjectId;
    use ftl_domain::job::{JobCommand, Provider, RunInfo};
    use uuid::Uuid;

    #[tokio::test]
    async fn a_cached_state_plus_new_events_is_the_whole_fold() {
        let dir = std::env::temp_dir().join(format!("ftl-job-states-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("t.db").display());
        let db = ftl_commands::Db::connect(&DbOptions::new(url))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let ftl_commands::Db::Sqlite { write, read, sync } = &db else {
            unreachable!("a sqlite URL")
        };
        let store = SqliteEventStore::new(write.clone(), read.clone(), *sync);
        let job = JobId(Uuid::new_v4());
        let run = |cmd: JobCommand| {
            let store = &store;
            async move {
                handle::<JobDecider>(
                    store,
                    &job.stream(),
                    &cmd,
                    Uuid::new_v4(),
                    &Metadata::default(),
                    |_| Ok(()),
                )
                .await
                .unwrap();
            }
        };
        let cache = JobStates::default();
        assert_eq!(cache.load(&store, job).await.unwrap(), JobState::default());
        run(JobCommand::Create {
            job_id: job,
            project_id: ProjectId(Uuid::new_v4()),
            name: "a".into(),
            config: serde_json::json!({}),
            tags: vec![],
            provider: Provider::External,
            run: RunInfo::default(),
        })
        .await;
        let first = cache.load(&store, job).await.unwrap();
        assert_eq!(first.name, "a");
        run(JobCommand::Start).await;
        run(JobCommand::Rename { name: "b".into() }).await;
        let cached = cache.load(&store, job).await.unwrap();
        let stored = read_full_stream(&store, &job.stream()).await.unwrap();
        let events: Vec<JobEvent> = stored
            .iter()
            .filter_map(|e| JobEvent::from_domain(e.decode().unwrap()))
            .collect();
        assert_eq!(cached, JobDecider::fold(events.iter()));
        assert_eq!(cached.name, "b");
        assert_ne!(cached, first);
        db.close().await;
    }
}
