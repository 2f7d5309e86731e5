//! One contract suite, instantiated for every event store backend.

use async_trait::async_trait;
use ftl_commands::Db;
use ftl_commands::store::{
    DynStore, ExpectedVersion, Metadata, NewEvent, StoreError, subscribe_all,
};
use ftl_projections::runner::{self, Decoded, Projection, ProjectionError};
use ftl_projections::{DbTx, execute};
use futures::StreamExt;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

pub fn ev(i: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "job.started".into(),
        schema_version: 1,
        payload: json!({ "job_id": Uuid::from_u128(u128::from(i)), "i": i }),
        metadata: Metadata {
            actor: Some("test".into()),
            ..Default::default()
        },
    }
}

fn evs(n: u64) -> Vec<NewEvent> {
    (0..n).map(ev).collect()
}

pub async fn append_and_read_stream(_db: Db, store: DynStore) {
    let events = evs(3);
    let r = store
        .append("s-1", ExpectedVersion::NoStream, events.clone())
        .await
        .unwrap();
    assert_eq!(r.last_version, 2);
    assert_eq!(r.last_position - r.first_position, 2);
    assert!(!r.deduplicated);
    let read = store.read_stream("s-1", 0, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (got, sent)) in read.iter().zip(&events).enumerate() {
        assert_eq!(got.stream_version, i as u64);
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.payload_json().unwrap(), sent.payload);
        assert_eq!(got.metadata, sent.metadata);
        assert_eq!(got.event_type, "job.started");
    }
    assert!(
        read.windows(2)
            .all(|w| w[0].global_position < w[1].global_position)
    );
    assert_eq!(store.read_stream("s-1", 1, 100).await.unwrap().len(), 2);
    assert!(
        store
            .read_stream("missing", 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn expected_version_conflicts(_db: Db, store: DynStore) {
    store
        .append("s", ExpectedVersion::NoStream, evs(3))
        .await
        .unwrap();
    let conflict = |r: Result<_, StoreError>, n| match r {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, n),
        other => panic!("expected a conflict, got {other:?}"),
    };
    conflict(
        store.append("s", ExpectedVersion::NoStream, evs(1)).await,
        3,
    );
    conflict(
        store.append("s", ExpectedVersion::Exact(1), evs(1)).await,
        3,
    );
    conflict(
        store
            .append("other", ExpectedVersion::StreamExists, evs(1))
            .await,
        0,
    );
    store
        .append("s", ExpectedVersion::Exact(2), evs(1))
        .await
        .unwrap();
    store
        .append("s", ExpectedVersion::StreamExists, evs(1))
        .await
        .unwrap();
    store
        .append("s", ExpectedVersion::Any, evs(1))
        .await
        .unwrap();
    // A failed append leaves nothing behind.
    assert_eq!(store.read_stream("s", 0, 100).await.unwrap().len(), 6);
    assert!(store.read_stream("other", 0, 100).await.unwrap().is_empty());
}

pub async fn idempotent_appends(_db: Db, store: DynStore) {
    let batch = evs(5);
    let first = store
        .append("s", ExpectedVersion::Any, batch.clone())
        .await
        .unwrap();
    let again = store
        .append("s", ExpectedVersion::Any, batch.clone())
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(
        (
            again.first_position,
            again.last_position,
            again.last_version
        ),
        (
            first.first_position,
            first.last_position,
            first.last_version
        )
    );
    // Even a stale expected version is answered with the original result.
    let stale = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(stale.last_position, first.last_position);
    assert_eq!(store.read_all(0, 100).await.unwrap().len(), 5);
    match store.append("elsewhere", ExpectedVersion::Any, batch).await {
        Err(StoreError::IdempotencyMismatch(_)) => {}
        other => panic!("reusing ids on another stream must fail, got {other:?}"),
    }
}

pub async fn read_all_in_global_order(_db: Db, store: DynStore) {
    for i in 0..10 {
        store
            .append(&format!("s-{}", i % 3), ExpectedVersion::Any, evs(3))
            .await
            .unwrap();
    }
    let all = store.read_all(0, 1000).await.unwrap();
    assert_eq!(all.len(), 30);
    assert!(
        all.windows(2)
            .all(|w| w[0].global_position < w[1].global_position)
    );
    assert_eq!(
        store.head_position().await.unwrap(),
        all[29].global_position
    );
    for k in [0usize, 1, 7, 29] {
        let rest = store.read_all(all[k].global_position, 1000).await.unwrap();
        assert_eq!(rest.len(), 29 - k);
        assert_eq!(
            rest.first().map(|e| e.event_id),
            all.get(k + 1).map(|e| e.event_id)
        );
    }
    let page = store.read_all(all[3].global_position, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        all[4..9].iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
}

pub async fn catch_up_then_live(_db: Db, store: DynStore) {
    store
        .append("s", ExpectedVersion::Any, evs(5))
        .await
        .unwrap();
    let mut sub = subscribe_all(store.clone(), 0, Duration::from_millis(200));
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(sub.next().await.unwrap().unwrap().global_position);
    }
    let live = evs(5);
    let ids: Vec<Uuid> = live.iter().map(|e| e.event_id).collect();
    store.append("t", ExpectedVersion::Any, live).await.unwrap();
    for id in ids {
        let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.event_id, id);
        seen.push(e.global_position);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

pub async fn batch_of_ten_thousand(_db: Db, store: DynStore) {
    let batch = evs(10_000);
    let r = store
        .append("big", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(r.last_version, 9_999);
    assert_eq!(r.last_position - r.first_position, 9_999);
    let mut read = Vec::new();
    while read.len() < 10_000 {
        let more = store
            .read_stream("big", read.len() as u64, 4000)
            .await
            .unwrap();
        assert!(!more.is_empty());
        read.extend(more);
    }
    assert!(
        read.iter()
            .zip(&batch)
            .all(|(a, b)| a.event_id == b.event_id)
    );
}

/// A projection that records every position it applies, in a table whose
/// primary key refuses duplicates, and in memory in application order.
struct Recorder {
    applied: Arc<Mutex<Vec<u64>>>,
    /// The one event type it handles; every type when `None`.
    only: Option<&'static str>,
}

impl Recorder {
    async fn install(db: &Db, only: Option<&'static str>) -> Arc<Self> {
        let recorder = Arc::new(Recorder {
            applied: Arc::default(),
            only,
        });
        let mut tx = DbTx::begin(db).await.unwrap();
        tx.batch(&recorder.ddl(tx.is_postgres(), "_g1"))
            .await
            .unwrap();
        execute!(&mut tx, "INSERT INTO projection_checkpoints (name, generation, position, updated_at) VALUES ('recorder', 1, 0, $1)", chrono::Utc::now()).unwrap();
        tx.commit().await.unwrap();
        recorder
    }
}

#[async_trait]
impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["recorded"]
    }
    fn ddl(&self, _postgres: bool, s: &str) -> String {
        format!("CREATE TABLE IF NOT EXISTS recorded{s} (position BIGINT PRIMARY KEY)")
    }
    fn handles(&self, event_type: &str) -> bool {
        self.only.is_none_or(|t| t == event_type)
    }
    async fn apply(
        &self,
        tx: &mut DbTx,
        s: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        for e in events {
            execute!(
                &mut *tx,
                format!("INSERT INTO recorded{s} (position) VALUES ($1)"),
                e.position as i64
            )?;
        }
        self.applied
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| e.position));
        Ok(())
    }
}

