//! Queries of managed training.

use super::*;

#[derive(Default)]
pub struct TrainingQuery;

#[Object]
impl TrainingQuery {
    /// A job's log lines in order (the terminal monitor): at `level` or
    /// above, containing `search`, after the cursor `after`.
    async fn job_logs(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        level: Option<String>,
        search: Option<String>,
        after: Option<String>,
        #[graphql(default = 200)] first: i32,
    ) -> async_graphql::Result<Vec<LogLine>> {
        let id = parse_id(&job_id, "jobId")?;
        let st = state(ctx)?;
        let n = page(first, st.config.limits.page_size_max.max(1000))?;
        if search.as_ref().is_some_and(|s| s.len() > 1024) {
            return Err(limit("search: at most 1024 bytes".into()));
        }
        owned_job(ctx, id, Scope::Read).await?;
        let filter = training::LogFilter {
            min_level: parse_level(level.as_deref())?,
            search,
            after: parse_log_cursor(after.as_deref())?,
        };
        Ok(training::logs(&st.effects.db, id, &filter, n)
            .await
            .map_err(internal)?
            .into_iter()
            .map(LogLine::from)
            .collect())
    }

    /// Errors that failed this project's jobs, grouped by fingerprint, with
    /// counts, first/last seen and the jobs affected.
    async fn errors(
        &self,
        ctx: &Context<'_>,
        filter: Option<ErrorFilter>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<ErrorGroup>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let n = page(first, st.config.limits.page_size_max)?;
        let f = filter.unwrap_or_default();
        let groups = training::errors(
            &st.effects.db,
            c.project_id.0,
            f.fingerprint.as_deref(),
            f.search.as_deref(),
            n as usize,
        )
        .await
        .map_err(internal)?;
        Ok(groups
            .into_iter()
            .map(|g| ErrorGroup {
                frames: serde_json::from_value::<Vec<ftl_domain::job::managed::Frame>>(g.frames)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| Frame {
                        function: f.function,
                        file: f.file,
                        line: f.line.map(i64::from),
                    })
                    .collect(),
                fingerprint: g.fingerprint,
                kind: g.kind,
                message: g.message,
                count: g.count,
                first_seen: g.first_seen,
                last_seen: g.last_seen,
                job_ids: g.job_ids.into_iter().map(|j| ID(j.to_string())).collect(),
            })
            .collect())
    }

    /// Spend of the whole project over time.
    async fn project_spend(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3600)] bucket_seconds: i32,
    ) -> async_graphql::Result<Vec<SpendPoint>> {
        let c = caller(ctx, Scope::Read)?;
        spend(
            &state(ctx)?.effects.db,
            c.project_id.0,
            None,
            bucket_seconds,
        )
        .await
    }

    /// GPUs and prices for the GPU selection screen, cheapest first.
    async fn gpu_catalog(
        &self,
        ctx: &Context<'_>,
        filter: Option<GpuFilter>,
    ) -> async_graphql::Result<Vec<GpuOffer>> {
        caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let f = filter.unwrap_or_default();
        Ok(st
            .effects
            .gpu_catalog
            .filter(
                f.provider.as_deref(),
                f.min_vram_gb.map(|v| v.max(0) as u32),
                f.max_usd_per_hour,
            )
            .into_iter()
            .map(|o| GpuOffer {
                provider: o.provider,
                sku: o.sku,
                name: o.name,
                vram_gb: o.vram_gb as i32,
                usd_per_hour: o.usd_per_hour,
            })
            .collect())
    }

    /// Text from a model trained here. `chat`: the prompt is a user message
    /// and the reply is the assistant's; otherwise plain continuation.
    #[allow(clippy::too_many_arguments)]
    async fn generate(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        prompt: String,
        #[graphql(default = true)] chat: bool,
        #[graphql(default = 128)] max_tokens: i32,
        #[graphql(default = 0.0)] temperature: f64,
        #[graphql(default = 1.0)] top_p: f64,
        #[graphql(default)] stop: Vec<String>,
        #[graphql(default = 0)] seed: i64,
    ) -> async_graphql::Result<Generation> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&model_id, "modelId")?;
        if prompt.len() > MAX_PROMPT_BYTES {
            return Err(limit(format!("prompt: at most {MAX_PROMPT_BYTES} bytes")));
        }
        if !(1..=MAX_GENERATE_TOKENS).contains(&max_tokens) {
            return Err(limit(format!(
                "maxTokens must be between 1 and {MAX_GENERATE_TOKENS}"
            )));
        }
        let params = ftl_trainer::GenerateParams {
            max_tokens: max_tokens as usize,
            temperature,
            top_p,
            stop,
            seed: seed as u64,
        };
        // The chat portal's rules: temperature 0 to 2, topP in (0, 1].
        ftl_effects::models::check_sampling(&params)
            .map_err(crate::graphql::common::errors::refusal)?;
        let prompt = if chat {
            ftl_effects::models::local::Prompt::Chat(vec![(
                ftl_trainer::tokenizer::Role::User,
                prompt,
            )])
        } else {
            ftl_effects::models::local::Prompt::Text(prompt)
        };
        let out =
            ftl_effects::models::local::generate(&st.effects, c.project_id, id, prompt, params)
                .await
                .map_err(
                    |e| match e.downcast_ref::<ftl_effects::models::local::NotLocal>() {
                        Some(n) => gql_error(Code::InvalidInput, format!("{n}: use chat")),
                        None => internal(e),
                    },
                )?
                .ok_or_else(|| gql_error(Code::NotFound, "model not found"))?;
        Ok(Generation {
            text: out.text,
            prompt_tokens: out.prompt_tokens as i32,
            completion_tokens: out.completion_tokens as i32,
            finish_reason: out.finish_reason.as_str().into(),
        })
    }
}
