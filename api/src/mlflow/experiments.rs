//! `experiments/*`: the experiments of the caller's project.

use super::search::{Entity, Op, compare_num, compare_str, parse_filter, parse_order_by};
use super::wire::{self, KeyValueMsg, MlflowError};
use super::{
    MAX_BODY, caller, command_error, db_error, decode_page_token, encode_page_token, max_results,
    message, ok_empty, settle,
};
use crate::auth::Caller;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_commands::handler::handle;
use ftl_domain::experiment::{
    ExperimentCommand, ExperimentDecider, ExperimentEvent, InProject, KeyValue, experiments_stream,
};
use ftl_domain::project::Scope;
use ftl_projections::views::tracking::{self, ExperimentRow, Lifecycle, experiment_number};
use serde::Deserialize;
use serde_json::{Value, json};
use std::cmp::Ordering;
use uuid::Uuid;

pub fn experiment_json(e: &ExperimentRow) -> Value {
    json!({
        "experiment_id": e.experiment_id.to_string(),
        "name": e.name,
        "artifact_location": format!("mlflow-artifacts:/{}", e.experiment_id),
        "lifecycle_stage": e.lifecycle,
        "last_update_time": e.updated_ms,
        "creation_time": e.created_ms,
        "tags": e.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    })
}

fn no_such_id(id: &str) -> String {
    format!("No Experiment with id={id} exists")
}

/// An experiment id as sent (`"1"`, or `1` from old clients), validated.
fn experiment_id(id: Option<String>) -> Result<String, MlflowError> {
    let id = id.filter(|s| !s.is_empty()).ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_id'.")
    })?;
    wire::validate_id(&id, "experiment_id", 64)?;
    Ok(id)
}

/// The experiment, if it exists in the caller's project.
pub async fn find(state: &AppState, c: &Caller, id: &str) -> Result<ExperimentRow, MlflowError> {
    let missing = || MlflowError::new(wire::ErrorCode::ResourceDoesNotExist, no_such_id(id));
    let n = experiment_number(id).ok_or_else(missing)?;
    tracking::experiment(&state.effects.db, c.project_id.0, Some(n), None)
        .await
        .map_err(db_error)?
        .ok_or_else(missing)
}

