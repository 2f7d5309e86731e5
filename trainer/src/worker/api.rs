//! One job's HTTP calls, with its per-job token: retries, the lost-lease
//! answer, and the flush of buffered metric points and log lines.

use super::report::Shared;
use ftl_domain::job::logs::{LogLine, MAX_LINES_PER_CALL};
use ftl_domain::job::worker_protocol::{
    LogsBatch, MAX_REPORT_BYTES, MetricsBatch, WirePoint, error_code,
};
use ftl_domain::limits::MAX_POINTS_PER_CALL;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use uuid::Uuid;

/// One job's calls, with its token; retried on transport errors and 5xx.
#[derive(Clone)]
pub(super) struct JobApi {
    pub(super) client: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    #[error("the lease on this job was lost")]
    LeaseLost,
    #[error("{0}")]
    Other(String),
}

impl JobApi {
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 0..6 {
            match build().bearer_auth(&self.token).send().await {
                Ok(r) if r.status().as_u16() == 409 => {
                    let body = r.text().await.unwrap_or_default();
                    if error_code(&body).as_deref() == Some("lease_lost") {
                        return Err(ApiError::LeaseLost);
                    }
                    return Err(ApiError::Other(body));
                }
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) if r.status().is_server_error() && attempt < 5 => {}
                Ok(r) => {
                    let status = r.status();
                    return Err(ApiError::Other(format!(
                        "HTTP {status}: {}",
                        r.text().await.unwrap_or_default()
                    )));
                }
                Err(e) if attempt < 5 => tracing::debug!(error = %e, "retrying a worker call"),
                Err(e) => return Err(ApiError::Other(e.to_string())),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(ApiError::Other("retries exhausted".into()))
    }

    pub(super) async fn post<T: Serialize>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.client.post(&url).json(body)).await
    }

    pub(super) async fn post_json<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, ApiError> {
        self.post(path, body)
            .await?
            .json()
            .await
            .map_err(|e| ApiError::Other(e.to_string()))
    }

    pub(super) async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}{path}", self.base);
        let r = self.send(|| self.client.get(&url)).await?;
        Ok(r.bytes()
            .await
            .map_err(|e| ApiError::Other(e.to_string()))?
            .to_vec())
    }

    pub(super) async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<(), ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(|| self.client.put(&url).body(bytes.clone()))
            .await
            .map(|_| ())
    }

    /// Sends what the training thread buffered: metric points, then log
    /// lines, in batches within the per-call limits. A batch that cannot be
    /// sent goes back to the front of its buffer for the next flush.
    pub(super) async fn flush(&self, shared: &Shared) -> Result<(), ApiError> {
        loop {
            let points: Vec<WirePoint> = {
                let mut b = shared.metrics.lock().unwrap_or_else(|e| e.into_inner());
                let n = b.len().min(MAX_POINTS_PER_CALL);
                b.drain(..n).collect()
            };
            if points.is_empty() {
                break;
            }
            let batch = MetricsBatch {
                batch_id: Uuid::new_v4(),
                points,
            };
            if let Err(e) = self.post("/metrics", &batch).await {
                let mut b = shared.metrics.lock().unwrap_or_else(|e| e.into_inner());
                b.splice(0..0, batch.points);
                return Err(e);
            }
        }
        loop {
            let lines: Vec<LogLine> = {
                let mut b = shared.logs.lock().unwrap_or_else(|e| e.into_inner());
                // At most the per-call line limit, and about half the
                // server's body limit in message bytes.
                let mut bytes = 0;
                let n = b
                    .iter()
                    .take(MAX_LINES_PER_CALL)
                    .take_while(|l| {
                        bytes += l.message.len() + 100;
                        bytes <= MAX_REPORT_BYTES / 2
                    })
                    .count()
                    .max(1)
                    .min(b.len());
                b.drain(..n).collect()
            };
            if lines.is_empty() {
                return Ok(());
            }
            let batch = LogsBatch {
                batch_id: Uuid::new_v4(),
                lines,
            };
            if let Err(e) = self.post("/logs", &batch).await {
                let mut b = shared.logs.lock().unwrap_or_else(|e| e.into_inner());
                b.splice(0..0, batch.lines);
                return Err(e);
            }
        }
    }
}
