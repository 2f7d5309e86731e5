//! The reads the two SQL stores share, written once: an event row mapped by
//! one `sqlx::FromRow` for both pools, a stream's events, the log in global
//! order, and the head position. PostgreSQL keeps payload and metadata as
//! JSONB, read back as text; SQLite keeps them as text.

use super::{Metadata, RecordedEvent, StoreError, read_all_sql};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

/// The reader pool of one of the SQL stores.
#[derive(Clone, Copy)]
pub(crate) enum SqlReader<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

/// Runs the same expression on either pool.
macro_rules! on_reader {
    ($r:expr, |$pool:ident| $body:expr) => {
        match $r {
            SqlReader::Sqlite($pool) => $body,
            SqlReader::Postgres($pool) => $body,
        }
    };
}

/// An event row as stored.
#[derive(sqlx::FromRow)]
struct EventRow {
    global_position: i64,
    event_id: Uuid,
    stream_id: String,
    stream_version: i64,
    event_type: String,
    schema_version: i32,
    recorded_at: DateTime<Utc>,
    payload: String,
    metadata: String,
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        let metadata: Metadata = serde_json::from_str(&r.metadata)?;
        Ok(RecordedEvent {
            global_position: to_u64(r.global_position),
            event_id: r.event_id,
            stream_id: r.stream_id,
            stream_version: to_u64(r.stream_version),
            event_type: r.event_type,
            schema_version: u32::try_from(r.schema_version).unwrap_or(0),
            recorded_at: r.recorded_at,
            payload: r.payload,
            metadata,
        })
    }
}

fn recorded(rows: Vec<EventRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

impl SqlReader<'_> {
    /// How a JSON column reads as text.
    fn cast(self) -> &'static str {
        match self {
            SqlReader::Sqlite(_) => "",
            SqlReader::Postgres(_) => "::text",
        }
    }

    pub(crate) async fn read_stream(
        self,
        stream_id: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let c = self.cast();
        let sql = format!(
            "SELECT global_position, event_id, stream_id, stream_version, event_type, schema_version, recorded_at,
                    payload{c} AS payload, metadata{c} AS metadata
             FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3"
        );
        let rows = on_reader!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(stream_id)
            .bind(from_version as i64)
            .bind(max as i64)
            .fetch_all(pool)
            .await?);
        recorded(rows)
    }

    pub(crate) async fn read_all_skipping(
        self,
        after: u64,
        max: usize,
        bodiless: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = read_all_sql(bodiless.len(), self.cast());
        let rows = on_reader!(self, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(after as i64)
                .bind(max as i64);
            for t in bodiless {
                q = q.bind(*t);
            }
            q.fetch_all(pool).await?
        });
        recorded(rows)
    }

    pub(crate) async fn head_position(self) -> Result<u64, StoreError> {
        let sql = "SELECT MAX(global_position) FROM events";
        let head: Option<i64> =
            on_reader!(self, |pool| sqlx::query_scalar(sql).fetch_one(pool).await?);
        Ok(to_u64(head.unwrap_or(0)))
    }
}
