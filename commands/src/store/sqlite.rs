//! The embedded default: SQLite in WAL mode, one writer connection.

use super::sql_reads::{SqlReader, to_u64};
use super::*;
use crate::db::SqliteSync;
use sqlx::SqlitePool;
use std::sync::OnceLock;

pub struct SqliteEventStore {
    write: SqlitePool,
    read: SqlitePool,
    wake: watch::Sender<u64>,
    recent: RecentAppends,
    /// Opens an append's transaction at the configured `synchronous` level.
    begin: &'static str,
}

/// Columns bound per event row; SQLite allows 32,766 variables per statement.
const COLS: usize = 8;
const ROWS_PER_INSERT: usize = 4000;
const _: () = assert!(COLS * ROWS_PER_INSERT < 32_766);

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, recorded_at, payload, metadata) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?)");
    }
    sql
}

fn full_chunk_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| insert_sql(ROWS_PER_INSERT))
}

impl SqliteEventStore {
    /// `sync`: the level appends commit at (the writer connection also
    /// carries read-model transactions at another level, so each append sets
    /// its own).
    pub fn new(write: SqlitePool, read: SqlitePool, sync: SqliteSync) -> Self {
        let head = watch::Sender::new(0);
        Self {
            write,
            read,
            wake: head,
            recent: RecentAppends::default(),
            begin: sync.begin(),
        }
    }

    async fn existing(
        tx: &mut sqlx::SqliteConnection,
        events: &[NewEvent],
    ) -> Result<Vec<(Uuid, String, u64, u64)>, StoreError> {
        // A retry repeats the whole batch, so probing the first id finds it.
        let first = sqlx::query("SELECT 1 FROM events WHERE event_id = ?")
            .bind(events[0].event_id)
            .fetch_optional(&mut *tx)
            .await?;
        if first.is_none() {
            return Ok(vec![]);
        }
        let mut found = Vec::new();
        for chunk in events.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT event_id, stream_id, global_position, stream_version FROM events WHERE event_id IN ({marks})"
            );
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q.bind(e.event_id);
            }
            let rows: Vec<(Uuid, String, i64, i64)> = q.fetch_all(&mut *tx).await?;
            found.extend(
                rows.into_iter()
                    .map(|(id, stream, pos, version)| (id, stream, to_u64(pos), to_u64(version))),
            );
        }
        Ok(found)
    }

    /// The write of an append, in one transaction: the stream's length
    /// (checked against `expected`), then the rows. Returns the last rowid
    /// and the stream's length before.
    async fn insert(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<(i64, u64), WriteError> {
        let n = events.len() as i64;
        let mut tx = self.write.begin_with(self.begin).await?;
        let length: i64 = sqlx::query_scalar(
            "INSERT INTO streams (stream_id, length) VALUES ($1, $2)
             ON CONFLICT (stream_id) DO UPDATE SET length = streams.length + excluded.length
             RETURNING length",
        )
        .bind(stream_id)
        .bind(n)
        .fetch_one(&mut *tx)
        .await?;
        let before = to_u64(length - n);
        if !expected.accepts(before) {
            tx.rollback().await?;
            return Err(WriteError::Store(StoreError::Conflict {
                stream: stream_id.to_string(),
                expected,
                actual: before,
            }));
        }
        let now = Utc::now();
        let mut last_rowid = 0i64;
        for (c, chunk) in events.chunks(ROWS_PER_INSERT).enumerate() {
            let sql_owned;
            let sql: &str = if chunk.len() == ROWS_PER_INSERT {
                full_chunk_sql()
            } else {
                sql_owned = insert_sql(chunk.len());
                &sql_owned
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, e) in chunk.iter().enumerate() {
                let version = before as i64 + (c * ROWS_PER_INSERT + i) as i64;
                q = q
                    .bind(e.event_id)
                    .bind(stream_id)
                    .bind(version)
                    .bind(&e.event_type)
                    .bind(i64::from(e.schema_version))
                    .bind(now)
                    .bind(serde_json::to_string(&e.payload).map_err(StoreError::from)?)
                    .bind(serde_json::to_string(&e.metadata).map_err(StoreError::from)?);
            }
            last_rowid = q.execute(&mut *tx).await?.last_insert_rowid();
        }
        tx.commit().await?;
        Ok((last_rowid, before))
    }
}

/// Why the write of an append failed.
enum WriteError {
    Db(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Db(e)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

impl WriteError {
    /// A version conflict or a duplicate event id: the batch may be stored
    /// already (a retry).
    fn may_be_retry(&self) -> bool {
        match self {
            WriteError::Store(StoreError::Conflict { .. }) => true,
            WriteError::Db(sqlx::Error::Database(d)) => d.is_unique_violation(),
            _ => false,
        }
    }

    fn into_store_error(self) -> StoreError {
        match self {
            WriteError::Db(e) => e.into(),
            WriteError::Store(e) => e,
        }
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_batch(&events)?;
        let n = events.len() as i64;
        // A retry (events already stored) is recognised only when the write
        // fails, on the version check or the unique event ids, so a fresh
        // append costs no lookup.
        let (last_rowid, before) = match self.insert(stream_id, expected, &events).await {
            Ok(done) => done,
            Err(e) if e.may_be_retry() => {
                let mut conn = self.read.acquire().await?;
                return match replayed_result(
                    stream_id,
                    &events,
                    &Self::existing(&mut conn, &events).await?,
                )? {
                    Some(done) => Ok(done),
                    None => Err(e.into_store_error()),
                };
            }
            Err(e) => return Err(e.into_store_error()),
        };
        let last = to_u64(last_rowid);
        self.recent.record(last + 1 - n as u64, &events);
        self.wake.send_if_modified(|h| {
            let newer = last > *h;
            *h = (*h).max(last);
            newer
        });
        Ok(AppendResult {
            first_position: last + 1 - n as u64,
            last_position: last,
            last_version: before + n as u64 - 1,
            deduplicated: false,
        })
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        SqlReader::Sqlite(&self.read)
            .read_stream(stream_id, from_version, max)
            .await
    }

    async fn read_all_skipping(
        &self,
        after: u64,
        max: usize,
        bodiless: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        SqlReader::Sqlite(&self.read)
            .read_all_skipping(after, max, bodiless)
            .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        SqlReader::Sqlite(&self.read).head_position().await
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn skip_recent(&self, after: u64, skip: &dyn Fn(&str) -> bool) -> Option<u64> {
        self.recent.skip(after, *self.wake.borrow(), skip)
    }
}
