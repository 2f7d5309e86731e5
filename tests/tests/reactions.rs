//! Reactions: the outbox's contract on each backend (enqueue once, claim
//! under a lease, retry with backoff, dead letter), and the process manager
//! that registers a succeeded job's model — once, and never again when the
//! projections are rebuilt from the log.

use crate::api::TestServer;
use crate::training::{CREATE, caught_up, config, model_of, sft_rows};
use ftl_commands::outbox::{self, ENQUEUE_SQL, enqueue_binds};
use ftl_commands::store::read_full_stream;
use ftl_domain::JobId;
use ftl_domain::ids::ModelId;
use ftl_domain::process::{Intent, Settlement};
use ftl_domain::project::Scope;
use ftl_projections::DbTx;
use ftl_tests::Backend;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

e2e!(
    outbox_claims_retries_and_dead_letters,
    a_success_registers_its_model_once_and_a_rebuild_enqueues_nothing
);

async fn enqueue(db: &ftl_commands::Db, id: Uuid, kind: &str, payload: &str, at: i64) {
    let mut tx = DbTx::begin(db).await.unwrap();
    ftl_projections::execute!(&mut tx, ENQUEUE_SQL, id, kind, payload, 1_i64, at).unwrap();
    tx.commit().await.unwrap();
}

async fn outbox_claims_retries_and_dead_letters(backend: Backend) {
    let (db, _) = ftl_tests::fresh_store(backend).await.unwrap();
    let intent = Intent::RegisterModel {
        job_id: JobId(Uuid::new_v4()),
    };
    let (id, kind, payload) = enqueue_binds(&intent).unwrap();
    let t0 = 1_000_000_i64;
    // Enqueued twice (a replay): one row.
    enqueue(&db, id, kind, &payload, t0).await;
    enqueue(&db, id, kind, &payload, t0 + 5).await;
    let rows = outbox::rows(&db).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("pending", 0));

    // Another kind's dispatcher does not see it; ours claims it, once.
    assert!(
        outbox::claim(&db, "webhook", "a", t0, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let got = outbox::claim(&db, kind, "a", t0, 1_000, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].intent_id, got[0].attempts), (id, 1));
    assert_eq!(got[0].intent().unwrap(), intent);
    assert!(
        outbox::claim(&db, kind, "b", t0 + 10, 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed twice while leased"
    );
    // Only the holder settles; a retry waits for its time.
    let retry = Settlement::Retry {
        at_ms: t0 + 2_000,
        error: "store down".into(),
    };
    assert!(!outbox::settle(&db, id, "b", &retry, t0).await.unwrap());
    assert!(outbox::settle(&db, id, "a", &retry, t0).await.unwrap());
    assert!(
        outbox::claim(&db, kind, "b", t0 + 1_999, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = outbox::claim(&db, kind, "b", t0 + 2_000, 100, 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    // Its holder dies: once the lease runs out another process takes it.
    assert!(
        outbox::claim(&db, kind, "c", t0 + 2_050, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = outbox::claim(&db, kind, "c", t0 + 2_101, 100, 10)
        .await
        .unwrap();
    assert_eq!(taken[0].attempts, 3);
    assert!(
        !outbox::settle(&db, id, "b", &Settlement::Done, t0 + 2_102)
            .await
            .unwrap(),
        "a holder whose lease ran out settled"
    );
    let dead = Settlement::Dead {
        error: "no checkpoint".into(),
    };
    assert!(
        outbox::settle(&db, id, "c", &dead, t0 + 2_200)
            .await
            .unwrap()
    );
    assert!(
        outbox::claim(&db, kind, "a", i64::MAX / 2, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let rows = outbox::rows(&db).await.unwrap();
    assert_eq!(rows[0].status, "dead");
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(rows[0].last_error.as_deref(), Some("no checkpoint"));
    db.close().await;
}

/// Runs a short training job to success: (key, job id).
pub(crate) async fn succeeded_job(s: &TestServer, project: &str) -> (String, String) {
    let key = s.key(project, Scope::Write).await;
    let (_, data) = s.upload(&key, "chat.jsonl", sft_rows()).await;
    let job = s
        .ok(
            &key,
            CREATE,
            json!({"n": "pm", "c": config("ftl/byte-transformer-tiny", "sft", 20), "d": data["id"]}),
        )
        .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = s
            .ok(
                &key,
                "query($j: ID!) { job(id: $j) { status error } }",
                json!({"j": job}),
            )
            .await;
        assert_ne!(d["job"]["status"], "FAILED", "{d}");
        if d["job"]["status"] == "SUCCEEDED" {
            return (key, job);
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times the model was registered (events on its stream).
pub(crate) async fn registrations(s: &TestServer, model: &str) -> usize {
    let id = ModelId(model.parse().unwrap());
    read_full_stream(s.state.effects.store.as_ref(), &id.stream())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "model.registered")
        .count()
}

async fn a_success_registers_its_model_once_and_a_rebuild_enqueues_nothing(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.training.local_workers = 1).await;
    let (key, job) = succeeded_job(&s, "pm").await;
    let model = model_of(&s, &key, &json!(job), "id checkpointStep").await;
    assert_eq!(model["checkpointStep"], 20, "{model}");
    let model_id = model["id"].as_str().unwrap().to_string();
    assert_eq!(registrations(&s, &model_id).await, 1);
    // The dispatcher settles the intent just after the model is visible.
    let deadline = Instant::now() + Duration::from_secs(10);
    let intents = loop {
        let rows = outbox::rows(&s.state.effects.db).await.unwrap();
        if rows.iter().all(|r| r.status != "pending") || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0].kind, "register_model");
    assert_eq!(intents[0].status, "done");
    assert_eq!(intents[0].attempts, 1);
    assert_eq!(
        intents[0].intent_id,
        Intent::RegisterModel {
            job_id: JobId(job.parse().unwrap())
        }
        .id()
    );

    // Every projection rebuilt from the log: the reaction's projection
    // replays the success, and nothing new is enqueued or dispatched.
    for p in s.state.effects.projections.status().await.unwrap() {
        s.state.effects.projections.rebuild(&p.name).await.unwrap();
    }
    caught_up(&s).await;
    ftl_effects::dispatch::dispatch_once(&s.state.effects, "test")
        .await
        .unwrap();
    assert_eq!(outbox::rows(&s.state.effects.db).await.unwrap(), intents);
    assert_eq!(registrations(&s, &model_id).await, 1);

    // An intent nobody can read is dead-lettered with the reason, not
    // retried forever (whichever dispatcher claims it).
    let bad = Uuid::new_v4();
    enqueue(
        &s.state.effects.db,
        bad,
        "register_model",
        "{\"kind\": 7}",
        0,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        ftl_effects::dispatch::dispatch_once(&s.state.effects, "test")
            .await
            .unwrap();
        let rows = outbox::rows(&s.state.effects.db).await.unwrap();
        let row = rows.into_iter().find(|r| r.intent_id == bad).unwrap();
        if row.status != "pending" {
            break row;
        }
        assert!(Instant::now() < deadline, "{row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.status, "dead");
    assert_eq!(row.attempts, 1, "a permanent failure is not retried");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("undecodable intent"),
        "{row:?}"
    );
    s.stop().await;
}
