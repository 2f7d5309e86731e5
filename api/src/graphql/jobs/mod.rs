//! Jobs as every kind of run shares them — create, start, finish, fail,
//! cancel, metrics logged and read back (downsampled, or as of a past
//! position), the audit trail, live status and metrics — and the caller's
//! key, the read models' state and training-config validation.

pub mod mutation;
pub mod ops;
pub mod query;
pub mod subscription;
pub mod types;

pub use types::*;
