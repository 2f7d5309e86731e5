//! Strongly typed identifiers. Each wraps a UUID and knows the stream it names.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A project: the unit of isolation. Every key, job and event belongs to one.
    ProjectId
);
id_type!(
    /// A training job (managed or reported from outside).
    JobId
);
id_type!(
    /// An API key (its secret is never stored, only a hash).
    ApiKeyId
);

id_type!(
    /// A dataset file registered in a project.
    DatasetId
);
id_type!(
    /// A model: a checkpoint that can generate, with its lineage.
    ModelId
);

id_type!(
    /// One recorded exchange with a model.
    PredictionId
);
id_type!(
    /// A test suite: versioned cases that evaluation runs score.
    SuiteId
);

impl SuiteId {
    pub fn stream(&self) -> String {
        format!("suite-{}", self.0)
    }
}

impl PredictionId {
    pub fn stream(&self) -> String {
        format!("prediction-{}", self.0)
    }
}

impl DatasetId {
    pub fn stream(&self) -> String {
        format!("dataset-{}", self.0)
    }
}

impl ModelId {
    pub fn stream(&self) -> String {
        format!("model-{}", self.0)
    }
}

impl JobId {
    /// The log stream of this job: appended without a version check.
    pub fn logs_stream(&self) -> String {
        format!("job-{}-logs", self.0)
    }
    /// The lifecycle stream of this job: short, version-checked.
    pub fn stream(&self) -> String {
        format!("job-{}", self.0)
    }
    /// The high-volume metric stream of this job: appended without a version check.
    pub fn metrics_stream(&self) -> String {
        format!("job-{}-metrics", self.0)
    }
}

impl ProjectId {
    pub fn stream(&self) -> String {
        format!("project-{}", self.0)
    }
}

impl ApiKeyId {
    pub fn stream(&self) -> String {
        format!("apikey-{}", self.0)
    }
}

/// Namespace for deriving event ids from command ids (uuid v5), so a retried
/// command produces the same event ids and the store appends nothing new.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2b7a_9c3d_4e58_a1b2_c3d4_e5f6_0718);

/// The id of the `index`-th event produced by the command `command_id`.
///
/// A UUIDv8: ten bytes from a SHA-1 (uuid v5) of the command id, then the
/// index in the low 48 bits. The events of one append therefore share a
/// prefix and sit next to each other in the store's unique event-id index,
/// so a 1,000-event batch touches a handful of index pages rather than a
/// thousand random ones.
pub fn derive_event_id(command_id: Uuid, index: usize) -> Uuid {
    let hashed = Uuid::new_v5(&EVENT_ID_NAMESPACE, command_id.as_bytes());
    let mut bytes = *hashed.as_bytes();
    let index = (index as u64) & 0xFFFF_FFFF_FFFF;
    bytes[10..].copy_from_slice(&index.to_be_bytes()[2..]);
    Uuid::new_v8(bytes)
}

/// The id of an entity a command creates (a job, say): a plain uuid v5 of the
/// command id and the entity kind, so a retried command finds the same one.
pub fn derive_entity_id(command_id: Uuid, kind: &str) -> Uuid {
    let mut name = command_id.as_bytes().to_vec();
    name.extend_from_slice(kind.as_bytes());
    Uuid::new_v5(&EVENT_ID_NAMESPACE, &name)
}

/// A command id derived from a client idempotency key, scoped to what it acts on,
/// so the same key used for two different jobs never collides.
pub fn command_id_from_key(scope: &str, key: &str) -> Uuid {
    Uuid::new_v5(&EVENT_ID_NAMESPACE, format!("{scope}\u{0}{key}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_event_ids_are_stable_and_distinct() {
        let c = Uuid::from_u128(42);
        assert_eq!(derive_event_id(c, 0), derive_event_id(c, 0));
        assert_ne!(derive_event_id(c, 0), derive_event_id(c, 1));
        assert_ne!(
            derive_event_id(c, 0),
            derive_event_id(Uuid::from_u128(43), 0)
        );
        assert_eq!(derive_event_id(c, 0).get_version_num(), 8);
        // One command's events share their first ten bytes and sort by index.
        assert_eq!(
            derive_event_id(c, 7).as_bytes()[..10],
            derive_event_id(c, 900).as_bytes()[..10]
        );
        assert!(derive_event_id(c, 7) < derive_event_id(c, 900));
    }

    #[test]
    fn entity_ids_are_stable_random_looking_and_kind_scoped() {
        let c = Uuid::from_u128(42);
        assert_eq!(derive_entity_id(c, "job"), derive_entity_id(c, "job"));
        assert_ne!(derive_entity_id(c, "job"), derive_entity_id(c, "run"));
        assert_eq!(derive_entity_id(c, "job").get_version_num(), 5);
        assert_ne!(
            derive_entity_id(c, "job").as_bytes()[..10],
            derive_event_id(c, 0).as_bytes()[..10]
        );
    }

    #[test]
    fn idempotency_keys_are_scoped() {
        assert_ne!(
            command_id_from_key("job-a", "k"),
            command_id_from_key("job-b", "k")
        );
        assert_eq!(
            command_id_from_key("job-a", "k"),
            command_id_from_key("job-a", "k")
        );
    }
}
