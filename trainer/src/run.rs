//! Driving a [`Trainer`] through a whole job: metrics every `logging_steps`,
//! evaluation and checkpoints on their schedules, and a control check
//! between steps so a pause or stop takes effect at a step boundary (after a
//! checkpoint when the plan says so).

use std::time::{Duration, Instant};

use crate::TrainError;
use crate::checkpoint::Checkpoint;
use crate::config::Method;
use crate::train::Trainer;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaveEvery {
    Never,
    Steps(u64),
    Epoch,
    Minutes(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub logging_steps: u64,
    /// Evaluate every this many steps (and at the end); `None`: never.
    pub eval_steps: Option<u64>,
    pub save: SaveEvery,
    pub save_on_pause: bool,
}

/// What the caller wants between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Pause,
    Stop,
}

/// Why the checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveReason {
    Scheduled,
    Pause,
    Final,
}

/// The caller's side of a run: where metrics, checkpoints and log lines go.
pub trait Observer {
    /// Metric points `(canonical key, value)` at `step`.
    fn metrics(&mut self, step: u64, points: &[(&str, f64)]) -> Result<(), TrainError>;
    /// A checkpoint to store; `eval_loss` is the latest evaluation's.
    fn checkpoint(
        &mut self,
        checkpoint: Checkpoint,
        reason: SaveReason,
        eval_loss: Option<f64>,
    ) -> Result<(), TrainError>;
    fn log(&mut self, level: LogLevel, message: &str);
    fn control(&mut self, step: u64) -> Control;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Paused,
    Stopped,
}

/// Running means over a logging interval.
#[derive(Default)]
struct Interval {
    steps: u64,
    loss: f64,
    grad_norm: f64,
    tokens: u64,
    samples: u64,
    preference: Vec<(String, f64)>,
    started: Option<Instant>,
}

pub fn run(
    trainer: &mut Trainer,
    plan: &RunPlan,
    observer: &mut dyn Observer,
) -> Result<Outcome, TrainError> {
    let samples_per_step = trainer.config().samples_per_step();
    let mut interval = Interval::default();
    let mut last_save = Instant::now();
    // The step of the last checkpoint: a pause right after a scheduled save
    // (or right after resuming from one) does not save the same step twice.
    let mut saved_step = (trainer.step_count() > 0).then_some(trainer.step_count());
    let mut last_epoch = trainer.epoch().floor();
    let mut eval_loss = None;
    observer.log(
        LogLevel::Info,
        &format!(
            "training {:?} from step {} to {} ({} samples a step)",
            trainer.config().method,
            trainer.step_count(),
            trainer.config().total_steps,
            samples_per_step
        ),
    );
    while !trainer.is_done() {
        match observer.control(trainer.step_count()) {
            Control::Continue => {}
            control => {
                if (plan.save_on_pause || control == Control::Stop)
                    && saved_step != Some(trainer.step_count())
                {
                    observer.checkpoint(trainer.checkpoint()?, SaveReason::Pause, eval_loss)?;
                }
                return Ok(if control == Control::Pause {
                    Outcome::Paused
                } else {
                    Outcome::Stopped
                });
            }
        }
        let started = *interval.started.get_or_insert_with(Instant::now);
        let report = trainer.step()?;
        if !report.loss.is_finite() {
            return Err(TrainError::Data(format!(
                "loss became {} at step {}",
                report.loss, report.step
            )));
        }
        interval.steps += 1;
        interval.loss += report.loss;
        interval.grad_norm += report.grad_norm;
        interval.tokens += report.tokens;
        interval.samples += report.samples;
        interval.preference = report.preference.clone();
        let step = report.step;
        let done = trainer.is_done();
        if step % plan.logging_steps == 0 || done {
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            let n = interval.steps as f64;
            let mut points: Vec<(&str, f64)> = vec![
                ("train_loss", interval.loss / n),
                ("train_perplexity", (interval.loss / n).exp()),
                ("learning_rate", report.learning_rate),
                ("grad_norm", interval.grad_norm / n),
                ("tokens_per_second", interval.tokens as f64 / seconds),
                ("samples_per_second", interval.samples as f64 / seconds),
                ("steps_per_second", n / seconds),
                ("epoch", report.epoch),
            ];
            points.extend(interval.preference.iter().map(|(k, v)| (k.as_str(), *v)));
            observer.metrics(step, &points)?;
            interval = Interval::default();
        }
        let eval_due = plan.eval_steps.is_some_and(|every| step % every == 0)
            || (done && plan.eval_steps.is_some());
        if eval_due && let Some(eval) = trainer.evaluate()? {
            eval_loss = Some(eval.loss);
            let accuracy_key = match trainer.config().method {
                Method::Dpo => "reward_accuracy",
                _ => "eval_mean_token_accuracy",
            };
            observer.metrics(
                step,
                &[
                    ("eval_loss", eval.loss),
                    ("eval_perplexity", eval.loss.exp()),
                    (accuracy_key, eval.accuracy),
                ],
            )?;
        }
        let epoch = trainer.epoch().floor();
        let save_due = match plan.save {
            SaveEvery::Never => false,
            SaveEvery::Steps(every) => step % every == 0,
            SaveEvery::Epoch => epoch > last_epoch,
            SaveEvery::Minutes(m) => last_save.elapsed() >= Duration::from_secs(m * 60),
        };
        last_epoch = epoch;
        if done {
            observer.checkpoint(trainer.checkpoint()?, SaveReason::Final, eval_loss)?;
        } else if save_due {
            observer.checkpoint(trainer.checkpoint()?, SaveReason::Scheduled, eval_loss)?;
            last_save = Instant::now();
            saved_step = Some(step);
        }
    }
    Ok(Outcome::Finished)
}
