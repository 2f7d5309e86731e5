//! A succeeded managed job's final checkpoint becomes its model. The model's
//! id derives from the job and step, and its registration appends with that
//! id as the command id, so carrying this out twice registers once.

use crate::Effects;
use crate::training::job_states::load_job;
use ftl_domain::JobId;
use ftl_domain::process::Outcome;

pub async fn carry_out(fx: &Effects, job: JobId) -> Outcome {
    let state = match load_job(fx, job).await {
        Ok(s) => s,
        Err(e) => return Outcome::Transient(format!("reading job {job}: {e}")),
    };
    let (Some(created), Some(m)) = (&state.created, &state.managed) else {
        // A job reported from outside: it has no checkpoint of ours.
        return Outcome::Done;
    };
    let Some(step) = m.last_checkpoint else {
        return Outcome::Done;
    };
    match crate::models::local::register(fx, created.project_id, job, step, None).await {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Transient(format!("{e:#}")),
    }
}
