//! The `finetune-lab` command line.

use crate::config::Config;
use crate::state::AppState;
use clap::{Parser, Subcommand, ValueEnum};
use ftl_domain::project::{Scope, project_id_for_name};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "finetune-lab",
    version,
    about = "FineTune Lab backend: event-sourced training, chat and judging service"
)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables FTL__SECTION__KEY override it.
    #[arg(long, global = true, env = "FTL_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP/GraphQL service (and the projection runners).
    Serve {
        /// Address to listen on (overrides server.bind).
        #[arg(long)]
        bind: Option<String>,
        /// Database URL (overrides database.url), e.g. sqlite:./data/ftl.db or postgres://…
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect and rebuild read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Print the GraphQL SDL (the committed api/schema.graphql).
    Schema,
    /// Print the default configuration as TOML.
    Config,
    /// Print a fresh encryption key for [secrets] encryption_key (it seals
    /// the API keys of external models; keep it safe: sealed keys do not
    /// open without it).
    Keygen,
    /// Train with the built-in trainer on this machine: validate the job
    /// config against the dataset, then train, printing metrics as JSON lines
    /// and storing checkpoints under OUT/checkpoints. Ctrl-C pauses after a
    /// checkpoint (exit 3); --resume continues from the latest one.
    /// Exit 2: the config or dataset is invalid (the issues are printed).
    Train {
        /// Job config (JSON, training-config.md), e.g. {"model":{"name":"ftl/byte-transformer-tiny"},…}.
        #[arg(long)]
        job_config: PathBuf,
        /// Dataset: JSONL (chat, prompt-completion, preference) or raw text (.txt).
        #[arg(long)]
        dataset: PathBuf,
        /// Output folder (config.json and checkpoints/).
        #[arg(long)]
        out: PathBuf,
        /// Read the dataset as raw text whatever its extension.
        #[arg(long)]
        text: bool,
        /// Continue from the latest checkpoint in OUT.
        #[arg(long)]
        resume: bool,
        /// Print the validation (normalized config, issues, estimates) and stop.
        #[arg(long)]
        validate_only: bool,
    },
    /// Run a training worker against a server: claim queued jobs, train them
    /// with the built-in trainer, report metrics, logs, telemetry and
    /// checkpoints with each job's own token. Runs until Ctrl-C (the job in
    /// hand is then recovered by the server from its last checkpoint).
    Worker {
        /// The server's base URL.
        #[arg(long, env = "FTL_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// A project API key with write scope: the worker takes that project's jobs.
        #[arg(long, env = "FTL_WORKER_TOKEN", hide_env_values = true)]
        token: String,
        /// A name for this worker, shown on the jobs it runs (default: host and pid).
        #[arg(long)]
        worker_id: Option<String>,
        /// Seconds between claims while no job is queued.
        #[arg(long, default_value_t = 2.0)]
        poll_s: f64,
        /// Exit after one job (or at once when none is queued).
        #[arg(long)]
        once: bool,
    },
    /// Generate text from a checkpoint folder (OUT/checkpoints/checkpoint-…).
    Generate {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        prompt: String,
        /// Send the prompt as a user chat message and generate the assistant's reply.
        #[arg(long)]
        chat: bool,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Stop sequence (repeatable).
        #[arg(long)]
        stop: Vec<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key (and the project, if new). The key is printed once; only its hash is stored.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long, value_enum, default_value_t = ScopeArg::Write)]
        scope: ScopeArg,
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List a project's keys (never the secrets).
    List {
        #[arg(long)]
        project: String,
    },
    /// Revoke a key (its id from `keys list`): requests with it are refused
    /// from then on, by running servers too (within a poll interval).
    Revoke {
        #[arg(long)]
        project: String,
        /// The key's id (not its secret).
        key_id: uuid::Uuid,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Position, head and lag of every projection.
    Status,
    /// Rebuild a projection from the log beside the live one, then switch to it.
    Rebuild {
        /// Projection name (see `projections status`).
        name: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ScopeArg {
    Read,
    Write,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Write => Scope::Write,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let mut config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init_logging(&config.log.format, &config.log.level);
    match cli.command {
        Command::Serve { bind, database_url } => {
            if let Some(b) = bind {
                config.server.bind = b;
            }
            if let Some(u) = database_url {
                config.database.url = u;
            }
            let server = crate::build_server(config).await?;
            println!(
                "finetune-lab listening on http://127.0.0.1:{}/graphql",
                server.port
            );
            server.run_until_stopped().await?;
        }
        Command::Keys(cmd) => {
            let state = offline_state(config).await?;
            match cmd {
                KeysCommand::Create {
                    project,
                    scope,
                    name,
                } => {
                    let k = crate::auth::create_key(
                        state.effects.store.as_ref(),
                        &project,
                        &name,
                        scope.into(),
                        "cli",
                    )
                    .await?;
                    state.effects.projections.catch_up().await?;
                    println!("{}", k.secret);
                    eprintln!(
                        "key {} for project {project} ({:?}); store it now, it is not shown again",
                        k.key_id, scope
                    );
                }
                KeysCommand::Revoke { project, key_id } => {
                    state.effects.projections.catch_up().await?;
                    let at = crate::auth::revoke_key(
                        state.effects.store.as_ref(),
                        &state.effects.db,
                        &project,
                        key_id,
                        "cli",
                    )
                    .await?;
                    state.effects.projections.catch_up().await?;
                    if at == 0 {
                        eprintln!("key {key_id} was already revoked");
                    } else {
                        eprintln!("key {key_id} of project {project} revoked");
                    }
                }
                KeysCommand::List { project } => {
                    state.effects.projections.catch_up().await?;
                    let keys = ftl_projections::views::catalog::keys_of_project(
                        &state.effects.db,
                        project_id_for_name(&project).0,
                    )
                    .await?;
                    for k in keys {
                        println!(
                            "{}\t{}\t{}\t{}…\t{}{}",
                            k.key_id,
                            k.name,
                            k.scope,
                            k.prefix,
                            k.created_at.to_rfc3339(),
                            if k.revoked { "\trevoked" } else { "" }
                        );
                    }
                }
            }
            state.close().await;
        }
        Command::Projections(cmd) => {
            // As found: a read model of an older shape is reported (status)
            // or rebuilt by name, not rebuilt on the way in.
            let state = offline_state_as_found(config).await?;
            match cmd {
                ProjectionsCommand::Status => {
                    println!(
                        "{:<12} {:>10} {:>12} {:>12} {:>10}",
                        "projection", "generation", "position", "head", "lag"
                    );
                    for s in state.effects.projections.status().await? {
                        println!(
                            "{:<12} {:>10} {:>12} {:>12} {:>10}{}",
                            s.name,
                            s.generation,
                            s.position,
                            s.head,
                            s.lag(),
                            if s.rebuilding.is_some() {
                                "  tables of an older version: rebuild pending"
                            } else {
                                ""
                            }
                        );
                    }
                }
                ProjectionsCommand::Rebuild { name } => {
                    let r = state.effects.projections.rebuild(&name).await?;
                    let secs = r.elapsed.as_secs_f64().max(1e-9);
                    println!(
                        "rebuilt {} as generation {} up to position {} in {:.2}s ({:.0} events/s)",
                        r.name,
                        r.generation,
                        r.position,
                        secs,
                        r.position as f64 / secs
                    );
                }
            }
            state.close().await;
        }
        Command::Schema => print!("{}", crate::graphql::sdl()),
        Command::Config => print!("{}", Config::default_toml()),
        Command::Keygen => println!("{}", ftl_effects::secrets::generate_key()),
        Command::Train {
            job_config,
            dataset,
            out,
            text,
            resume,
            validate_only,
        } => {
            let args = ftl_effects::training::local::TrainArgs {
                job_config,
                dataset,
                out,
                raw_text: text,
                resume,
                validate_only,
            };
            return ftl_effects::training::local::train(args).await;
        }
        Command::Worker {
            server,
            token,
            worker_id,
            poll_s,
            once,
        } => {
            let worker_id = worker_id.unwrap_or_else(|| {
                let host = std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "worker".into());
                format!("{host}-{}", std::process::id())
            });
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("stopping: the job in hand recovers from its last checkpoint");
                    let _ = tx.send(true);
                }
            });
            let opts = ftl_trainer::worker::WorkerOptions {
                server: server.trim_end_matches('/').to_string(),
                token,
                worker_id,
                idle_poll: Duration::from_secs_f64(poll_s.clamp(0.05, 3600.0)),
                once,
            };
            ftl_trainer::worker::run_worker(opts, rx).await;
        }
        Command::Generate {
            checkpoint,
            prompt,
            chat,
            max_tokens,
            temperature,
            top_p,
            stop,
            seed,
        } => {
            let params = ftl_trainer::GenerateParams {
                max_tokens,
                temperature,
                top_p,
                stop,
                seed,
            };
            ftl_effects::training::local::generate(ftl_effects::training::local::GenerateArgs {
                checkpoint,
                prompt,
                chat,
                params,
            })
            .await?;
        }
    }
    Ok(0)
}

async fn offline_state_as_found(mut config: Config) -> anyhow::Result<AppState> {
    config.projections.poll_ms = config
        .projections
        .poll_ms
        .min(Duration::from_secs(1).as_millis() as u64);
    AppState::build(config).await
}

async fn offline_state(config: Config) -> anyhow::Result<AppState> {
    let state = offline_state_as_found(config).await?;
    // A command works on read models of this version's shape: one built by
    // an older version is rebuilt first (a server rebuilds it beside the
    // live generation instead).
    state.effects.projections.rebuild_stale(&|| false).await?;
    Ok(state)
}
