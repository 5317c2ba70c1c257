//! `matnet train --task reverse`: a generated sequence-to-sequence task that
//! is not an image. A decoder-only transformer reads `x₁ … x_L SEP` and
//! writes `x_L … x₁`, one token at a time, under a causal mask; learned
//! positions tell it where it is. Evaluation decodes greedily (each output
//! token is fed back in) on held-out sequences never seen in training.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, ensure};
use matnet::models::{DIGITS, Reverser, ReverserConfig};
use matnet::nn::loss::cross_entropy;
use matnet::optim::{Adam, LrSchedule};
use matnet::train::Player;
use matnet::{Module, Rng};

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

fn random_sequence(rng: &mut Rng, len: usize) -> Vec<usize> {
    (0..len).map(|_| rng.below(DIGITS)).collect()
}

/// Where a reverse-task run stands, saved in its training state.
#[derive(serde::Serialize, serde::Deserialize)]
struct Progress {
    step: usize,
    skipped: usize,
}

/// Steps between the loss lines, and between saves of the training state.
const LOG_EVERY: usize = 250;

pub fn run(args: &crate::train::TrainArgs, a: ReverseArgs) -> anyhow::Result<()> {
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
    let model = Reverser::new(&ReverserConfig::new(a.len), &mut rng);
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
    let mut player =
        Player::new(model.parameters(), |p| Box::new(Adam::new(p, a.lr))).clip(Some(1.0));
    let schedule = LrSchedule::Cosine {
        total: a.steps,
        min_lr: 0.0,
    };
    let (mut saver, resumed) = crate::state::Saver::open(&a.out, args)?;
    let (mut first, mut skipped) = (0, 0usize);
    if let Some(s) = &resumed {
        let p: Progress = saver.progress(s)?;
        s.load_module("model", &model)?;
        s.load_player("net", &mut player)?;
        rng = s.rng("data")?;
        (first, skipped) = (p.step, p.skipped);
        println!("resuming at step {}", first + 1);
    }
    let start = Instant::now();
    for step in first..a.steps {
        let mut batch = Vec::with_capacity(a.batch_size);
        while batch.len() < a.batch_size {
            let s = random_sequence(&mut rng, a.len);
            if excluded.contains(&s) {
                skipped += 1;
            } else {
                batch.push(s);
            }
        }
        let (ids, targets) = Reverser::teacher_forcing(&batch);
        let logits = model.logits(&ids).narrow(1, a.len, a.len);
        let loss = cross_entropy(&logits.reshape([a.batch_size * a.len, DIGITS]), &targets);
        player.set_lr(schedule.lr_at(a.lr, step));
        let loss = player
            .step(&loss)
            .map_err(|e| anyhow!("{e} at step {}; try a lower --lr", step + 1))?;
        let log = (step + 1) % LOG_EVERY == 0 || step + 1 == a.steps;
        if log {
            println!(
                "step {:>5}: loss {:.4}  ({:.0} s)",
                step + 1,
                loss,
                start.elapsed().as_secs_f64()
            );
        }
        if log || saver.due() {
            let mut s = matnet::io::TrainingState::new("");
            s.put_module("model", &model);
            s.put_player("net", &player);
            s.put_rng("data", &rng);
            let progress = Progress {
                step: step + 1,
                skipped,
            };
            saver.save(s, &progress)?;
        }
    }
    let decoded = model.decode(&held_out);
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
    let path = a.out.join("model.safetensors");
    let meta = BTreeMap::from([("matnet.seed".to_string(), a.seed.to_string())]);
    model.save(&path, meta)?;
    println!("checkpoint: {}", path.display());
    Ok(())
}
