//! Learning-rate schedules with Hugging Face Transformers' semantics
//! (`get_scheduler`): the rate of optimizer step `s` (0-based) is
//! `learning_rate × λ(s)`. The schedule is a pure function of the step, so a
//! checkpoint's step is its whole scheduler state.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Linear,
    Cosine,
    CosineWithRestarts,
    Polynomial,
    Constant,
    ConstantWithWarmup,
}

impl ScheduleKind {
    pub const ALL: [(&'static str, ScheduleKind); 6] = [
        ("linear", ScheduleKind::Linear),
        ("cosine", ScheduleKind::Cosine),
        ("cosine_with_restarts", ScheduleKind::CosineWithRestarts),
        ("polynomial", ScheduleKind::Polynomial),
        ("constant", ScheduleKind::Constant),
        ("constant_with_warmup", ScheduleKind::ConstantWithWarmup),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

/// Hugging Face defaults: one hard restart, polynomial power 1 to 1e-7.
const RESTART_CYCLES: f64 = 1.0;
const POLY_END: f64 = 1e-7;
const POLY_POWER: f64 = 1.0;

impl Schedule {
    /// The learning rate applied at optimizer step `step` (0-based).
    pub fn learning_rate(&self, step: u64) -> f64 {
        self.learning_rate * self.factor(step)
    }

    fn factor(&self, step: u64) -> f64 {
        let (s, w, t) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < self.warmup_steps && self.kind != ScheduleKind::Constant {
            return s / w.max(1.0);
        }
        let progress = (s - w) / (t - w).max(1.0);
        match self.kind {
            ScheduleKind::Constant | ScheduleKind::ConstantWithWarmup => 1.0,
            ScheduleKind::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                (0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
            }
            ScheduleKind::CosineWithRestarts => {
                if progress >= 1.0 {
                    0.0
                } else {
                    0.5 * (1.0 + (std::f64::consts::PI * ((RESTART_CYCLES * progress) % 1.0)).cos())
                        .max(0.0)
                }
            }
            ScheduleKind::Polynomial => {
                let init = self.learning_rate;
                if s > t {
                    POLY_END / init
                } else {
                    let remaining = 1.0 - (s - w) / (t - w).max(1.0);
                    ((init - POLY_END) * remaining.powf(POLY_POWER) + POLY_END) / init
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kind: ScheduleKind, step: u64) -> f64 {
        Schedule {
            kind,
            learning_rate: 1e-3,
            warmup_steps: 10,
            total_steps: 110,
        }
        .learning_rate(step)
    }

    /// Values worked by hand from the Hugging Face lambdas (lr 1e-3, warmup 10, total 110).
    #[test]
    fn matches_hugging_face_lambdas() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        // Warmup: s / w, starting from 0 at the first step.
        close(at(ScheduleKind::Cosine, 0), 0.0);
        close(at(ScheduleKind::Cosine, 5), 5e-4);
        close(at(ScheduleKind::Linear, 9), 9e-4);
        // Peak right after warmup.
        close(at(ScheduleKind::Cosine, 10), 1e-3);
        // Cosine half way (progress 0.5): 0.5 (1 + cos(pi/2)) = 0.5.
        close(at(ScheduleKind::Cosine, 60), 5e-4);
        // Progress 0.25: 0.5 (1 + cos(pi/4)) = 0.853553390593...
        close(
            at(ScheduleKind::Cosine, 35),
            1e-3 * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2),
        );
        close(at(ScheduleKind::Cosine, 110), 0.0);
        // Linear: (110 - 60) / 100 = 0.5; never negative after the end.
        close(at(ScheduleKind::Linear, 60), 5e-4);
        close(at(ScheduleKind::Linear, 200), 0.0);
        // Constant ignores warmup; constant_with_warmup ramps then holds.
        close(at(ScheduleKind::Constant, 0), 1e-3);
        close(at(ScheduleKind::ConstantWithWarmup, 2), 2e-4);
        close(at(ScheduleKind::ConstantWithWarmup, 100), 1e-3);
        // One hard restart = plain cosine before the end, 0 at the end.
        close(at(ScheduleKind::CosineWithRestarts, 60), 5e-4);
        close(at(ScheduleKind::CosineWithRestarts, 110), 0.0);
        // Polynomial power 1 to 1e-7: (1e-3 - 1e-7) * 0.5 + 1e-7.
        close(at(ScheduleKind::Polynomial, 60), (1e-3 - 1e-7) * 0.5 + 1e-7);
        close(at(ScheduleKind::Polynomial, 500), 1e-7);
    }
}
