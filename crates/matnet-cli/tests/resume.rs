//! Resumable training: a run killed (SIGKILL) or interrupted (SIGINT,
//! SIGTERM, a double Ctrl-C) at a random moment and resumed with `--resume` ends with the same weights,
//! bit for bit, and the same `metrics.csv` (timing columns aside) as a run
//! that was never stopped; the run directory lock; conflicting flags.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Outcome, dataset, fails, matnet, mnist_data, outcome};

fn run_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("matnet-resume-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn train(data: Option<&std::ffi::OsStr>, args: &[&str], out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_matnet"));
    c.arg("train")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--quiet");
    if let Some(d) = data {
        c.arg("--data").arg(d);
    }
    c.env_remove("MATNET_DATA");
    c
}

/// Runs `c` to the end; panics with its stderr on failure.
fn finish(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}{se}");
    so.into_owned()
}

/// Starts a run that saves its state after every step, waits for the first
/// save, then a random delay from `seed` (at most half of what the reference
/// run of `reference_ms` had left at that point, so the stop falls anywhere
/// in the training, never after it), and returns the still-running child.
fn start_and_wait(c: &mut Command, dir: &Path, seed: u64, reference_ms: u64) -> Child {
    let mut child = c
        .args(["--save-every", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = dir.join("state.safetensors");
    let t0 = Instant::now();
    while !state.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first save"
        );
        assert!(t0.elapsed() < Duration::from_secs(120), "no state saved");
        std::thread::sleep(Duration::from_millis(5));
    }
    let left = reference_ms.saturating_sub(t0.elapsed().as_millis() as u64);
    let delay = matnet::Rng::new(seed).below(left as usize / 2 + 1) as u64;
    std::thread::sleep(Duration::from_millis(delay));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished within {delay} ms of its first save: make it longer"
    );
    child
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL: no chance to save; the last state written stands.
    Kill,
    /// SIGINT: finish the step, save, exit 130 with the resume line.
    Interrupt,
    /// SIGTERM: the same, exit 143.
    Terminate,
    /// Two SIGINTs at once: the second ends the process at once (exit 130),
    /// even inside a step or a save; the last complete state stands.
    DoubleInterrupt,
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A finished, never-stopped run: its outcome and how long it took.
struct Reference {
    outcome: Outcome,
    millis: u64,
}

