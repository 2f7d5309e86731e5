//! Unit tests of the training step's pieces: gradient clipping and padded batches.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::batch::sequences_batch;
use super::step::clip_global_norm;
use crate::model::ModelConfig;
use crate::tokenizer::{Encoded, PAD};

#[test]
fn global_norm_clipping_scales_all_gradients_together() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = ModelConfig {
        context: 8,
        ..ModelConfig::default()
    }
    .init(&device);
    let tokens = Tensor::<2, Int>::from_data(
        TensorData::new(vec![1i64, 2, 3, 4, 5, 6, 7, 8], [1, 8]),
        &device,
    );
    let loss = model.forward(tokens).powi_scalar(2).mean();
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);

    // Reference norm: every gradient value summed in f64 on the host.
    struct HostNorm<'a>(&'a GradientsParams, f64);
    impl ModuleVisitor for HostNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                let values: Vec<f32> = g.into_data().try_to_vec().unwrap();
                self.1 += values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
            }
        }
    }
    let mut host = HostNorm(&grads, 0.0);
    model.visit(&mut host);
    let expected = host.1.sqrt();
    assert!(expected > 0.0);

    let norm = clip_global_norm(&model, &mut grads, f64::MAX);
    assert!(
        (norm - expected).abs() < 1e-4 * expected,
        "{norm} vs {expected}"
    );
    // Clip to half: the norm reported is the one before clipping...
    assert_eq!(clip_global_norm(&model, &mut grads, expected / 2.0), norm);
    // ...and afterwards the gradients have half the norm.
    let after = clip_global_norm(&model, &mut grads, f64::MAX);
    assert!((after - expected / 2.0).abs() < 1e-4 * expected, "{after}");
}

#[test]
fn padded_batches_mask_padding_and_non_targets() {
    let a = Encoded {
        tokens: vec![1, 2, 3, 4],
        targets: vec![false, false, true, true],
    };
    let b = Encoded {
        tokens: vec![5, 6],
        targets: vec![false, true],
    };
    let packed = sequences_batch(&[&a, &b], 16);
    assert_eq!((packed.rows, packed.len, packed.tokens), (2, 3, 4));
    assert_eq!(packed.inputs, vec![1, 2, 3, 5, PAD as i64, PAD as i64]);
    assert_eq!(packed.targets, vec![2, 3, 4, 6, PAD as i64, PAD as i64]);
    assert_eq!(packed.mask, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    // Truncated to the limit.
    assert_eq!(sequences_batch(&[&a], 2).targets, vec![2, 3]);
}
