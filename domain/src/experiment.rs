//! Experiments: named groups of jobs within a project (MLflow's experiments,
//! `specs/mlflow-api.md` §1).
//!
//! All experiments of a project live in one stream, `experiments-<project>`,
//! so the decider sees every name (names are unique per project without a
//! cross-stream index) and allocates ids in order: `"1"`, `"2"`, … The
//! experiment `"0"` (`Default`) exists in every project without an event.

use crate::decider::Decider;
use crate::error::DomainError;
use crate::ids::ProjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The experiment every project has, where runs land when none is named.
pub const DEFAULT_EXPERIMENT_ID: &str = "0";
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";
/// Experiment names: 1 to 500 characters (MLflow's limit).
pub const MAX_EXPERIMENT_NAME_CHARS: usize = 500;
/// Tags per experiment and the length of a tag value (MLflow's limit).
pub const MAX_EXPERIMENT_TAGS: usize = 1000;
pub const MAX_EXPERIMENT_TAG_VALUE_CHARS: usize = 20_000;
/// Param and tag keys (MLflow's limit).
pub const MAX_TAG_KEY_CHARS: usize = 250;

/// A key/value pair: run params and tags, experiment tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

pub fn experiments_stream(project: ProjectId) -> String {
    format!("experiments-{}", project.0)
}

/// `experiment.created` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentCreated {
    pub project_id: ProjectId,
    pub experiment_id: String,
    pub name: String,
    pub tags: Vec<KeyValue>,
}

/// `experiment.renamed` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRenamed {
    pub project_id: ProjectId,
    pub experiment_id: String,
    pub name: String,
}

/// `experiment.deleted` v1 and `experiment.restored` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRef {
    pub project_id: ProjectId,
    pub experiment_id: String,
}

/// `experiment.tag_set` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentTagSet {
    pub project_id: ProjectId,
    pub experiment_id: String,
    pub tag: KeyValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExperimentEvent {
    Created(ExperimentCreated),
    Renamed(ExperimentRenamed),
    Deleted(ExperimentRef),
    Restored(ExperimentRef),
    TagSet(ExperimentTagSet),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExperimentCommand {
    Create { name: String, tags: Vec<KeyValue> },
    Rename { id: String, name: String },
    Delete { id: String },
    Restore { id: String },
    SetTag { id: String, tag: KeyValue },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub deleted: bool,
    pub tags: usize,
}

/// Every experiment of one project, by numeric id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExperimentsState {
    pub project_id: Option<ProjectId>,
    pub experiments: BTreeMap<u64, Experiment>,
}

impl ExperimentsState {
    fn by_name(&self, name: &str) -> Option<u64> {
        if name == DEFAULT_EXPERIMENT_NAME {
            return Some(0);
        }
        self.experiments
            .iter()
            .find(|(_, e)| e.name == name)
            .map(|(id, _)| *id)
    }

    fn next_id(&self) -> u64 {
        self.experiments.keys().next_back().map_or(1, |k| k + 1)
    }

    fn get(&self, id: &str) -> Result<(u64, Option<&Experiment>), DomainError> {
        let n: u64 = id.parse().map_err(|_| DomainError::NotFound {
            entity: "experiment",
        })?;
        if n == 0 {
            return Ok((0, None));
        }
        match self.experiments.get(&n) {
            Some(e) => Ok((n, Some(e))),
            None => Err(DomainError::NotFound {
                entity: "experiment",
            }),
        }
    }
}

pub fn validate_experiment_name(name: &str) -> Result<(), DomainError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_EXPERIMENT_NAME_CHARS {
        return Err(DomainError::invalid(
            "name",
            format!(
                "experiment names must be 1 to {MAX_EXPERIMENT_NAME_CHARS} characters, got {n}"
            ),
        ));
    }
    Ok(())
}

/// Keys of 1 to 250 characters and values of at most `max_value_chars`
/// (params, run tags and experiment tags differ only in that bound).
pub fn validate_key_values(
    what: &str,
    items: &[KeyValue],
    max_value_chars: usize,
) -> Result<(), DomainError> {
    for kv in items {
        let k = kv.key.chars().count();
        if k == 0 || k > MAX_TAG_KEY_CHARS {
            return Err(DomainError::invalid(
                format!("{what}.key"),
                format!("keys must be 1 to {MAX_TAG_KEY_CHARS} characters"),
            ));
        }
        let n = kv.value.chars().count();
        if n > max_value_chars {
            return Err(DomainError::limit(
                format!("{what}.{}", kv.key),
                format!("values are at most {max_value_chars} characters, got {n}"),
            ));
        }
    }
    Ok(())
}

