//! FineTune Lab write side: the event store (SQLite, PostgreSQL, KurrentDB) and
//! the command handlers that load a stream, decide, and append.

pub mod caller;
pub mod db;
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