pub async fn concurrent_writers_while_projecting(db: Db, store: DynStore) {
    let recorder = Recorder::install(&db, None).await;
    let applied = recorder.applied.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner_task = {
        let (db, store, done) = (db.clone(), store.clone(), done.clone());
        let p: Arc<dyn Projection> = recorder.clone();
        // The runner's path, from the stored checkpoint each time (as a
        // runner restarting at every step would): whether anything was new.
        let step = move || {
            let (db, store, p) = (db.clone(), store.clone(), p.clone());
            async move {
                let mut at = runner::Cursor::load(&db, "recorder", 1).await.unwrap();
                let (changed, _) =
                    catch_up_once(&db, &store, &p, &mut at, runner::Checkpointing::Eager).await;
                changed > 0
            }
        };
        tokio::spawn(async move {
            loop {
                if !step().await {
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        if !step().await {
                            return;
                        }
                    } else {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
        })
    };
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                // 2,000 events per writer: mixed batch sizes, own and shared streams.
                let mut written = 0u64;
                let mut k = 0u64;
                while written < 2_000 {
                    let n = [1u64, 7, 50, 142][(k % 4) as usize].min(2_000 - written);
                    let batch = evs(n);
                    ids.extend(batch.iter().map(|e| e.event_id));
                    let stream = if k.is_multiple_of(3) {
                        "shared".to_string()
                    } else {
                        format!("writer-{w}")
                    };
                    store
                        .append(&stream, ExpectedVersion::Any, batch)
                        .await
                        .unwrap();
                    written += n;
                    k += 1;
                }
                ids
            })
        })
        .collect();
    let mut all_ids = Vec::new();
    for w in writers {
        all_ids.extend(w.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(120), runner_task)
        .await
        .unwrap()
        .unwrap();
    let applied = applied.lock().unwrap().clone();
    assert_eq!(all_ids.len(), 16_000);
    assert_eq!(applied.len(), 16_000, "every event exactly once");
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "in global order");
    let log = store.read_all(0, 20_000).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        applied
    );
    let count: i64 = ftl_projections::on_pool!(&db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM recorded_g1"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(count, 16_000);
}