/// Decides for one project's experiments (one stream per project).
pub struct ExperimentDecider;

/// A command with the project whose stream it targets (the events name it).
#[derive(Debug, Clone, PartialEq)]
pub struct InProject {
    pub project_id: ProjectId,
    pub command: ExperimentCommand,
}

impl Decider for ExperimentDecider {
    type State = ExperimentsState;
    type Command = InProject;
    type Event = ExperimentEvent;

    fn decide(
        state: &ExperimentsState,
        cmd: &InProject,
        _now: DateTime<Utc>,
    ) -> Result<Vec<ExperimentEvent>, DomainError> {
        let project_id = cmd.project_id;
        let at = |id: u64| ExperimentRef {
            project_id,
            experiment_id: id.to_string(),
        };
        match &cmd.command {
            ExperimentCommand::Create { name, tags } => {
                validate_experiment_name(name)?;
                if tags.len() > MAX_EXPERIMENT_TAGS {
                    return Err(DomainError::limit(
                        "tags",
                        format!("at most {MAX_EXPERIMENT_TAGS} tags"),
                    ));
                }
                validate_key_values("tags", tags, MAX_EXPERIMENT_TAG_VALUE_CHARS)?;
                if state.by_name(name).is_some() {
                    return Err(DomainError::AlreadyExists {
                        entity: "experiment",
                    });
                }
                Ok(vec![ExperimentEvent::Created(ExperimentCreated {
                    project_id,
                    experiment_id: state.next_id().to_string(),
                    name: name.clone(),
                    tags: tags.clone(),
                })])
            }
            ExperimentCommand::Rename { id, name } => {
                validate_experiment_name(name)?;
                let (n, e) = state.get(id)?;
                let current = e.map_or(DEFAULT_EXPERIMENT_NAME, |e| e.name.as_str());
                if current == name {
                    return Ok(vec![]);
                }
                if state.by_name(name).is_some() {
                    return Err(DomainError::AlreadyExists {
                        entity: "experiment",
                    });
                }
                if n == 0 {
                    return Err(DomainError::invalid(
                        "experiment_id",
                        "the Default experiment cannot be renamed",
                    ));
                }
                Ok(vec![ExperimentEvent::Renamed(ExperimentRenamed {
                    project_id,
                    experiment_id: n.to_string(),
                    name: name.clone(),
                })])
            }
            ExperimentCommand::Delete { id } => match state.get(id)? {
                (0, _) => Err(DomainError::invalid(
                    "experiment_id",
                    "Cannot delete the default experiment '0'. This is a reserved experiment for default runs.",
                )),
                (_, Some(e)) if e.deleted => Ok(vec![]),
                (n, _) => Ok(vec![ExperimentEvent::Deleted(at(n))]),
            },
            ExperimentCommand::Restore { id } => match state.get(id)? {
                (n, Some(e)) if e.deleted => Ok(vec![ExperimentEvent::Restored(at(n))]),
                _ => Ok(vec![]),
            },
            ExperimentCommand::SetTag { id, tag } => {
                validate_key_values(
                    "tags",
                    std::slice::from_ref(tag),
                    MAX_EXPERIMENT_TAG_VALUE_CHARS,
                )?;
                let (n, e) = state.get(id)?;
                if e.is_some_and(|e| e.deleted) {
                    return Err(DomainError::invalid(
                        "experiment_id",
                        format!(
                            "The experiment {n} must be in the 'active' state. Current state is deleted."
                        ),
                    ));
                }
                Ok(vec![ExperimentEvent::TagSet(ExperimentTagSet {
                    project_id,
                    experiment_id: n.to_string(),
                    tag: tag.clone(),
                })])
            }
        }
    }

