//! Keys managed with the CLI while a server runs (as an operator would):
//! `keys revoke` in another process, and the running server refuses the key
//! from then on, although it had just accepted (and cached) it.

use crate::process::{ServerProcess, command, run_cli};
use ftl_tests::Backend;
use std::time::{Duration, Instant};

async fn revoked_key_is_refused(backend: Backend) {
    let db = backend.fresh_url().await.unwrap();
    let create = |name: &str| {
        run_cli(
            &db,
            &["keys", "create", "--project", "keys-e2e", "--name", name],
        )
        .trim()
        .to_string()
    };
    let (key, other) = (create("leaked"), create("kept"));
    let http = reqwest::Client::new();
    let server = ServerProcess::start(&db, &http).await;
    let info = format!("{}/api/3.0/mlflow/server-info", server.base);
    let status = |k: String| {
        let (http, info) = (http.clone(), info.clone());
        async move {
            http.get(&info)
                .bearer_auth(k)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(key.clone()).await, 200);

    let listed = run_cli(&db, &["keys", "list", "--project", "keys-e2e"]);
    let id = listed
        .lines()
        .find(|l| l.split('\t').nth(1) == Some("leaked"))
        .and_then(|l| l.split('\t').next())
        .expect("keys list shows the key")
        .to_string();
    run_cli(&db, &["keys", "revoke", "--project", "keys-e2e", &id]);
    let listed = run_cli(&db, &["keys", "list", "--project", "keys-e2e"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.ends_with("\trevoked")),
        "{listed}"
    );

    // The server learns of another process's append within a poll
    // interval (50 ms in tests) and drops its cached answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(key.clone()).await != 401 {
        assert!(
            Instant::now() < deadline,
            "the revoked key is still accepted on {backend:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(other.clone()).await, 200, "other keys still work");

    // Again: nothing to do. A key this project does not have: an error.
    run_cli(&db, &["keys", "revoke", "--project", "keys-e2e", &id]);
    for (project, key_id) in [
        ("keys-e2e", uuid::Uuid::new_v4().to_string()),
        ("someone-else", id.clone()),
    ] {
        let out = command(&db)
            .args(["keys", "revoke", "--project", project, &key_id])
            .output()
            .unwrap();
        assert!(!out.status.success(), "revoking {key_id} in {project}");
    }
    assert_eq!(status(other).await, 200);
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_on_sqlite() {
    revoked_key_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_on_postgres() {
    revoked_key_is_refused(Backend::Postgres).await;
}