/// A reader that skips bulk events gets every event, in order, with the
/// payloads of the named types left out and everything else intact.
pub async fn read_all_skipping_leaves_bodies_out(_db: Db, store: DynStore) {
    for i in 0..6u64 {
        let mut e = ev(i);
        if i % 2 == 1 {
            e.event_type = "job.metrics_logged".into();
            e.payload = json!({ "job_id": Uuid::from_u128(1), "points": [{ "key": "loss", "step": i, "value": 0.5, "timestamp_ms": 1 }] });
        }
        store
            .append(&format!("s-{i}"), ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    let all = store.read_all(0, 100).await.unwrap();
    let unfiltered = store.read_all_skipping(0, 100, &[]).await.unwrap();
    assert_eq!(unfiltered, all);
    let light = store
        .read_all_skipping(0, 100, &["job.metrics_logged", "job.logs_appended"])
        .await
        .unwrap();
    assert_eq!(light.len(), 6);
    for (l, full) in light.iter().zip(&all) {
        assert_eq!(
            (l.global_position, l.event_id, &l.event_type, &l.stream_id),
            (
                full.global_position,
                full.event_id,
                &full.event_type,
                &full.stream_id
            )
        );
        if l.event_type == "job.metrics_logged" {
            assert_eq!(l.payload, "");
            assert_eq!(l.metadata, full.metadata);
            assert!(full.payload.contains("points"));
        } else {
            assert_eq!(l, full);
        }
    }
    let page = store
        .read_all_skipping(all[1].global_position, 2, &["job.metrics_logged"])
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        all[2..4].iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
}

/// Deferred checkpointing: events the projection ignores move the runner's
/// cursor but commit nothing; the stored checkpoint catches up when a
/// handled event commits or the cursor is persisted. Eager checkpointing
/// stores every move.
/// One `runner::catch_up` call: what it changed and the progress it reported.
async fn catch_up_once(
    db: &Db,
    store: &DynStore,
    p: &Arc<dyn Projection>,
    cursor: &mut runner::Cursor,
    checkpointing: runner::Checkpointing,
) -> (u64, Vec<(u64, bool)>) {
    let mut heard = Vec::new();
    let changed = runner::catch_up(
        db,
        store,
        p,
        cursor,
        checkpointing,
        |pos, changed| heard.push((pos, changed)),
        || false,
    )
    .await
    .unwrap()
    .changed;
    (changed, heard)
}

pub async fn deferred_checkpoints(db: Db, store: DynStore) {
    let recorder = Recorder::install(&db, Some("job.started")).await;
    let p: Arc<dyn Projection> = recorder.clone();
    let append = |ty: &'static str, n: u64| {
        let store = store.clone();
        async move {
            let batch = (0..n)
                .map(|i| NewEvent {
                    event_type: ty.into(),
                    ..ev(i)
                })
                .collect();
            store
                .append("s", ExpectedVersion::Any, batch)
                .await
                .unwrap()
                .last_position
        }
    };
    let stored = || runner::checkpoint(&db, "recorder", 1);
    let at = |stored, applied| runner::Cursor {
        generation: 1,
        stored,
        applied,
    };
    let mut cursor = runner::Cursor::load(&db, "recorder", 1).await.unwrap();

    let ignored = append("job.created", 5).await;
    let (committed, heard) = catch_up_once(
        &db,
        &store,
        &p,
        &mut cursor,
        runner::Checkpointing::Deferred,
    )
    .await;
    assert_eq!(committed, 0, "nothing changed for ignored events");
    assert_eq!(cursor, at(0, ignored));
    assert_eq!(
        heard,
        vec![(ignored, false)],
        "progress is reported all the same"
    );
    assert_eq!(stored().await.unwrap(), 0);

    let handled = append("job.started", 2).await;
    let (committed, heard) = catch_up_once(
        &db,
        &store,
        &p,
        &mut cursor,
        runner::Checkpointing::Deferred,
    )
    .await;
    assert_eq!(committed, 1);
    assert_eq!(heard, vec![(handled, true)]);
    assert_eq!(cursor, at(handled, handled));
    assert_eq!(stored().await.unwrap(), handled);
    assert_eq!(
        *recorder.applied.lock().unwrap(),
        vec![handled - 1, handled]
    );

    let ignored = append("job.created", 3).await;
    catch_up_once(
        &db,
        &store,
        &p,
        &mut cursor,
        runner::Checkpointing::Deferred,
    )
    .await;
    assert_eq!(stored().await.unwrap(), handled);
    cursor.persist(&db, p.as_ref()).await.unwrap();
    assert_eq!(stored().await.unwrap(), ignored);
    assert_eq!(cursor, at(ignored, ignored));

    // A cursor whose stored checkpoint is stale (another runner moved it)
    // is refused rather than moving the checkpoint back.
    let mut stale = at(handled, ignored + 1);
    assert!(matches!(
        stale.persist(&db, p.as_ref()).await,
        Err(ProjectionError::CheckpointMoved(_))
    ));

    let ignored = append("job.created", 2).await;
    let (committed, heard) =
        catch_up_once(&db, &store, &p, &mut cursor, runner::Checkpointing::Eager).await;
    assert_eq!(committed, 0, "the read model did not change");
    assert_eq!(heard, vec![(ignored, false)]);
    assert_eq!(stored().await.unwrap(), ignored);
    assert_eq!(recorder.applied.lock().unwrap().len(), 2);
}

/// Runners gather a trickle of appends (one metric point per call) into
/// one read-model transaction while they linger; a reader waiting for its
/// write cuts the linger short. The linger applies on SQLite only (on
/// PostgreSQL the runner may be in another process, deaf to the reader).
pub async fn runners_gather_a_trickle_unless_a_reader_waits(db: Db, store: DynStore) {
    const LINGER: Duration = Duration::from_secs(2);
    let sqlite = matches!(db, Db::Sqlite { .. });
    let projections =
        ftl_projections::Projections::standard(db.clone(), store.clone(), Duration::from_secs(30))
            .with_linger(LINGER);
    projections.ensure().await.unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let runners = projections.spawn_runners(shutdown);
    let job = ftl_domain::JobId(Uuid::new_v4());
    let log = |step: i64| {
        let store = store.clone();
        async move {
            let point = ftl_domain::metrics::MetricPoint {
                key: "loss".into(),
                value: step as f64,
                step,
                timestamp_ms: 1_700_000_000_000 + step,
            };
            ftl_commands::handler::append_metrics(
                store.as_ref(),
                job,
                vec![point],
                Uuid::new_v4(),
                &Metadata::default(),
            )
            .await
            .unwrap()
            .last_position
        }
    };
    let applied = |position: u64| {
        let projections = projections.clone();
        async move {
            let deadline = std::time::Instant::now() + LINGER * 5;
            while projections.position("metrics").await.unwrap() < position {
                assert!(std::time::Instant::now() < deadline, "never applied");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // The first point is applied at once (nothing says yet that points
    // come light); it makes the runner linger from then on.
    applied(log(0).await).await;
    let before = projections.changes("metrics");

    // Five calls 20 ms apart, nobody waiting: one transaction on SQLite.
    let mut last = 0;
    for step in 1..=5 {
        last = log(step).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    applied(last).await;
    let transactions = projections.changes("metrics") - before;
    if sqlite {
        assert_eq!(transactions, 1, "the trickle shares one transaction");
    } else {
        assert!((1..=5).contains(&transactions), "{transactions}");
    }

    // A reader waiting for its write is answered long before the linger ends.
    let started = std::time::Instant::now();
    let position = log(6).await;
    assert!(projections.wait_for(position, LINGER * 5).await);
    let waited = started.elapsed();
    assert!(waited < LINGER / 2, "read-your-writes waited {waited:?}");
    let points = ftl_projections::views::metrics::history(&db, job.0, "loss", 0, None)
        .await
        .unwrap();
    assert_eq!(
        points.iter().map(|p| p.step).collect::<Vec<_>>(),
        (0..=6).collect::<Vec<_>>()
    );
    stop.send(true).unwrap();
    for r in runners {
        r.await.unwrap();
    }
}

macro_rules! contract_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let (db, store) = $make.await.unwrap();
                        super::$name(db, store).await;
                    }
                };
            }
            case!(append_and_read_stream);
            case!(expected_version_conflicts);
            case!(idempotent_appends);
            case!(read_all_in_global_order);
            case!(read_all_skipping_leaves_bodies_out);
            case!(catch_up_then_live);
            case!(batch_of_ten_thousand);
            case!(concurrent_writers_while_projecting);
            case!(deferred_checkpoints);
            case!(runners_gather_a_trickle_unless_a_reader_waits);
        }
    };
}

