//! Training behaviour: learning, exact resume, DPO, clipping, generation.

use crate::ScheduleKind;
use crate::checkpoint::Checkpoint;
use crate::config::{Method, TrainConfig};
use crate::dataset::Dataset;
use crate::generate::{FinishReason, GenerateParams, Generator};
use crate::tokenizer::{self, Message, Role};
use crate::train::{Backend, Trainer};

/// 40 conversations: "say N" → "N N N" for N in words.
fn chat_dataset() -> Dataset {
    let words = [
        "red", "blue", "green", "gold", "gray", "pink", "teal", "plum",
    ];
    let mut file = String::new();
    for i in 0..40 {
        let w = words[i % words.len()];
        file.push_str(&format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"say {w}\"}},{{\"role\":\"assistant\",\"content\":\"{w} {w} {w}\"}}]}}\n"
        ));
    }
    Dataset::parse(file.as_bytes(), false, 0).unwrap()
}

/// Every parameter value, in module order.
fn weights(trainer: &Trainer) -> Vec<u32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::Tensor;
    struct Collect(Vec<u32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values: Vec<f32> = param.val().into_data().try_to_vec().unwrap();
            self.0.extend(values.iter().map(|v| v.to_bits()));
        }
    }
    let mut collect = Collect(Vec::new());
    trainer.model().visit(&mut collect);
    collect.0
}

fn trainer(config: TrainConfig, data: &Dataset) -> Trainer {
    Trainer::new(config, Backend::Cpu, data, data.split(0.8, 0.2, 1), None).unwrap()
}

#[test]
fn sft_learns_to_answer_and_generates_the_answer() {
    let data = chat_dataset();
    let mut config = TrainConfig::small(Method::Sft, 120);
    config.learning_rate = 1e-2;
    let mut t = trainer(config, &data);
    let before = t.evaluate().unwrap().unwrap();
    // An untrained model is near uniform over 264 tokens: ln 264 ≈ 5.58.
    assert!(before.loss > 4.0, "initial eval loss {}", before.loss);
    let mut first = None;
    while !t.is_done() {
        let r = t.step().unwrap();
        first.get_or_insert(r.loss);
        assert!(r.loss.is_finite() && r.grad_norm.is_finite() && r.tokens > 0);
    }
    let after = t.evaluate().unwrap().unwrap();
    assert!(
        after.loss < 0.5,
        "eval loss after training {} (before {})",
        after.loss,
        before.loss
    );
    assert!(after.accuracy > 0.85, "token accuracy {}", after.accuracy);

    let generator = Generator::new(t.model(), t.config().model, burn::prelude::Device::flex());
    let prompt = tokenizer::chat_prompt(&[Message::new(Role::User, "say teal")]);
    let mut streamed = String::new();
    let out = generator
        .generate(&prompt, &GenerateParams::default(), |piece| {
            streamed.push_str(piece)
        })
        .unwrap();
    assert_eq!(out.text, "teal teal teal");
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(streamed, out.text);
    assert_eq!(out.prompt_tokens, prompt.len());

    let capped = generator
        .generate(
            &prompt,
            &GenerateParams {
                max_tokens: 3,
                ..GenerateParams::default()
            },
            |_| {},
        )
        .unwrap();
    assert_eq!(
        (
            capped.text.as_str(),
            capped.finish_reason,
            capped.completion_tokens
        ),
        ("tea", FinishReason::Length, 3)
    );
    let stopped = generator
        .generate(
            &prompt,
            &GenerateParams {
                stop: vec![" te".into()],
                ..GenerateParams::default()
            },
            |_| {},
        )
        .unwrap();
    assert_eq!(
        (stopped.text.as_str(), stopped.finish_reason),
        ("teal", FinishReason::Stop)
    );
}

#[test]
fn resume_from_a_checkpoint_is_bit_exact() {
    let data = chat_dataset();
    let mut config = TrainConfig::small(Method::Sft, 16);
    config.gradient_accumulation_steps = 2;
    config.batch_size = 3; // 6 samples a step over 32 examples: epochs wrap mid-run
    config.schedule = ScheduleKind::Linear;

    let mut straight = trainer(config.clone(), &data);
    let straight_losses: Vec<(f64, f64, f64)> = (0..16)
        .map(|_| {
            straight
                .step()
                .map(|r| (r.loss, r.learning_rate, r.grad_norm))
                .unwrap()
        })
        .collect();

    let mut first_half = trainer(config, &data);
    let mut resumed_losses: Vec<(f64, f64, f64)> = (0..8)
        .map(|_| {
            first_half
                .step()
                .map(|r| (r.loss, r.learning_rate, r.grad_norm))
                .unwrap()
        })
        .collect();
    // Through the files, as a worker stores and fetches them.
    let files = first_half.checkpoint().unwrap().files().unwrap();
    drop(first_half);
    let checkpoint = Checkpoint::from_files(|name| {
        files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.bytes.clone())
    })
    .unwrap();
    assert_eq!(checkpoint.meta.step, 8);
    let mut second_half =
        Trainer::resume(Backend::Cpu, &data, data.split(0.8, 0.2, 1), &checkpoint).unwrap();
    resumed_losses.extend((0..8).map(|_| {
        second_half
            .step()
            .map(|r| (r.loss, r.learning_rate, r.grad_norm))
            .unwrap()
    }));

    assert_eq!(
        straight_losses, resumed_losses,
        "loss curves must be identical"
    );
    // Weights compared by value (the record's bytes also carry per-instance parameter ids).
    let (a, b) = (weights(&straight), weights(&second_half));
    assert!(
        a.len() > 100_000 && a == b,
        "final weights must be identical"
    );
}

