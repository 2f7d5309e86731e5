//! Leadership: one process at a time runs a given loop (a projection's
//! generation, the reconciler). On PostgreSQL the leader holds a session
//! advisory lock on a dedicated connection, so a leader that dies — crash,
//! `kill -9`, a lost network — releases it with its session and another
//! process takes over at its next try. SQLite is one process's database:
//! the process that opened it always leads.

use crate::Db;
use sqlx::Connection;

/// The advisory-lock key of a role (FNV-1a of `ftl-<kind>:<name>:<n>`):
/// stable across builds and processes, unlike std's hasher.
pub fn lock_key(kind: &str, name: &str, n: i64) -> i64 {
    fnv1a(format!("ftl-{kind}:{name}:{n}").as_bytes()) as i64
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Held leadership. Dropping it (or [`Leadership::release`]) gives it up.
pub enum Leadership {
    /// SQLite: this process is the only one.
    Sole,
    /// PostgreSQL: the session that holds the lock.
    Locked(sqlx::PgConnection),
}

impl Leadership {
    /// Takes the role named by `key` if nobody holds it; `None` when
    /// another session does.
    pub async fn try_acquire(db: &Db, key: i64) -> Result<Option<Self>, sqlx::Error> {
        let Db::Postgres(pool) = db else {
            return Ok(Some(Self::Sole));
        };
        let mut conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(Self::Locked(conn)))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Waits until the role named by `key` is free and takes it (one
    /// process at a time through a critical section, e.g. start-up DDL).
    pub async fn acquire(db: &Db, key: i64) -> Result<Self, sqlx::Error> {
        let Db::Postgres(pool) = db else {
            return Ok(Self::Sole);
        };
        let mut conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut conn)
            .await?;
        Ok(Self::Locked(conn))
    }

    /// Whether the lock is still ours: false once its session is gone (the
    /// server restarted, the connection was cut), when another process may
    /// already lead.
    pub async fn still_held(&mut self) -> bool {
        match self {
            Self::Sole => true,
            Self::Locked(conn) => conn.ping().await.is_ok(),
        }
    }

    /// Gives the role up now (closing the session releases the lock).
    pub async fn release(self) {
        if let Self::Locked(conn) = self {
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fnv1a_and_distinct() {
        // Reference values of FNV-1a 64 (the published test vectors).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        // The projections' keys keep the text they always had, so old and
        // new processes agree during a rolling upgrade.
        assert_eq!(
            lock_key("projection", "jobs", 1),
            fnv1a(b"ftl-projection:jobs:1") as i64
        );
        assert_ne!(
            lock_key("projection", "jobs", 1),
            lock_key("projection", "jobs", 2)
        );
        assert_ne!(
            lock_key("projection", "reconciler", 0),
            lock_key("role", "reconciler", 0)
        );
    }
}
