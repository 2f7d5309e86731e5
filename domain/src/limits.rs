//! Input limits shared by every entry point (GraphQL, MLflow, workers).

/// Metric points accepted in one call.
pub const MAX_POINTS_PER_CALL: usize = 10_000;
/// Length of a metric key (MLflow's limit).
pub const MAX_METRIC_KEY_LEN: usize = 250;
/// Length of names (jobs, projects, keys).
pub const MAX_NAME_LEN: usize = 256;
/// Number of tags on a job and the length of each.
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_LEN: usize = 256;
/// Serialized size of a job config.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;
/// Length of an error message kept on a failed job.
pub const MAX_ERROR_LEN: usize = 16 * 1024;
/// The largest step a metric point may carry: 2^53 − 1, JavaScript's
/// `Number.MAX_SAFE_INTEGER`. Past it a browser (and any JSON reader that
/// decodes numbers as doubles) rounds steps to their neighbours, so two
/// points would chart as one; such steps are refused at every entry point.
pub const MAX_STEP: i64 = (1 << 53) - 1;
/// Length of a client idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