async fn run_command(
    state: &AppState,
    c: &Caller,
    command: ExperimentCommand,
    not_found: impl FnOnce() -> String,
) -> Result<Vec<ExperimentEvent>, MlflowError> {
    let name = match &command {
        ExperimentCommand::Create { name, .. } | ExperimentCommand::Rename { name, .. } => {
            Some(name.clone())
        }
        _ => None,
    };
    let handled = handle::<ExperimentDecider>(
        state.effects.store.as_ref(),
        &experiments_stream(c.project_id),
        &InProject {
            project_id: c.project_id,
            command,
        },
        Uuid::new_v4(),
        &c.metadata(),
        |_| Ok(()),
    )
    .await
    .map_err(|e| match (&e, name) {
        (
            ftl_commands::CommandError::Domain(ftl_domain::DomainError::AlreadyExists { .. }),
            Some(n),
        ) => MlflowError::new(
            wire::ErrorCode::ResourceAlreadyExists,
            format!("Experiment(name={n}) already exists."),
        ),
        _ => command_error(e, not_found),
    })?;
    if let Some(a) = handled.append
        && !state
            .effects
            .projections
            .wait_for(a.last_position, state.ryw_timeout())
            .await
    {
        tracing::warn!("read models did not catch up in time");
    }
    Ok(handled.events)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GetByName {
    experiment_name: Option<String>,
}

pub async fn get_by_name(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: GetByName = message(&req, payload, MAX_BODY, &[]).await?;
    let name = m.experiment_name.ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_name'.")
    })?;
    settle(&state).await?;
    let e = tracking::experiment(&state.effects.db, c.project_id.0, None, Some(&name))
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            MlflowError::new(
                wire::ErrorCode::ResourceDoesNotExist,
                format!("Could not find experiment with name '{name}'"),
            )
        })?;
    Ok(HttpResponse::Ok().json(json!({ "experiment": experiment_json(&e) })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Create {
    name: Option<String>,
    tags: Vec<KeyValueMsg>,
}

fn tags(msgs: Vec<KeyValueMsg>) -> Result<Vec<KeyValue>, MlflowError> {
    msgs.into_iter()
        .map(|t| {
            let key = t.key.unwrap_or_default();
            wire::validate_key("tag", &key)?;
            Ok(KeyValue::new(key, t.value.unwrap_or_default()))
        })
        .collect()
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let m: Create = message(&req, payload, MAX_BODY, &[]).await?;
    let name = m
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'name'."))?;
    let events = run_command(
        &state,
        &c,
        ExperimentCommand::Create {
            name,
            tags: tags(m.tags)?,
        },
        String::new,
    )
    .await?;
    let id = events.iter().find_map(|e| match e {
        ExperimentEvent::Created(c) => Some(c.experiment_id.clone()),
        _ => None,
    });
    Ok(HttpResponse::Ok().json(json!({ "experiment_id": id })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ById {
    #[serde(deserialize_with = "wire::id_string")]
    experiment_id: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: ById = message(&req, payload, MAX_BODY, &[]).await?;
    let id = experiment_id(m.experiment_id)?;
    settle(&state).await?;
    let e = find(&state, &c, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "experiment": experiment_json(&e) })))
}

async fn by_id(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    command: impl FnOnce(String, ById) -> Result<ExperimentCommand, MlflowError>,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let mut m: ById = message(&req, payload, MAX_BODY, &[]).await?;
    let id = experiment_id(m.experiment_id.take())?;
    let cmd = command(id.clone(), m)?;
    run_command(&state, &c, cmd, || no_such_id(&id)).await?;
    Ok(ok_empty())
}

pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    by_id(state, req, payload, |id, m| {
        let name = m.new_name.ok_or_else(|| {
            MlflowError::invalid("Missing value for required parameter 'new_name'.")
        })?;
        Ok(ExperimentCommand::Rename { id, name })
    })
    .await
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    by_id(state, req, payload, |id, _| {
        Ok(ExperimentCommand::Delete { id })
    })
    .await
}

pub async fn restore(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    by_id(state, req, payload, |id, _| {
        Ok(ExperimentCommand::Restore { id })
    })
    .await
}

pub async fn set_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    by_id(state, req, payload, |id, m| {
        let key = m.key.unwrap_or_default();
        wire::validate_key("tag", &key)?;
        Ok(ExperimentCommand::SetTag {
            id,
            tag: KeyValue::new(key, m.value.unwrap_or_default()),
        })
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Search {
    #[serde(deserialize_with = "wire::int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    order_by: Vec<String>,
    view_type: Option<String>,
}

/// The lifecycle stages a `view_type` (or `run_view_type`) admits.
pub fn view_lifecycle(view: Option<&str>) -> Result<Lifecycle, MlflowError> {
    match view.unwrap_or("ACTIVE_ONLY") {
        "ACTIVE_ONLY" | "" => Ok(Lifecycle::Active),
        "DELETED_ONLY" => Ok(Lifecycle::Deleted),
        "ALL" => Ok(Lifecycle::All),
        other => Err(MlflowError::invalid(format!(
            "Invalid view type '{other}': use ACTIVE_ONLY, DELETED_ONLY or ALL"
        ))),
    }
}

pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let m: Search = message(&req, payload, MAX_BODY, &["order_by"]).await?;
    let limit = max_results(m.max_results, 1000, 50_000)?;
    let view = view_lifecycle(m.view_type.as_deref())?;
    let offset = decode_page_token(m.page_token.as_deref())?;
    let clauses = parse_filter(m.filter.as_deref().unwrap_or("")).map_err(|e| {
        MlflowError::invalid(format!(
            "Invalid filter '{}': {e}",
            m.filter.clone().unwrap_or_default()
        ))
    })?;
    for cl in &clauses {
        let ok = match cl.entity {
            Entity::Tag => true,
            Entity::Attribute => matches!(
                cl.key.as_str(),
                "name" | "creation_time" | "last_update_time"
            ),
            _ => false,
        };
        if !ok {
            return Err(MlflowError::invalid(format!(
                "Invalid attribute key '{}' in an experiment filter",
                cl.key
            )));
        }
    }
    let orders = m
        .order_by
        .iter()
        .map(|o| {
            let o = parse_order_by(o).map_err(MlflowError::invalid)?;
            match (o.entity, o.key.as_str()) {
                (
                    Entity::Attribute,
                    "name" | "experiment_id" | "creation_time" | "last_update_time",
                ) => Ok(o),
                _ => Err(MlflowError::invalid(format!(
                    "Invalid order_by key '{}'",
                    o.key
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    settle(&state).await?;
    let mut list = Vec::new();
    for e in tracking::experiments(&state.effects.db, c.project_id.0)
        .await
        .map_err(db_error)?
    {
        if !view.admits(e.lifecycle == "deleted") {
            continue;
        }
        let keep = clauses.iter().all(|cl| {
            use super::search::Lit;
            match (&cl.entity, cl.key.as_str(), &cl.value) {
                (Entity::Tag, k, Lit::Str(v)) => e
                    .tags
                    .iter()
                    .find(|(tk, _)| tk == k)
                    .is_some_and(|(_, tv)| compare_str(cl.op, tv, v)),
                (_, "name", Lit::Str(v)) => compare_str(cl.op, &e.name, v),
                (_, "creation_time", Lit::Num(n)) => compare_num(cl.op, e.created_ms as f64, *n),
                (_, "last_update_time", Lit::Num(n)) => compare_num(cl.op, e.updated_ms as f64, *n),
                _ => cl.op == Op::Ne,
            }
        });
        if keep {
            list.push(e);
        }
    }
    // Default: newest first, then by id (MLflow's order).
    list.sort_by(|a, b| {
        for o in &orders {
            let ord = match o.key.as_str() {
                "name" => a.name.cmp(&b.name),
                "experiment_id" => a.experiment_id.cmp(&b.experiment_id),
                "creation_time" => a.created_ms.cmp(&b.created_ms),
                _ => a.updated_ms.cmp(&b.updated_ms),
            };
            let ord = if o.ascending { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        b.created_ms
            .cmp(&a.created_ms)
            .then(a.experiment_id.cmp(&b.experiment_id))
    });
    let page: Vec<Value> = list
        .iter()
        .skip(offset)
        .take(limit)
        .map(experiment_json)
        .collect();
    let mut out = json!({ "experiments": page });
    if offset + limit < list.len() {
        out["next_page_token"] = json!(encode_page_token(offset + limit));
    }
    Ok(HttpResponse::Ok().json(out))
}