contract_suite!(sqlite, ftl_tests::fresh_store(ftl_tests::Backend::Sqlite));
contract_suite!(
    postgres,
    ftl_tests::fresh_store(ftl_tests::Backend::Postgres)
);

/// PostgreSQL's hard case: a transaction that took its positions first
/// commits after a later one. The later writer must wait, and a reader must
/// never pass the earlier positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_out_of_order_commit_skips_nothing() {
    use ftl_commands::store::postgres::PostgresEventStore;
    let (db, store) = ftl_tests::fresh_store(ftl_tests::Backend::Postgres)
        .await
        .unwrap();
    let Db::Postgres(pool) = &db else {
        unreachable!()
    };
    let mut slow = pool.begin().await.unwrap();
    let a = PostgresEventStore::append_in_tx(&mut slow, "a", ExpectedVersion::Any, &evs(3))
        .await
        .unwrap();
    let fast = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append("b", ExpectedVersion::Any, evs(2))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The later writer has not committed past the open transaction...
    assert!(!fast.is_finished());
    // ...and a reader sees nothing yet, so it cannot checkpoint past `a`.
    assert!(store.read_all(0, 100).await.unwrap().is_empty());
    slow.commit().await.unwrap();
    let b = fast.await.unwrap();
    assert!(b.first_position > a.last_position);
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].stream_id, "a");
    assert_eq!(all[4].stream_id, "b");
}