fn reference(data: Option<&std::ffi::OsStr>, tag: &str, args: &[&str]) -> Reference {
    let dir = run_dir(&format!("{tag}-ref"));
    let t0 = Instant::now();
    finish(&mut train(data, args, &dir));
    let millis = t0.elapsed().as_millis() as u64;
    let outcome = outcome(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    Reference { outcome, millis }
}

/// The run of `reference`, stopped by `stop` at a random moment drawn from
/// `seed` (see [`start_and_wait`]; the stopped run saves after every step,
/// so it is slower than the reference) and resumed: the same outcome, to
/// the bit.
fn stop_and_resume(
    data: Option<&std::ffi::OsStr>,
    tag: &str,
    args: &[&str],
    reference: &Reference,
    seed: u64,
    stop: Stop,
) {
    let dir = run_dir(tag);
    // A signal that lands after the last step (during the final test
    // evaluation) lets the complete run finish with status 0, which is not
    // the case under test: stop again, earlier.
    let mut reference_ms = reference.millis;
    let out = loop {
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = start_and_wait(&mut train(data, args, &dir), &dir, seed, reference_ms);
        match stop {
            Stop::Kill => child.kill().unwrap(),
            Stop::Interrupt | Stop::DoubleInterrupt => signal(&child, "INT"),
            Stop::Terminate => signal(&child, "TERM"),
        }
        if let Stop::DoubleInterrupt = stop {
            signal(&child, "INT");
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() && reference_ms > reference.millis / 8 {
            println!("{tag}: the run had finished its training; stopping earlier");
            reference_ms /= 2;
            continue;
        }
        break out;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let saved_line = format!(
        "interrupted: state saved; resume with: matnet train --resume {}",
        dir.display()
    );
    match stop {
        Stop::Kill => {}
        Stop::Interrupt => {
            assert_eq!(out.status.code(), Some(130), "{err}");
            assert_eq!(err.trim(), saved_line);
        }
        Stop::Terminate => {
            assert_eq!(out.status.code(), Some(143), "{err}");
            assert_eq!(err.trim(), saved_line);
        }
        Stop::DoubleInterrupt => {
            // At once: no line, unless the step and its save ended before
            // the second signal arrived.
            assert_eq!(out.status.code(), Some(130), "{err}");
            assert!(err.trim().is_empty() || err.trim() == saved_line, "{err}");
        }
    }
    let text = finish(
        Command::new(env!("CARGO_BIN_EXE_matnet"))
            .args(["train", "--quiet", "--resume"])
            .arg(&dir)
            .args(
                data.map(|d| vec![std::ffi::OsStr::new("--data"), d])
                    .unwrap_or_default(),
            )
            .env_remove("MATNET_DATA"),
    );
    let resumed_at = text
        .lines()
        .find(|l| l.starts_with("resuming at"))
        .unwrap_or("?");
    let got = outcome(&dir);
    let want = &reference.outcome;
    assert_eq!(got.1, want.1, "{tag}: metrics.csv differs ({resumed_at})");
    for ((n, a), (_, b)) in got.0.iter().zip(&want.0) {
        assert!(a == b, "{tag}: tensor {n} differs ({resumed_at})");
    }
    assert_eq!(got.0.len(), want.0.len());
    println!("{tag}: {stop:?}, identical after {resumed_at}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// For an MLP, a conv net, a recurrent net, a GAN and the joint model, each
/// for two seeds: SIGKILL at a random moment, resume, compare with the run
/// that was never stopped; then the same after SIGINT (seed 1) or SIGTERM
/// (seed 2), and for the MLP after a double Ctrl-C.
#[test]
fn killed_or_interrupted_runs_resume_bit_identical() {
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let d = Some(data.as_os_str());
    let models: [(&str, &[&str]); 5] = [
        (
            "mlp",
            &["--model", "mlp", "--epochs", "3", "--limit", "1500"],
        ),
        (
            "lenet",
            &["--model", "lenet", "--epochs", "2", "--limit", "640"],
        ),
        (
            "lstm",
            &["--model", "lstm", "--epochs", "2", "--limit", "640"],
        ),
        (
            "dcgan",
            // --g-ema: the generator's moving average is saved and restored too.
            &[
                "--model", "dcgan", "--epochs", "2", "--limit", "256", "--g-ema",
            ],
        ),
        (
            "joint",
            // --augment: the moves are drawn from the saved noise stream;
            // 6 G steps: the lazy reconstruction term runs on steps 0 and 4.
            &[
                "--model",
                "joint",
                "--epochs",
                "2",
                "--limit",
                "192",
                "--augment",
            ],
        ),
    ];
    for (name, base) in models {
        for seed in [1u64, 2] {
            let s = seed.to_string();
            let args: Vec<&str> = base.iter().copied().chain(["--seed", &s]).collect();
            let reference = reference(d, &format!("{name}-{seed}"), &args);
            let tag = format!("{name}-seed{seed}-kill");
            stop_and_resume(d, &tag, &args, &reference, seed * 31, Stop::Kill);
            let (tag, stop) = if seed == 1 {
                (format!("{name}-seed{seed}-sigint"), Stop::Interrupt)
            } else {
                (format!("{name}-seed{seed}-sigterm"), Stop::Terminate)
            };
            stop_and_resume(d, &tag, &args, &reference, seed * 57, stop);
            if name == "mlp" {
                let tag = format!("{name}-seed{seed}-double-sigint");
                stop_and_resume(d, &tag, &args, &reference, seed * 73, Stop::DoubleInterrupt);
            }
        }
    }
}

/// Every other model `matnet train` offers, one seed each: SIGKILL at a
/// random moment, resume, compare bit for bit (seed-mlp's full-batch
/// iterations save after every step with `--save-every 0` too).
#[test]
fn every_other_model_resumes_bit_identical_after_a_kill() {
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let d = Some(data.as_os_str());
    let models: [(&str, &[&str]); 6] = [
        (
            "cnn",
            &["--model", "cnn", "--epochs", "2", "--limit", "384"],
        ),
        (
            "rnn",
            &["--model", "rnn", "--epochs", "2", "--limit", "640"],
        ),
        (
            "gru",
            &["--model", "gru", "--epochs", "2", "--limit", "640"],
        ),
        (
            "vit",
            &["--model", "vit", "--epochs", "2", "--limit", "640"],
        ),
        (
            "gan",
            &["--model", "gan", "--epochs", "2", "--limit", "640"],
        ),
        ("seed-mlp", &["--model", "seed-mlp", "--epochs", "40"]),
    ];
    for (name, args) in models {
        let args: Vec<&str> = args.iter().copied().chain(["--seed", "4"]).collect();
        let reference = reference(d, name, &args);
        let tag = format!("{name}-seed4-kill");
        stop_and_resume(d, &tag, &args, &reference, 4, Stop::Kill);
    }
}

/// The reverse task (no dataset) resumes exactly too.
#[test]
fn reverse_task_resumes_bit_identical() {
    let args = ["--task", "reverse", "--steps", "120", "--held-out", "20"];
    let reference = reference(None, "reverse", &args);
    stop_and_resume(None, "reverse-kill", &args, &reference, 5, Stop::Kill);
    stop_and_resume(
        None,
        "reverse-sigint",
        &args,
        &reference,
        6,
        Stop::Interrupt,
    );
    stop_and_resume(
        None,
        "reverse-sigterm",
        &args,
        &reference,
        7,
        Stop::Terminate,
    );
}

#[test]
fn a_second_train_into_a_run_directory_in_use_fails_at_once() {
    let data = dataset("lock", |_| {});
    let dir = run_dir("lock");
    let mut first = train(
        Some(data.as_os_str()),
        &["--model", "gan", "--epochs", "100000"],
        &dir,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    while !dir.join("state.safetensors").exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no state saved");
        std::thread::sleep(Duration::from_millis(10));
    }
    let start = Instant::now();
    let out = matnet(&[
        "train",
        "--model",
        "gan",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    first.kill().unwrap();
    first.wait().unwrap();
    let line = fails(&out);
    assert!(start.elapsed() < Duration::from_secs(10), "it waited");
    assert!(
        line.contains(&format!("run directory {} is in use", dir.display())),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_refuses_a_conflicting_flag_and_a_directory_without_state() {
    let data = dataset("conflict", |_| {});
    let dir = run_dir("conflict");
    let d = data.to_str().unwrap();
    let args = ["--model", "gan", "--epochs", "1", "--lr-d", "0.001"];
    finish(&mut train(Some(data.as_os_str()), &args, &dir));
    let resume = |extra: &[&str]| {
        let mut a = vec!["train", "--resume", dir.to_str().unwrap(), "--data", d];
        a.extend(extra);
        matnet(&a)
    };
    let line = fails(&resume(&["--lr-d", "0.002"]));
    assert!(line.contains("--lr-d 0.002"), "{line}");
    assert!(line.contains("(0.001"), "names the saved value: {line}");
    let line = fails(&resume(&["--seed", "4"]));
    assert!(line.contains("--seed 4") && line.contains("(0)"), "{line}");
    // The same value, and flags that do not change the numbers, are fine.
    let out = resume(&["--lr-d", "0.001", "--quiet", "--save-every", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let empty = run_dir("no-state");
    std::fs::create_dir_all(&empty).unwrap();
    let line = fails(&matnet(&["train", "--resume", empty.to_str().unwrap()]));
    assert!(line.contains("no training state to resume"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

/// `--resume DIR --epochs N` on an adversarial run (constant learning
/// rates) extends it: a 1-epoch run extended to 2 ends with the bits of a
/// 2-epoch run. It refuses to go below the epochs finished, and a
/// classifier (whose schedule depends on the length) refuses the change.
/// `--lr-drop-after` may be added on resume while it lies ahead.
#[test]
fn an_adversarial_run_extends_with_resume_and_epochs() {
    let data = dataset("extend", |_| {});
    let d = Some(data.as_os_str());
    let args = |epochs: &'static str| ["--model", "gan", "--epochs", epochs];
    let two = reference(d, "extend", &args("2"));
    let dir = run_dir("extend");
    finish(&mut train(d, &args("1"), &dir));
    let resume = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "--resume",
            dir.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--quiet",
        ];
        a.extend(extra);
        matnet(&a)
    };
    let out = resume(&["--epochs", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        outcome(&dir) == two.outcome,
        "gan extended from 1 to 2 epochs differs from a 2-epoch run"
    );
    let line = fails(&resume(&["--epochs", "1"]));
    assert!(
        line.contains("--epochs 1") && line.contains("finished 2 epochs"),
        "{line}"
    );

    // A learning-rate drop set on resume, after the epochs trained, gives
    // the run that had it from the start; it does act (the weights differ
    // from a constant-rate run); and it cannot be moved into the past.
    let drop = ["--model", "gan", "--epochs", "3", "--lr-drop-after", "2"];
    let with_drop = reference(d, "extend-drop", &drop);
    let constant = reference(d, "extend-constant", &args("3"));
    assert!(
        with_drop.outcome.0 != constant.outcome.0,
        "--lr-drop-after 2 left the weights of epoch 3 unchanged"
    );
    let out = resume(&["--epochs", "3", "--lr-drop-after", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        outcome(&dir) == with_drop.outcome,
        "gan extended to 3 epochs with a drop after 2 differs from the run that had it from the start"
    );
    let line = fails(&resume(&["--lr-drop-after", "1"]));
    assert!(
        line.contains("--lr-drop-after 1") && line.contains("trained 3 epochs"),
        "{line}"
    );

    let _ = std::fs::remove_dir_all(&dir);

    // A classifier needs more images than the small test set has.
    let Some(mnist) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let mlp = run_dir("extend-mlp");
    let mlp_args = ["--model", "mlp", "--epochs", "1", "--limit", "256"];
    finish(&mut train(Some(mnist.as_os_str()), &mlp_args, &mlp));
    let line = fails(&matnet(&[
        "train",
        "--resume",
        mlp.to_str().unwrap(),
        "--epochs",
        "2",
    ]));
    assert!(line.contains("--epochs 2 conflicts"), "{line}");
    let _ = std::fs::remove_dir_all(&mlp);
}