    fn evolve(mut state: ExperimentsState, event: &ExperimentEvent) -> ExperimentsState {
        let id = |s: &str| s.parse::<u64>().unwrap_or(0);
        match event {
            ExperimentEvent::Created(e) => {
                state.project_id = Some(e.project_id);
                state.experiments.insert(
                    id(&e.experiment_id),
                    Experiment {
                        name: e.name.clone(),
                        deleted: false,
                        tags: e.tags.len(),
                    },
                );
            }
            ExperimentEvent::Renamed(e) => {
                if let Some(x) = state.experiments.get_mut(&id(&e.experiment_id)) {
                    x.name = e.name.clone();
                }
            }
            ExperimentEvent::Deleted(e) | ExperimentEvent::Restored(e) => {
                let deleted = matches!(event, ExperimentEvent::Deleted(_));
                if let Some(x) = state.experiments.get_mut(&id(&e.experiment_id)) {
                    x.deleted = deleted;
                }
            }
            ExperimentEvent::TagSet(e) => {
                if let Some(x) = state.experiments.get_mut(&id(&e.experiment_id)) {
                    x.tags += 1;
                }
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::testing::given;

    const P: ProjectId = ProjectId(uuid::Uuid::from_u128(7));

    fn cmd(command: ExperimentCommand) -> InProject {
        InProject {
            project_id: P,
            command,
        }
    }
    fn create(name: &str) -> InProject {
        cmd(ExperimentCommand::Create {
            name: name.into(),
            tags: vec![],
        })
    }
    fn created(id: &str, name: &str) -> ExperimentEvent {
        ExperimentEvent::Created(ExperimentCreated {
            project_id: P,
            experiment_id: id.into(),
            name: name.into(),
            tags: vec![],
        })
    }

    #[test]
    fn ids_are_allocated_in_order_and_names_are_unique() {
        given::<ExperimentDecider>(&[])
            .when(create("sft"))
            .then(vec![created("1", "sft")]);
        given::<ExperimentDecider>(&[created("1", "sft")])
            .when(create("dpo"))
            .then(vec![created("2", "dpo")]);
        given::<ExperimentDecider>(&[created("1", "sft")])
            .when(create("sft"))
            .then_error(DomainError::AlreadyExists {
                entity: "experiment",
            });
        given::<ExperimentDecider>(&[])
            .when(create(DEFAULT_EXPERIMENT_NAME))
            .then_error(DomainError::AlreadyExists {
                entity: "experiment",
            });
    }

    #[test]
    fn names_are_limited_in_characters() {
        given::<ExperimentDecider>(&[])
            .when(create(""))
            .then_error_matches(|e| matches!(e, DomainError::InvalidInput { .. }));
        // 500 multi-byte characters are fine, 501 are not.
        given::<ExperimentDecider>(&[])
            .when(create(&"é".repeat(500)))
            .then(vec![created("1", &"é".repeat(500))]);
        given::<ExperimentDecider>(&[])
            .when(create(&"x".repeat(501)))
            .then_error_matches(|e| matches!(e, DomainError::InvalidInput { .. }));
    }

    #[test]
    fn default_cannot_be_deleted_and_deleted_rejects_tags() {
        given::<ExperimentDecider>(&[])
            .when(cmd(ExperimentCommand::Delete { id: "0".into() }))
            .then_error_matches(|e| matches!(e, DomainError::InvalidInput { .. }));
        let deleted = ExperimentEvent::Deleted(ExperimentRef {
            project_id: P,
            experiment_id: "1".into(),
        });
        given::<ExperimentDecider>(&[created("1", "sft")])
            .when(cmd(ExperimentCommand::Delete { id: "1".into() }))
            .then(vec![deleted.clone()]);
        given::<ExperimentDecider>(&[created("1", "sft"), deleted.clone()])
            .when(cmd(ExperimentCommand::SetTag {
                id: "1".into(),
                tag: KeyValue::new("k", "v"),
            }))
            .then_error_matches(|e| matches!(e, DomainError::InvalidInput { .. }));
        given::<ExperimentDecider>(&[created("1", "sft"), deleted])
            .when(cmd(ExperimentCommand::Restore { id: "1".into() }))
            .then(vec![ExperimentEvent::Restored(ExperimentRef {
                project_id: P,
                experiment_id: "1".into(),
            })]);
        given::<ExperimentDecider>(&[])
            .when(cmd(ExperimentCommand::Delete { id: "9".into() }))
            .then_error(DomainError::NotFound {
                entity: "experiment",
            });
    }

    #[test]
    fn rename_keeps_names_unique() {
        given::<ExperimentDecider>(&[created("1", "a"), created("2", "b")])
            .when(cmd(ExperimentCommand::Rename {
                id: "2".into(),
                name: "a".into(),
            }))
            .then_error(DomainError::AlreadyExists {
                entity: "experiment",
            });
        given::<ExperimentDecider>(&[created("1", "a")])
            .when(cmd(ExperimentCommand::Rename {
                id: "1".into(),
                name: "c".into(),
            }))
            .then(vec![ExperimentEvent::Renamed(ExperimentRenamed {
                project_id: P,
                experiment_id: "1".into(),
                name: "c".into(),
            })]);
    }
}
