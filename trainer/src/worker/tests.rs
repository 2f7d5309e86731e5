//! Unit tests of the worker: failure reports from panics and errors, telemetry.

use super::gpu::Sampler;
use super::panics::capture_panics;
use crate::TrainError;
use nvml_wrapper::Nvml;

#[inline(never)]
fn exploding_step() -> Result<u32, TrainError> {
    let v: Vec<u32> = Vec::new();
    // An out-of-bounds index: a real panic with a real backtrace.
    Ok(v[std::hint::black_box(3)])
}

#[test]
fn panics_and_errors_become_failure_reports_with_frames() {
    let r = capture_panics(exploding_step).unwrap_err();
    assert_eq!(r.kind, "panic");
    assert!(r.message.contains("index out of bounds"), "{}", r.message);
    let frames = ftl_domain::job::failure::parse_frames(&r.trace);
    assert!(
        frames
            .iter()
            .any(|f| f.function.ends_with("exploding_step")),
        "{frames:?}"
    );
    let e = capture_panics(|| -> Result<(), TrainError> {
        Err(TrainError::Data("loss became NaN at step 7".into()))
    })
    .unwrap_err();
    assert_eq!(e.kind, "error");
    assert!(e.message.contains("loss became NaN at step 7"));
    // The same failure elsewhere groups with it; another one does not.
    let fp = |m: &str| ftl_domain::job::failure::fingerprint(m, &[]);
    assert_eq!(fp(&e.message), fp("dataset: loss became NaN at step 912"));
    assert_ne!(fp(&e.message), fp("checkpoint: storing failed"));
}

#[test]
fn process_telemetry_is_sampled_and_gpu_absence_is_quiet() {
    let mut s = Sampler::new();
    let first = s.sample();
    assert!(
        first.iter().any(|(k, v)| k == "system/rss_mb" && *v > 1.0),
        "{first:?}"
    );
    // CPU % needs two samples; burn some CPU between them.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_add(i * i);
    }
    assert!(x > 0);
    let second = s.sample();
    let cpu = second
        .iter()
        .find(|(k, _)| k == "system/cpu_percent")
        .map(|(_, v)| *v);
    assert!(cpu.is_some_and(|c| c > 0.0), "{second:?}");
    // Without a driver (this machine), no GPU keys and no error.
    if Nvml::init().is_err() {
        assert!(!second.iter().any(|(k, _)| k.contains("gpu")), "{second:?}");
    }
}
