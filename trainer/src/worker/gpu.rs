//! Worker telemetry: this process's CPU % and RSS from `/proc`, and each
//! NVIDIA GPU's utilisation, memory and temperature through NVML when a
//! driver is present (`libnvidia-ml` is loaded at run time, so the same
//! binary runs on machines without one and simply reports no GPU).

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use std::time::Instant;

pub struct Sampler {
    last_cpu: Option<(Instant, f64)>,
    nvml: Option<Nvml>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        let nvml = match Nvml::init() {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(error = %e, "no NVML: GPU telemetry off");
                None
            }
        };
        Self {
            last_cpu: None,
            nvml,
        }
    }

    /// CPU seconds used by this process so far (utime + stime at 100 Hz).
    fn cpu_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    }

    fn rss_mb() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// `(metric key, value)` pairs: `system/cpu_percent` (since the last
    /// sample; 200 = two cores busy), `system/rss_mb`, and per GPU `i`
    /// `system/gpu{i}_utilization_percent`, `…_memory_used_mb`,
    /// `…_memory_total_mb`, `…_temperature_c`.
    pub fn sample(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(cpu) = Self::cpu_seconds() {
            let now = Instant::now();
            if let Some((then, before)) = self.last_cpu {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    out.push(("system/cpu_percent".into(), 100.0 * (cpu - before) / wall));
                }
            }
            self.last_cpu = Some((now, cpu));
        }
        if let Some(rss) = Self::rss_mb() {
            out.push(("system/rss_mb".into(), rss));
        }
        if let Some(nvml) = &self.nvml {
            let count = nvml.device_count().unwrap_or(0);
            for i in 0..count {
                let Ok(d) = nvml.device_by_index(i) else {
                    continue;
                };
                if let Ok(u) = d.utilization_rates() {
                    out.push((
                        format!("system/gpu{i}_utilization_percent"),
                        f64::from(u.gpu),
                    ));
                }
                if let Ok(m) = d.memory_info() {
                    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
                    out.push((format!("system/gpu{i}_memory_used_mb"), mb(m.used)));
                    out.push((format!("system/gpu{i}_memory_total_mb"), mb(m.total)));
                }
                if let Ok(t) = d.temperature(TemperatureSensor::Gpu) {
                    out.push((format!("system/gpu{i}_temperature_c"), f64::from(t)));
                }
            }
        }
        out
    }
}
