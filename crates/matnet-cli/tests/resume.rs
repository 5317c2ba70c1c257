//! Resumable training: a run killed (SIGKILL) or interrupted (SIGINT) at a
//! random moment and resumed with `--resume` ends with the same weights,
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
/// save, then a random delay from `seed`, and returns the still-running child.
fn start_and_wait(c: &mut Command, dir: &Path, seed: u64, max_delay_ms: u64) -> Child {
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
    let delay = matnet::Rng::new(seed).below(max_delay_ms as usize + 1) as u64;
    std::thread::sleep(Duration::from_millis(delay));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished within {delay} ms of its first save: make it longer"
    );
    child
}

#[derive(Clone, Copy)]
enum Stop {
    Kill,
    Interrupt,
}

/// An uninterrupted run, then the same run stopped by `stop` at a random
/// moment and resumed: the same outcome, to the bit.
fn stop_and_resume(
    data: Option<&std::ffi::OsStr>,
    tag: &str,
    args: &[&str],
    reference: &Outcome,
    seed: u64,
    stop: Stop,
    max_delay_ms: u64,
) {
    let dir = run_dir(tag);
    let mut child = start_and_wait(&mut train(data, args, &dir), &dir, seed, max_delay_ms);
    match stop {
        Stop::Kill => child.kill().unwrap(),
        Stop::Interrupt => {
            let ok = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }
    let out = child.wait_with_output().unwrap();
    if let Stop::Interrupt = stop {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{err}");
        let want = format!(
            "interrupted: state saved; resume with: matnet train --resume {}",
            dir.display()
        );
        assert_eq!(err.trim(), want);
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
    assert_eq!(
        got.1, reference.1,
        "{tag}: metrics.csv differs ({resumed_at})"
    );
    for ((n, a), (_, b)) in got.0.iter().zip(&reference.0) {
        assert!(a == b, "{tag}: tensor {n} differs ({resumed_at})");
    }
    assert_eq!(got.0.len(), reference.0.len());
    println!("{tag}: identical after {resumed_at}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// For an MLP, a conv net, a recurrent net and a GAN, each for two seeds:
/// SIGKILL at a random moment after the first save, resume, compare with
/// the run that was never stopped; then the same after SIGINT.
#[test]
fn killed_or_interrupted_runs_resume_bit_identical() {
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    let d = Some(data.as_os_str());
    let models: [(&str, &[&str], u64); 4] = [
        (
            "mlp",
            &["--model", "mlp", "--epochs", "3", "--limit", "1500"],
            300,
        ),
        (
            "lenet",
            &["--model", "lenet", "--epochs", "2", "--limit", "640"],
            300,
        ),
        (
            "lstm",
            &["--model", "lstm", "--epochs", "2", "--limit", "640"],
            300,
        ),
        (
            "dcgan",
            &["--model", "dcgan", "--epochs", "2", "--limit", "256"],
            300,
        ),
    ];
    for (name, base, delay) in models {
        for seed in [1u64, 2] {
            let s = seed.to_string();
            let args: Vec<&str> = base.iter().copied().chain(["--seed", &s]).collect();
            let ref_dir = run_dir(&format!("{name}-{seed}-ref"));
            finish(&mut train(d, &args, &ref_dir));
            let reference = outcome(&ref_dir);
            let tag = format!("{name}-seed{seed}-kill");
            stop_and_resume(d, &tag, &args, &reference, seed * 31, Stop::Kill, delay);
            if seed == 1 {
                let tag = format!("{name}-seed{seed}-sigint");
                stop_and_resume(
                    d,
                    &tag,
                    &args,
                    &reference,
                    seed * 57,
                    Stop::Interrupt,
                    delay,
                );
            }
            let _ = std::fs::remove_dir_all(&ref_dir);
        }
    }
}

/// The reverse task (no dataset) resumes exactly too.
#[test]
fn reverse_task_resumes_bit_identical() {
    let args = ["--task", "reverse", "--steps", "120", "--held-out", "20"];
    let ref_dir = run_dir("reverse-ref");
    finish(&mut train(None, &args, &ref_dir));
    let reference = outcome(&ref_dir);
    stop_and_resume(None, "reverse-kill", &args, &reference, 5, Stop::Kill, 200);
    stop_and_resume(
        None,
        "reverse-sigint",
        &args,
        &reference,
        6,
        Stop::Interrupt,
        200,
    );
    let _ = std::fs::remove_dir_all(&ref_dir);
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
