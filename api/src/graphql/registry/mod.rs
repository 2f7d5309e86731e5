//! The project's registry: datasets (uploaded, registered in place, or made
//! from exports) and models (trained here, or external endpoints). The
//! bottom of the GraphQL types: jobs, training, chat and the lab refer to
//! these, never the other way round.

mod mutation;
mod query;
mod types;

pub use mutation::RegistryMutation;
pub use query::RegistryQuery;
pub use types::*;
