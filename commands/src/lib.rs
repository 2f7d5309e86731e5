//! FineTune Lab write side: the event store (SQLite, PostgreSQL, KurrentDB) and
//! the command handlers that load a stream, decide, and append.

/// `on_writer!(db, |pool| body)`: `body` on the pool that writes (SQLite's
/// writer, PostgreSQL's pool), for the small tables beside the log (leases,
/// the outbox).
macro_rules! on_writer {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite { write: $pool, .. } => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

pub mod caller;
pub mod db;
pub mod digest;
pub mod handler;
pub mod leader;
pub mod leases;
pub mod outbox;
pub mod store;

pub use caller::Caller;
pub use db::{Db, SqliteSync};
pub use handler::{CommandError, Handled};
pub use store::{
    AppendResult, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError,
};