#[test]
fn resume_without_optimizer_state_would_diverge() {
    // The control for the test above: the comparison can fail.
    let data = chat_dataset();
    let config = TrainConfig::small(Method::Sft, 6);
    let mut a = trainer(config.clone(), &data);
    let losses_a: Vec<f64> = (0..6).map(|_| a.step().unwrap().loss).collect();
    let mut b = trainer(config.clone(), &data);
    for _ in 0..3 {
        b.step().unwrap();
    }
    let mut checkpoint = b.checkpoint().unwrap();
    checkpoint.optimizer = trainer(config, &data).checkpoint().unwrap().optimizer; // fresh moments
    let mut c = Trainer::resume(Backend::Cpu, &data, data.split(0.8, 0.2, 1), &checkpoint).unwrap();
    let losses_c: Vec<f64> = (0..3).map(|_| c.step().unwrap().loss).collect();
    assert_ne!(losses_a[3..], losses_c[..]);
}

#[test]
fn dpo_starts_at_ln2_and_learns_the_preference() {
    let mut file = String::new();
    for i in 0..24 {
        file.push_str(&format!(
            "{{\"prompt\":\"q{}\",\"chosen\":\"yes, gladly\",\"rejected\":\"no way\"}}\n",
            i % 6
        ));
    }
    let data = Dataset::parse(file.as_bytes(), false, 0).unwrap();
    let mut config = TrainConfig::small(Method::Dpo, 30);
    config.learning_rate = 5e-3;
    config.warmup_steps = 0;
    config.schedule = ScheduleKind::Constant;
    let mut t = Trainer::new(config, Backend::Cpu, &data, data.split(0.75, 0.25, 3), None).unwrap();
    let first = t.step().unwrap();
    // Policy = reference at the first step: every reward is 0 and the loss is -ln σ(0) = ln 2.
    assert!(
        (first.loss - std::f64::consts::LN_2).abs() < 1e-6,
        "first DPO loss {}",
        first.loss
    );
    let metric =
        |r: &crate::StepReport, name: &str| r.preference.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(metric(&first, "reward_margin").abs() < 1e-5);
    let mut last = first;
    while !t.is_done() {
        last = t.step().unwrap();
    }
    assert!(last.loss < 0.3, "DPO loss after training {}", last.loss);
    assert!(metric(&last, "reward_margin") > 1.0);
    assert!(metric(&last, "reward_chosen") > metric(&last, "reward_rejected"));
    let eval = t.evaluate().unwrap().unwrap();
    assert_eq!(eval.accuracy, 1.0, "every held-out pair ranked right");
}

#[test]
fn methods_refuse_datasets_they_cannot_train_on() {
    let data = chat_dataset();
    let err = Trainer::new(
        TrainConfig::small(Method::Dpo, 5),
        Backend::Cpu,
        &data,
        data.split(0.8, 0.2, 1),
        None,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("cannot train on"), "{err}");
}

#[test]
fn pretraining_on_raw_text_lowers_the_loss() {
    let text = "the quick brown fox jumps over the lazy dog. ".repeat(60);
    let data = Dataset::parse(text.as_bytes(), true, 64).unwrap();
    let mut config = TrainConfig::small(Method::Cpt, 60);
    config.learning_rate = 1e-2;
    let mut t = trainer(config, &data);
    let before = t.evaluate().unwrap().unwrap().loss;
    while !t.is_done() {
        t.step().unwrap();
    }
    let after = t.evaluate().unwrap().unwrap().loss;
    assert!(after < before / 4.0, "eval loss {before} -> {after}");
}

#[test]
fn generation_stops_when_cancelled() {
    let config = crate::ModelConfig::default();
    let device = burn::prelude::Device::flex();
    // A fixed initialisation: an unseeded random model sometimes sampled
    // its end token within three steps and stopped before the cancel.
    device.seed(11);
    let generator = Generator::new(config.init(&device), config, device);
    let params = GenerateParams {
        max_tokens: 50,
        temperature: 1.0,
        ..GenerateParams::default()
    };
    let prompt = crate::tokenizer::encode_text("hello");
    let calls = std::cell::Cell::new(0);
    let out = generator
        .generate_until(
            &prompt,
            &params,
            || {
                calls.set(calls.get() + 1);
                calls.get() > 3
            },
            |_| {},
        )
        .unwrap();
    assert_eq!(out.finish_reason, crate::FinishReason::Cancelled);
    assert!(out.completion_tokens <= 3, "{out:?}");
}
