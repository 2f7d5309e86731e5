//! PostgreSQL: the production store and the scale-out path.
//!
//! Gap-free global order: a sequence hands out positions at insert time, but
//! transactions commit in any order, so a reader could pass position N+1 while
//! N is still uncommitted and never come back for it. Appends therefore take a
//! transaction-scoped advisory lock before drawing positions; the lock is
//! released only after the commit is visible, so positions become visible in
//! order and "everything up to the newest position I saw" is always complete.
//! Appends are batched, so the serialisation costs one commit per batch.

use super::sql_reads::{SqlReader, to_u64};
use super::*;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

pub const NOTIFY_CHANNEL: &str = "ftl_events";
/// Advisory lock key that orders appends ("FTL_LOG").
pub const APPEND_LOCK_KEY: i64 = 0x0046_544c_5f4c_4f47;

pub struct PostgresEventStore {
    pool: PgPool,
    wake: watch::Sender<u64>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for PostgresEventStore {
    fn drop(&mut self) {
        if let Some(h) = self.listener.take() {
            h.abort();
        }
    }
}

impl PostgresEventStore {
    /// Connects the store and starts listening for appends by other processes.
    pub async fn new(pool: PgPool) -> Result<Self, StoreError> {
        let wake = watch::Sender::new(0u64);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let tx = wake.clone();
        // Ends when the pool closes, releasing its connection (`Pool::close`
        // waits for every checked-out connection).
        let mut closed = pool.close_event();
        let owner = pool.clone();
        let handle = tokio::spawn(async move {
            loop {
                match closed.do_until(listener.recv()).await {
                    Err(_) => return,
                    Ok(Ok(n)) => {
                        let pos: u64 = n.payload().parse().unwrap_or(0);
                        tx.send_modify(|h| *h = (*h).max(pos));
                    }
                    Ok(Err(_)) if owner.is_closed() => return,
                    Ok(Err(e)) => {
                        // PgListener reconnects by itself on the next recv.
                        tracing::warn!(error = %e, "event notification listener interrupted");
                        let pause = tokio::time::sleep(std::time::Duration::from_millis(500));
                        if closed.do_until(pause).await.is_err() {
                            return;
                        }
                        tx.send_modify(|_| {});
                    }
                }
            }
        });
        Ok(Self {
            pool,
            wake,
            listener: Some(handle),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends inside a caller's transaction, so a process manager can write its
    /// outbox or checkpoint atomically with its events. The caller commits.
    pub async fn append_in_tx(
        tx: &mut PgConnection,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        validate_batch(events)?;
        let n = events.len() as i64;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK_KEY)
            .execute(&mut *tx)
            .await?;

        let probe = sqlx::query("SELECT 1 FROM events WHERE event_id = $1")
            .bind(events[0].event_id)
            .fetch_optional(&mut *tx)
            .await?;
        if probe.is_some() {
            let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
            let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
                "SELECT event_id, stream_id, global_position, stream_version FROM events WHERE event_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
            let found: Vec<_> = rows
                .into_iter()
                .map(|(id, stream, pos, version)| (id, stream, to_u64(pos), to_u64(version)))
                .collect();
            if let Some(done) = replayed_result(stream_id, events, &found)? {
                return Ok(done);
            }
        }

        let length: i64 = sqlx::query_scalar(
            "INSERT INTO streams (stream_id, length) VALUES ($1, $2)
             ON CONFLICT (stream_id) DO UPDATE SET length = streams.length + excluded.length
             RETURNING length",
        )
        .bind(stream_id)
        .bind(n)
        .fetch_one(&mut *tx)
        .await?;
        let before = length - n;
        if !expected.accepts(to_u64(before)) {
            return Err(StoreError::Conflict {
                stream: stream_id.to_string(),
                expected,
                actual: to_u64(before),
            });
        }

        let mut ids = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metas = Vec::with_capacity(events.len());
        for e in events {
            ids.push(e.event_id);
            types.push(e.event_type.as_str());
            versions.push(e.schema_version as i32);
            payloads.push(serde_json::to_string(&e.payload)?);
            metas.push(serde_json::to_string(&e.metadata)?);
        }
        sqlx::query(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, recorded_at, payload, metadata)
             SELECT id, $2, $3 + ord - 1, et, sv, $4, p::json, m::jsonb
             FROM UNNEST($1::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[]) WITH ORDINALITY AS t(id, et, sv, p, m, ord)
             ORDER BY ord",
        )
        .bind(&ids)
        .bind(stream_id)
        .bind(before)
        .bind(Utc::now())
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metas)
        .execute(&mut *tx)
        .await?;
        // Under the lock nobody else draws positions: ours are contiguous.
        let last: i64 = sqlx::query_scalar(
            "SELECT currval(pg_get_serial_sequence('events', 'global_position'))",
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(last.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(AppendResult {
            first_position: to_u64(last - n + 1),
            last_position: to_u64(last),
            last_version: to_u64(length - 1),
            deduplicated: false,
        })
    }
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut tx = self.pool.begin().await?;
        let result = Self::append_in_tx(&mut tx, stream_id, expected, &events).await;
        match result {
            Ok(r) if !r.deduplicated => {
                tx.commit().await?;
                self.wake.send_modify(|h| *h = (*h).max(r.last_position));
                Ok(r)
            }
            other => {
                tx.rollback().await?;
                other
            }
        }
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        SqlReader::Postgres(&self.pool)
            .read_stream(stream_id, from_version, max)
            .await
    }

    async fn read_all_skipping(
        &self,
        after: u64,
        max: usize,
        bodiless: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        SqlReader::Postgres(&self.pool)
            .read_all_skipping(after, max, bodiless)
            .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        SqlReader::Postgres(&self.pool).head_position().await
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
