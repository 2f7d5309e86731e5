//! What each step trains on: the data order (a fresh shuffle per epoch) and
//! padded batches with their target masks.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::tokenizer::{Encoded, PAD};

/// The order examples are visited in: a fresh shuffle every epoch, a pure
/// function of (seed, epoch), so the data position is the step alone.
pub(super) struct Order {
    n: usize,
    seed: u64,
    epoch: u64,
    permutation: Vec<usize>,
}

impl Order {
    pub(super) fn new(n: usize, seed: u64) -> Self {
        let mut order = Self {
            n,
            seed,
            epoch: u64::MAX,
            permutation: Vec::new(),
        };
        order.load(0);
        order
    }

    fn load(&mut self, epoch: u64) {
        self.permutation = (0..self.n).collect();
        let mix = self.seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.permutation.shuffle(&mut StdRng::seed_from_u64(mix));
        self.epoch = epoch;
    }

    pub(super) fn at(&mut self, position: u64) -> usize {
        let epoch = position / self.n as u64;
        if epoch != self.epoch {
            self.load(epoch);
        }
        self.permutation[(position % self.n as u64) as usize]
    }
}

/// A DPO prompt and one reply as one sequence; only the reply is a target.
pub(super) fn completion(prompt: &[u32], reply: &[u32]) -> Encoded {
    let mut out = Encoded {
        tokens: prompt.to_vec(),
        targets: vec![false; prompt.len()],
    };
    out.tokens.extend_from_slice(reply);
    out.targets.extend(std::iter::repeat_n(true, reply.len()));
    out
}

/// A padded batch: inputs and targets shifted by one, and the target mask.
pub(super) struct Packed {
    pub(super) rows: usize,
    pub(super) len: usize,
    pub(super) inputs: Vec<i64>,
    pub(super) targets: Vec<i64>,
    pub(super) mask: Vec<f32>,
    /// Non-padding input tokens.
    pub(super) tokens: u64,
}

pub(super) fn sequences_batch(sequences: &[&Encoded], limit: usize) -> Packed {
    let len = sequences
        .iter()
        .map(|s| s.len().saturating_sub(1).min(limit))
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = sequences.len();
    let mut packed = Packed {
        rows,
        len,
        inputs: vec![i64::from(PAD); rows * len],
        targets: vec![i64::from(PAD); rows * len],
        mask: vec![0.0; rows * len],
        tokens: 0,
    };
    for (row, sequence) in sequences.iter().enumerate() {
        let n = sequence.len().saturating_sub(1).min(len);
        for i in 0..n {
            let at = row * len + i;
            packed.inputs[at] = i64::from(sequence.tokens[i]);
            packed.targets[at] = i64::from(sequence.tokens[i + 1]);
            packed.mask[at] = if sequence.targets[i + 1] { 1.0 } else { 0.0 };
        }
        packed.tokens += n as u64;
    }
    packed
}

impl Packed {
    pub(super) fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
        let shape = [self.rows, self.len];
        (
            Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device),
            Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
            Tensor::from_data(TensorData::new(self.mask.clone(), shape), device),
        )
    }
}
