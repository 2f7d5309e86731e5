//! One transaction type over both SQL backends, and macros that bind the same
//! arguments to the same `$N` SQL text on either.

use ftl_commands::{Db, SqliteSync};
use sqlx::{Postgres, Sqlite, Transaction};

pub enum DbTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl DbTx {
    /// Starts a read-model write transaction (`BEGIN IMMEDIATE` on SQLite:
    /// take the write lock up front rather than fail to upgrade later). On
    /// SQLite it commits without waiting for the disk: read models are
    /// derived from the log (see [`SqliteSync`]).
    pub async fn begin(db: &Db) -> Result<DbTx, sqlx::Error> {
        Ok(match db {
            Db::Sqlite { write, .. } => {
                DbTx::Sqlite(write.begin_with(SqliteSync::Normal.begin()).await?)
            }
            Db::Postgres(pool) => DbTx::Postgres(pool.begin().await?),
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            DbTx::Sqlite(t) => t.commit().await,
            DbTx::Postgres(t) => t.commit().await,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DbTx::Postgres(_))
    }

    /// Runs statements without arguments (DDL).
    pub async fn batch(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            DbTx::Sqlite(t) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut **t)
                .await
                .map(|_| ()),
            DbTx::Postgres(t) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut **t)
                .await
                .map(|_| ()),
        }
    }
}

/// `execute!(tx, sql, a, b, …)` → rows affected, on either backend.
#[macro_export]
macro_rules! execute {
    ($tx:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        match $tx {
            $crate::DbTx::Sqlite(t) => sqlx::query(sqlx::AssertSqlSafe($sql))$(.bind($bind))*.execute(&mut **t).await.map(|r| r.rows_affected()),
            $crate::DbTx::Postgres(t) => sqlx::query(sqlx::AssertSqlSafe($sql))$(.bind($bind))*.execute(&mut **t).await.map(|r| r.rows_affected()),
        }
    };
}

/// `on_pool!(db, |pool| expr)`: runs the same expression on the reader pool of
/// either backend (the expression must produce the same type on both).
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            ftl_commands::Db::Sqlite { read: $pool, .. } => $body,
            ftl_commands::Db::Postgres($pool) => $body,
        }
    };
}

/// `fetch!(db, fetch_all | fetch_optional | fetch_one, Row, sql, a, b, …)`:
/// one query on the reader pool of either backend, each row mapped by
/// `Row`'s `sqlx::FromRow` (one derive serves both pools).
#[macro_export]
macro_rules! fetch {
    ($db:expr, $how:ident, $row:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::on_pool!($db, |pool| sqlx::query_as::<_, $row>($sql)$(.bind($bind))*.$how(pool).await)
    };
}
