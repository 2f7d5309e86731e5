//! `registerExternalModel`, `setModelPrice`, `chat` (answered whole).

use super::start::*;
use super::types::*;
use crate::graphql::common::errors::{Code, chat_error, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use crate::graphql::registry::Model;
use async_graphql::{Context, ID, Object};
use ftl_commands::store::ExpectedVersion;
use ftl_domain::project::Scope;
use ftl_domain::registry::{Capabilities, ExternalModelRegistered, ModelPriceSet};
use ftl_domain::{DomainEvent, ModelId};
use ftl_projections::views::training as view;
use uuid::Uuid;

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Registers a model served by another API. The base URL must be public
    /// (or in a network the operator allowed); the API key is sealed with
    /// the server's key and never returned.
    async fn register_external_model(
        &self,
        ctx: &Context<'_>,
        input: ExternalModelInput,
    ) -> async_graphql::Result<Model> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = ModelId(Uuid::new_v4());
        // The key is sealed first: a server without `[secrets]
        // encryption_key` refuses before anything reaches the network (DNS).
        let api_key_sealed = match input.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => {
                if k.len() > 4096 {
                    return Err(gql_error(Code::LimitExceeded, "apiKey: at most 4096 bytes"));
                }
                let context = ExternalModelRegistered::secret_context(c.project_id, id);
                Some(st.effects.sealer.seal(k, &context).map_err(|e| {
                    gql_error_code("NOT_CONFIGURED", format!("cannot store an API key: {e}"))
                })?)
            }
            _ => None,
        };
        let url = st
            .effects
            .egress
            .check_url(&input.base_url)
            .map_err(|e| gql_error_code(e.code(), e.to_string()))?;
        st.effects
            .egress
            .check_resolved(&url)
            .await
            .map_err(|e| gql_error_code(e.code(), e.to_string()))?;
        let (capabilities, capabilities_source) = match input.capabilities {
            Some(cap) => (
                Capabilities {
                    streaming: cap.streaming,
                    tools: cap.tools,
                    vision: cap.vision,
                    json_mode: cap.json_mode,
                },
                "declared",
            ),
            None => (provider_defaults(&input.provider), "default"),
        };
        let event = ExternalModelRegistered {
            model_id: id,
            project_id: c.project_id,
            name: input.name.trim().to_string(),
            provider: input.provider,
            base_url: url.as_str().trim_end_matches('/').to_string(),
            remote_model: input.remote_model.trim().to_string(),
            api_key_sealed,
            capabilities,
            capabilities_source: capabilities_source.into(),
        };
        event
            .validate()
            .map_err(|m| gql_error(Code::InvalidInput, m))?;
        let price = match (input.input_usd_per_mtok, input.output_usd_per_mtok) {
            (None, None) => None,
            (i, o) => {
                let p = ModelPriceSet {
                    model_id: id,
                    project_id: c.project_id,
                    input_usd_per_mtok: i.unwrap_or(0.0),
                    output_usd_per_mtok: o.unwrap_or(0.0),
                };
                p.validate().map_err(|m| gql_error(Code::InvalidInput, m))?;
                Some(p)
            }
        };
        append_model_event(
            st,
            c.project_id,
            id,
            DomainEvent::ExternalModelRegistered(event),
            ExpectedVersion::NoStream,
            id.0,
        )
        .await
        .map_err(internal)?;
        if let Some(p) = price {
            append_model_event(
                st,
                c.project_id,
                id,
                DomainEvent::ModelPriceSet(p),
                ExpectedVersion::Any,
                Uuid::new_v4(),
            )
            .await
            .map_err(internal)?;
        }
        read_model(st, c.project_id.0, id.0).await
    }

    /// Sets a model's price (USD per million input/output tokens) for the
    /// exchanges from now on; earlier predictions keep the cost they had.
    async fn set_model_price(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        #[graphql(name = "inputUsdPerMTok")] input_usd_per_mtok: f64,
        #[graphql(name = "outputUsdPerMTok")] output_usd_per_mtok: f64,
    ) -> async_graphql::Result<Model> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = parse_id(&model_id, "modelId")?;
        view::model(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "model not found"))?;
        let p = ModelPriceSet {
            model_id: ModelId(id),
            project_id: c.project_id,
            input_usd_per_mtok,
            output_usd_per_mtok,
        };
        p.validate().map_err(|m| gql_error(Code::InvalidInput, m))?;
        append_model_event(
            st,
            c.project_id,
            ModelId(id),
            DomainEvent::ModelPriceSet(p),
            ExpectedVersion::StreamExists,
            Uuid::new_v4(),
        )
        .await
        .map_err(internal)?;
        read_model(st, c.project_id.0, id).await
    }

    /// Chat with any model of the project, answered whole (the
    /// subscription of the same name streams it); recorded as a prediction.
    async fn chat(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        messages: Vec<ChatMessageInput>,
        params: Option<ChatParams>,
    ) -> async_graphql::Result<ChatResult> {
        // The receiver lives until the end: a whole answer is not cancelled.
        let (_pieces, done) = start_chat(ctx, &model_id, messages, params).await?;
        let (reply, recorded) = done.await.map_err(internal)?.map_err(chat_error)?;
        Ok(result_of(reply, recorded))
    }
}
