//! The README runs as written: the bash blocks of its walkthrough, external
//! models, exports and managed training sections are put together, in the
//! README's order, into one script that runs against a fresh server in an
//! empty folder. The script is the README's text with three changes only:
//! `cargo run [-q] --release --` is this build's binary, the port is a
//! free one instead of 8080, and the OpenAI endpoint is a local server
//! speaking OpenAI's wire format (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, and
//! `allowed_networks` letting it through the SSRF guard).

use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_finetune-lab");
const README: &str = include_str!("../../../README.md");

/// The sections whose bash blocks the script is made of.
const SECTIONS: &[&str] = &[
    "## Walkthrough (copy-paste)",
    "## External models and the chat portal",
    "## Predictions table, judgment history, exports",
    "## Managed training: launch, watch, pause, budget",
];

/// Each ```` ```bash ```` block of the section headed `heading`.
fn bash_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let body = &readme[start + heading.len() + 2..];
    let section = &body[..body.find("\n## ").unwrap_or(body.len())];
    section
        .split("```bash\n")
        .skip(1)
        .map(|b| b[..b.find("\n```").expect("an unclosed block")].to_string())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_runs_as_written() {
    assert!(
        Command::new("jq").arg("--version").output().is_ok(),
        "the walkthrough needs jq on PATH"
    );
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for heading in SECTIONS {
        let blocks = bash_blocks(README, heading);
        assert!(!blocks.is_empty(), "{heading} has no bash block");
        for b in blocks {
            script.push_str(&format!("# --- {heading}\n{b}\n"));
        }
    }
    let port = free_port();
    let script = script
        .replace("cargo run -q --release --", BIN)
        .replace("cargo run --release --", BIN)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    assert!(!script.contains("cargo "), "an unreplaced cargo call");

    let provider = ftl_tests::mock_provider::Mock::start().await;
    let dir = std::env::temp_dir()
        .join("ftl-tests")
        .join(format!("readme-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("readme.sh"), &script).unwrap();
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("timeout");
    // The README's defaults, not this machine's settings.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FTL__")) {
        cmd.env_remove(k);
    }
    let out = cmd
        // -x: a failure shows the command it stopped at.
        .args(["300", "bash", "-x", "readme.sh"])
        .current_dir(&dir)
        .env_remove("FTL_CONFIG")
        .env("FTL__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("FTL__LOG__LEVEL", "warn")
        .env(
            "FTL__EXTERNAL_MODELS__ALLOWED_NETWORKS",
            "[\"127.0.0.1/32\"]",
        )
        .env("OPENAI_BASE_URL", format!("{}/oa/v1", provider.base))
        .env("OPENAI_API_KEY", "sk-test-openai")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("README script: {:?}", started.elapsed());
    let trace = &stderr[stderr.len().saturating_sub(8000)..];
    assert!(
        out.status.success(),
        "the README script failed ({}):\n{stdout}\n… {trace}",
        out.status
    );
    // Every GraphQL answer of the script, in order; none may be an error.
    let answers: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for a in &answers {
        assert!(a.get("errors").is_none(), "an error in the README: {a}");
    }
    let find = |field: &str| {
        answers
            .iter()
            .find_map(|a| a["data"].get(field).cloned())
            .unwrap_or_else(|| panic!("no {field} answer in:\n{stdout}"))
    };
    assert_eq!(find("logMetrics")["accepted"], 3);
    assert_eq!(find("completeJob")["status"], "SUCCEEDED");
    let series = find("metricSeries");
    assert_eq!(series[0]["points"].as_array().map(Vec::len), Some(2));
    // (registerExternalModel's answer went into $MODEL; the chat shows the
    // model and its sealed key work.)
    assert_eq!(find("chat")["text"], "echo: say teal");
    let requests: i64 = find("modelUsage")
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(requests, 1, "{stdout}");
    assert_eq!(
        provider.last("/chat/completions").header("authorization"),
        Some("Bearer sk-test-openai")
    );
    // The managed job ran to the end through a pause and a resume.
    let statuses: Vec<&str> = stdout
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_uppercase()) && !l.is_empty())
        .collect();
    assert_eq!(statuses.last(), Some(&"SUCCEEDED"), "{stdout}");
    assert!(statuses.contains(&"PAUSED"), "never paused: {statuses:?}");
    let generated = find("generate");
    assert!(
        generated["finishReason"].is_string(),
        "no generation: {generated}"
    );
    assert!(dir.join("failures.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
