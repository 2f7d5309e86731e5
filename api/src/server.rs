//! The HTTP server: `/graphql` (POST queries and mutations, GET GraphiQL,
//! WebSocket subscriptions), `/healthz`, `/readyz`, `/metrics`.

use crate::auth::{self, AuthError, Caller};
use crate::config::Config;
use crate::graphql::{ApiSchema, Code, build_schema};
use crate::state::AppState;
use actix_cors::Cors;
use actix_web::dev::Service;
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::Data;
use async_graphql_actix_web::GraphQLSubscription;
use ftl_effects::metrics::{ProjectionLabels, RequestLabels};
use std::net::TcpListener;
use std::time::Instant;
use tokio::sync::watch;

pub struct Server {
    pub state: AppState,
    pub port: u16,
    server: actix_web::dev::Server,
    shutdown: watch::Sender<bool>,
    runners: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until a signal (SIGINT/SIGTERM) or `handle().stop()`: in-flight
    /// requests finish, then projection runners stop at a checkpoint.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.shutdown.send(true);
        for r in self.runners {
            let _ = r.await;
        }
        self.state.close().await;
        tracing::info!("stopped");
        result
    }
}

pub async fn build_server(config: Config) -> anyhow::Result<Server> {
    let listener = TcpListener::bind(&config.server.bind)?;
    let port = listener.local_addr()?.port();
    let state = AppState::build(config).await?;
    let (shutdown, rx) = watch::channel(false);
    let runners = ftl_effects::run::spawn(
        &state.effects,
        ftl_effects::run::LocalWorkers {
            server: format!("http://127.0.0.1:{port}"),
            token: state.worker_secret.as_ref().clone(),
        },
        rx,
    );
    let schema = build_schema(
        Some(state.clone()),
        state.config.limits.query_depth,
        state.config.limits.query_complexity,
        state.config.limits.query(),
    );
    let cfg = state.config.clone();
    let app_state = state.clone();
    let mut http = HttpServer::new(move || {
        let metrics = app_state.effects.metrics.clone();
        App::new()
            .app_data(web::Data::new(app_state.clone()))
            .app_data(web::Data::new(schema.clone()))
            .wrap(crate::fallback::middleware())
            .wrap(cors(&cfg))
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let metrics = metrics.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let route = res
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".into());
                    metrics
                        .request_seconds
                        .get_or_create(&RequestLabels {
                            route,
                            method,
                            status: res.status().as_u16(),
                        })
                        .observe(started.elapsed().as_secs_f64());
                    Ok(res)
                }
            })
            .route("/graphql", web::post().to(graphql_post))
            .route("/graphql", web::get().to(graphql_get))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_route))
            .configure(crate::graphiql::configure)
            .configure(crate::mlflow::configure)
            .configure(crate::training::worker_api::configure)
            .configure(crate::training::http::configure)
            .configure(crate::openai::configure)
            .configure(crate::exports::configure)
            .configure(crate::evaluation::configure)
    })
    .listen(listener)?
    .shutdown_timeout(state.config.server.shutdown_timeout_s);
    if state.config.server.workers > 0 {
        http = http.workers(state.config.server.workers);
    }
    tracing::info!(
        port,
        store = state.effects.store.backend_name(),
        db = state.effects.db.backend_name(),
        "listening"
    );
    Ok(Server {
        state,
        port,
        server: http.run(),
        shutdown,
        runners,
    })
}

fn cors(cfg: &Config) -> Cors {
    let mut c = Cors::default()
        .allowed_methods(vec!["GET", "POST", "OPTIONS"])
        .allowed_headers(vec![
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
        ])
        .max_age(3600);
    for origin in &cfg.server.cors_origins {
        c = c.allowed_origin(origin);
    }
    c
}

fn error_body(status: StatusCode, code: Code, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    }))
}

async fn caller_from(state: &AppState, req: &HttpRequest) -> Result<Caller, HttpResponse> {
    let key = auth::request_key(req.headers(), false);
    match state
        .keys
        .authenticate(&state.effects, key.as_deref())
        .await
    {
        Ok(c) => Ok(c),
        Err(AuthError::Db(e)) => {
            tracing::error!(error = %e, "key lookup failed");
            Err(error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Internal,
                "key lookup failed",
            ))
        }
        Err(e) => Err(error_body(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            &e.to_string(),
        )),
    }
}

async fn graphql_post(
    state: web::Data<AppState>,
    schema: web::Data<ApiSchema>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let caller = match caller_from(&state, &req).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let body = match crate::body::read_limited(payload, state.config.limits.body_bytes).await {
        Ok(b) => b,
        Err(e @ crate::body::BodyError::TooLarge(_)) => {
            return error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::LimitExceeded,
                &e.to_string(),
            );
        }
        Err(e) => return error_body(StatusCode::BAD_REQUEST, Code::InvalidInput, &e.to_string()),
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                Code::InvalidInput,
                &format!("malformed GraphQL request: {e}"),
            );
        }
    };
    let response = schema.execute(request.data(caller)).await;
    HttpResponse::Ok().json(response)
}

async fn graphql_get(
    state: web::Data<AppState>,
    schema: web::Data<ApiSchema>,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Ok(crate::graphiql::page());
    }
    // The key may come on the upgrade request or in connection_init.
    let header_token = auth::request_key(req.headers(), false);
    let st = state.get_ref().clone();
    GraphQLSubscription::new(schema.get_ref().clone())
        .on_connection_init(move |payload: serde_json::Value| async move {
            let from_payload = ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                .and_then(auth::bearer)
                .map(str::to_string);
            let token = from_payload.or(header_token);
            let caller = st
                .keys
                .authenticate(&st.effects, token.as_deref())
                .await
                .map_err(|e| crate::graphql::gql_error(Code::Unauthenticated, e.to_string()))?;
            let mut data = Data::default();
            data.insert(caller);
            Ok(data)
        })
        .start(&req, payload)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = state.effects.db.ping().await {
        return HttpResponse::ServiceUnavailable().json(
            serde_json::json!({ "status": "unavailable", "reason": format!("database: {e}") }),
        );
    }
    match state.effects.projections.status().await {
        Ok(list) => {
            let max = state.config.projections.ready_max_lag;
            let rebuilding = list.iter().any(|s| s.rebuilding.is_some());
            let lagging = list.iter().any(|s| s.lag() > max);
            let status = if rebuilding {
                "rebuilding"
            } else if lagging {
                "catching_up"
            } else {
                "ready"
            };
            let body = serde_json::json!({
                "status": status,
                "projections": list.iter().map(|s| serde_json::json!({
                    "name": s.name,
                    "generation": s.generation,
                    "position": s.position,
                    "head": s.head,
                    "lag": s.lag(),
                    "rebuilding": s.rebuilding.as_ref().map(|r| serde_json::json!({
                        "generation": r.generation,
                        "position": r.position,
                        "started_at": r.started_at,
                    })),
                })).collect::<Vec<_>>(),
            });
            if status == "ready" {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::ServiceUnavailable().json(body)
            }
        }
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unavailable", "reason": e.to_string() })),
    }
}

async fn metrics_route(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(list) = state.effects.projections.status().await {
        for s in list {
            let l = ProjectionLabels {
                projection: s.name.clone(),
            };
            state
                .effects
                .metrics
                .projection_lag
                .get_or_create(&l)
                .set(s.lag() as i64);
            state
                .effects
                .metrics
                .projection_position
                .get_or_create(&l)
                .set(s.position as i64);
        }
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.effects.metrics.encode())
}
