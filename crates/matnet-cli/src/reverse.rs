//! `matnet train --task reverse`: a generated sequence-to-sequence task that
//! is not an image. A decoder-only transformer reads `x₁ … x_L SEP` and
//! writes `x_L … x₁`, one token at a time, under a causal mask; learned
//! positions tell it where it is. Evaluation decodes greedily (each output
//! token is fed back in) on held-out sequences never seen in training.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::ensure;
use matnet::nn::attention::causal_mask;
use matnet::nn::loss::cross_entropy;
use matnet::nn::{
    Activation, Embedding, EncoderLayerConfig, LearnedPositionalEncoding, Linear, Module,
    TransformerEncoder, prefixed,
};
use matnet::optim::{Adam, LrSchedule, Optimizer, clip_grad_norm};
use matnet::{Rng, Tensor};

/// Digits `0..=9`, then the separator.
const DIGITS: usize = 10;
const SEP: usize = 10;

/// The task's settings (`train --task reverse` flags).
pub struct ReverseArgs {
    pub len: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    pub held_out: usize,
    pub out: PathBuf,
}

/// Token embedding + learned positions, a causal pre-norm transformer
/// stack, and a linear read-out over the 10 digits at every position.
pub struct Reverser {
    pub embed: Embedding,
    pub pos: LearnedPositionalEncoding,
    pub encoder: TransformerEncoder,
    pub head: Linear,
}

impl Reverser {
    pub fn new(max_len: usize, rng: &mut Rng) -> Reverser {
        let (dim, heads) = (64, 4);
        let layer = EncoderLayerConfig {
            dim_feedforward: 4 * dim,
            dropout: 0.0,
            activation: Activation::Gelu,
            norm_first: true,
            ..EncoderLayerConfig::new(dim, heads)
        };
        Reverser {
            embed: Embedding::new(DIGITS + 1, dim, rng),
            pos: LearnedPositionalEncoding::new(max_len, dim, rng),
            encoder: TransformerEncoder::new(&layer, 2, true, rng),
            head: Linear::new(dim, DIGITS, rng),
        }
    }

    /// Next-digit scores `[N, T, 10]` for token ids `[N, T]`; position `t`
    /// sees tokens `0..=t` only.
    pub fn logits(&self, ids: &Tensor) -> Tensor {
        let t = ids.dims()[1];
        let x = self.pos.forward(&self.embed.forward(ids));
        let h = self.encoder.forward_masked(&x, Some(&causal_mask(t)), None);
        self.head.forward(&h)
    }
}