/// SQLite's one writer connection carries the log and the read models, and
/// `synchronous` belongs to the connection: each write transaction sets its
/// own level — appends at the configured one (here the default, `full`:
/// fsync before the acknowledgement), read models at `normal`.
#[tokio::test]
async fn sqlite_appends_sync_read_models_do_not_wait() {
    let (db, store) = ftl_tests::fresh_store(ftl_tests::Backend::Sqlite)
        .await
        .unwrap();
    let Db::Sqlite { write, sync, .. } = &db else {
        unreachable!()
    };
    assert_eq!(*sync, ftl_commands::SqliteSync::Full);
    // The writer pool holds one connection, so this reads the level the
    // last transaction on it left (0 off, 1 normal, 2 full).
    let level = || async {
        sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
            .fetch_one(write)
            .await
            .unwrap()
    };
    let read_model_write = || async {
        let mut tx = DbTx::begin(&db).await.unwrap();
        execute!(
            &mut tx,
            "UPDATE projection_checkpoints SET position = position WHERE name = $1",
            "nothing"
        )
        .unwrap();
        tx.commit().await.unwrap();
    };
    for _ in 0..2 {
        read_model_write().await;
        assert_eq!(level().await, 1);
        store
            .append("s", ExpectedVersion::Any, evs(1))
            .await
            .unwrap();
        assert_eq!(level().await, 2);
    }
}

#[cfg(feature = "kurrentdb")]
mod kurrentdb {
    //! Runs when FTL_TEST_KURRENTDB_URL names a server; otherwise says so and passes.
    use super::*;
    use ftl_commands::store::kurrent::KurrentEventStore;

    async fn make() -> Option<(Db, DynStore)> {
        let url = std::env::var("FTL_TEST_KURRENTDB_URL").ok()?;
        let (db, _) = ftl_tests::fresh_store(ftl_tests::Backend::Sqlite)
            .await
            .ok()?;
        let store: DynStore = Arc::new(KurrentEventStore::connect(&url).await.ok()?);
        Some((db, store))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn contract() {
        let Some((db, store)) = make().await else {
            eprintln!("FTL_TEST_KURRENTDB_URL not set: KurrentDB contract suite not run");
            return;
        };
        append_and_read_stream(db.clone(), store.clone()).await;
        catch_up_then_live(db, store).await;
    }
}
