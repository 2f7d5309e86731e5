//! A training error or a panic becomes a failure report with the backtrace of
//! where it happened.

use crate::TrainError;
use ftl_domain::job::worker_protocol::FailedReport;

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, turning a training error or a panic into a failure report with
/// the backtrace of where it happened.
pub(super) fn capture_panics<T>(
    f: impl FnOnce() -> Result<T, TrainError>,
) -> Result<T, FailedReport> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(trace));
            previous(info);
        }));
    });
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(FailedReport {
            kind: "error".into(),
            message: e.to_string(),
            trace: std::backtrace::Backtrace::force_capture().to_string(),
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(FailedReport {
                kind: "panic".into(),
                message: format!("panicked: {message}"),
                trace: LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default(),
            })
        }
    }
}