impl Module for Reverser {
    fn forward(&self, ids: &Tensor) -> Tensor {
        self.logits(ids)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("embed", self.embed.named_parameters());
        p.extend(prefixed("pos", self.pos.named_parameters()));
        p.extend(prefixed("encoder", self.encoder.named_parameters()));
        p.extend(prefixed("head", self.head.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "Reverser[Embedding(11 -> 64), {} causal layers, Linear(64 -> 10)]",
            self.encoder.layers.len()
        )
    }
}

/// `x₁ … x_L SEP x_L … x₂` (the model's input) and `x_L … x₁` (its targets
/// at the last `L` positions) for a batch of sequences.
fn teacher_forcing(seqs: &[Vec<usize>]) -> (Tensor, Tensor) {
    let l = seqs[0].len();
    let mut ids = Vec::with_capacity(seqs.len() * 2 * l);
    let mut targets = Vec::with_capacity(seqs.len() * l);
    for s in seqs {
        ids.extend(s.iter().map(|&d| d as f32));
        ids.push(SEP as f32);
        ids.extend(s.iter().rev().take(l - 1).map(|&d| d as f32));
        targets.extend(s.iter().rev().map(|&d| d as f32));
    }
    (
        Tensor::from_vec(ids, [seqs.len(), 2 * l]),
        Tensor::from_vec(targets, [seqs.len() * l]),
    )
}

/// Greedy decoding: the `L` digits the model writes after `x₁ … x_L SEP`,
/// each fed back as the next input.
fn decode(model: &Reverser, seqs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let _no_grad = matnet::no_grad();
    let l = seqs[0].len();
    let mut rows: Vec<Vec<f32>> = seqs
        .iter()
        .map(|s| {
            let mut r: Vec<f32> = s.iter().map(|&d| d as f32).collect();
            r.push(SEP as f32);
            r
        })
        .collect();
    for _ in 0..l {
        let t = rows[0].len();
        let ids = Tensor::from_vec(rows.concat(), [rows.len(), t]);
        let logits = model.logits(&ids); // [N, t, 10]
        let next = logits.narrow(1, t - 1, 1).argmax(-1, false).to_vec();
        for (r, d) in rows.iter_mut().zip(next) {
            r.push(d);
        }
    }
    rows.iter()
        .map(|r| r[l + 1..].iter().map(|&d| d as usize).collect())
        .collect()
}

fn random_sequence(rng: &mut Rng, len: usize) -> Vec<usize> {
    (0..len).map(|_| rng.below(DIGITS)).collect()
}

pub fn run(a: ReverseArgs) -> anyhow::Result<()> {
    ensure!(
        (2..=64).contains(&a.len),
        "--seq-len must be between 2 and 64, got {}",
        a.len
    );
    ensure!(
        a.steps > 0 && a.batch_size > 0 && a.held_out > 0,
        "--steps, --batch-size and --held-out must be at least 1"
    );
    ensure!(
        a.lr.is_finite() && a.lr > 0.0,
        "--lr must be a positive number, got {}",
        a.lr
    );
    let mut rng = Rng::new(a.seed);
    let model = Reverser::new(2 * a.len, &mut rng);
    // Held-out sequences come from their own stream and are never trained on.
    let mut test_rng = Rng::new(a.seed ^ 0x7e57_5e9e);
    let held_out: Vec<Vec<usize>> = (0..a.held_out)
        .map(|_| random_sequence(&mut test_rng, a.len))
        .collect();
    let excluded: HashSet<&Vec<usize>> = held_out.iter().collect();
    println!(
        "training {} ({} parameters) to reverse {} digits; {} steps of {} sequences, Adam lr {}, seed {}",
        model.describe(),
        model.num_parameters(),
        a.len,
        a.steps,
        a.batch_size,
        a.lr,
        a.seed
    );
    let params = model.parameters();
    let mut opt = Adam::new(params.clone(), a.lr);
    let schedule = LrSchedule::Cosine {
        total: a.steps,
        min_lr: 0.0,
    };
    let start = Instant::now();
    let mut skipped = 0usize;
    for step in 0..a.steps {
        let mut batch = Vec::with_capacity(a.batch_size);
        while batch.len() < a.batch_size {
            let s = random_sequence(&mut rng, a.len);
            if excluded.contains(&s) {
                skipped += 1;
            } else {
                batch.push(s);
            }
        }
        let (ids, targets) = teacher_forcing(&batch);
        let logits = model.logits(&ids).narrow(1, a.len, a.len);
        let loss = cross_entropy(&logits.reshape([a.batch_size * a.len, DIGITS]), &targets);
        let mut grads = loss.backward();
        clip_grad_norm(&mut grads, &params, 1.0);
        opt.set_lr(schedule.lr_at(a.lr, step));
        opt.step(&grads);
        if (step + 1) % 250 == 0 || step + 1 == a.steps {
            println!(
                "step {:>5}: loss {:.4}  ({:.0} s)",
                step + 1,
                loss.item(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    let decoded = decode(&model, &held_out);
    let (mut exact, mut digits) = (0usize, 0usize);
    for (s, d) in held_out.iter().zip(&decoded) {
        let want: Vec<usize> = s.iter().rev().copied().collect();
        exact += usize::from(&want == d);
        digits += want.iter().zip(d).filter(|(a, b)| a == b).count();
    }
    println!(
        "held-out: {exact}/{} sequences reversed exactly ({:.2}%), {:.2}% of digits, greedy decoding; {} training draws skipped as held-out",
        held_out.len(),
        100.0 * exact as f64 / held_out.len() as f64,
        100.0 * digits as f64 / (held_out.len() * a.len) as f64,
        skipped
    );
    std::fs::create_dir_all(&a.out)?;
    let path = a.out.join("model.safetensors");
    let config = format!(
        "{{\"task\":\"reverse\",\"seq_len\":{},\"seed\":{}}}",
        a.len, a.seed
    );
    let meta = std::collections::BTreeMap::from([(matnet::io::CONFIG_KEY.to_string(), config)]);
    matnet::io::save(&path, &model.named_parameters(), &meta)?;
    println!("checkpoint: {}", path.display());
    Ok(())
}
