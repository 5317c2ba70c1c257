//! `matnet serve` end to end: the API on every architecture, bad requests,
//! and the page in headless Chromium.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use matnet::models::{Arch, Classifier, Gan, GanConfig, ModelConfig};
use serde_json::{Value, json};

/// A running `matnet serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Serves `checkpoints` (and nothing from a `runs` directory) on a free
    /// loopback port.
    fn start(checkpoints: &[&Path]) -> Server {
        let empty = std::env::temp_dir().join(format!("matnet-serve-none-{}", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_matnet"));
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--workers", "2", "--runs"])
            .arg(&empty);
        for c in checkpoints {
            cmd.arg("--checkpoint").arg(c);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("matnet serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("matnet serve printed its address")
                .unwrap();
            if let Some(rest) = line.strip_prefix("listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    /// POSTs `body` with `content_type`; returns the status and the JSON answer.
    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let mut r = Self::agent()
            .post(format!("{}{path}", self.url))
            .content_type(content_type)
            .send(body)
            .expect("the server answers");
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON ({e}): {text}"));
        (status, json)
    }

    fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post(path, "application/json", body.to_string().as_bytes())
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = Self::agent()
            .get(format!("{}{path}", self.url))
            .call()
            .expect("the server answers");
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("matnet-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A freshly initialised classifier of `arch`, saved.
fn classifier(arch: Arch) -> PathBuf {
    let path = temp(&format!("{}.safetensors", arch.name()));
    let mut config = ModelConfig::for_mnist(arch);
    if arch == Arch::Mlp {
        config.hidden = vec![16];
    }
    Classifier::new(config, 1)
        .unwrap()
        .save(&path, BTreeMap::new())
        .unwrap();
    path
}

/// A vertical bar, as grey levels in [0, 1].
fn bar() -> Vec<f32> {
    (0..784)
        .map(|i| {
            if (13..15).contains(&(i % 28)) && (4..24).contains(&(i / 28)) {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn kinds(answer: &Value) -> Vec<String> {
    answer["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The first activation of `kind` in an explain answer.
fn activation<'a>(answer: &'a Value, kind: &str) -> &'a Value {
    let acts = answer["activations"].as_array().unwrap();
    acts.iter().find(|a| a["kind"] == kind).unwrap()
}

#[test]
fn every_architecture_predicts_and_explains() {
    let archs = [
        Arch::Mlp,
        Arch::SeedMlp,
        Arch::Lenet,
        Arch::Lstm,
        Arch::Gru,
        Arch::Vit,
    ];
    let paths: Vec<PathBuf> = archs.iter().map(|&a| classifier(a)).collect();
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let server = Server::start(&refs);
    let (status, models) = server.get("/api/models");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models.as_array().unwrap().len(), archs.len(), "{models}");
    for arch in archs {
        let name = arch.name();
        let (status, p) =
            server.post_json("/api/predict", &json!({"model": name, "pixels": bar()}));
        assert_eq!(status, 200, "{name}: {p}");
        let probs: Vec<f64> = serde_json::from_value(p["probabilities"].clone()).unwrap();
        assert_eq!(probs.len(), 10);
        assert!(
            (probs.iter().sum::<f64>() - 1.0).abs() < 1e-4,
            "{name}: {probs:?}"
        );
        let (status, e) =
            server.post_json("/api/explain", &json!({"model": name, "pixels": bar()}));
        assert_eq!(status, 200, "{name}: {e}");
        assert_eq!(e["probabilities"], p["probabilities"], "{name}");
        let kinds = kinds(&e);
        assert_eq!(kinds[0], "image");
        let input: Vec<f32> = serde_json::from_value(e["activations"][0]["data"].clone()).unwrap();
        assert_eq!(input, bar());
        // Every parameter comes back with its shape.
        let weights = e["weights"].as_array().unwrap();
        assert!(!weights.is_empty(), "{name}");
        for w in weights {
            let n: u64 = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product();
            assert_eq!(
                n as usize,
                w["data"].as_array().unwrap().len(),
                "{name}: {}",
                w["name"]
            );
        }
        let expect = match arch {
            Arch::Lenet => "maps",
            Arch::Lstm | Arch::Gru => "sequence",
            Arch::Vit => "attention",
            _ => "vector",
        };
        assert!(kinds.iter().any(|k| k == expect), "{name}: {kinds:?}");
        if matches!(arch, Arch::Lstm | Arch::Gru) {
            let seq = activation(&e, "sequence");
            assert_eq!(seq["shape"][0], 28, "{name}: one hidden state per row");
        }
        if arch == Arch::Vit {
            let att = activation(&e, "attention");
            assert_eq!(att["shape"], json!([4, 16, 16]));
            let rows: Vec<f32> = serde_json::from_value(att["data"].clone()).unwrap();
            for row in rows.chunks(16) {
                assert!(
                    (row.iter().sum::<f32>() - 1.0).abs() < 1e-4,
                    "attention rows sum to 1"
                );
            }
        }
        let (_, lean) = server.post_json(
            "/api/explain",
            &json!({"model": name, "pixels": bar(), "weights": false}),
        );
        assert_eq!(lean["weights"], json!([]));
    }
    // The page and its script are served from the binary.
    let (status, html) = server.get("/");
    assert!(status == 200 && html.contains("<canvas id=\"pad\""));
    let (status, js) = server.get("/page.js");
    assert!(status == 200 && js.contains("/api/explain"));
}

#[test]
fn gans_generate_digits_and_walk_latent_space() {
    let path = temp("cgan.safetensors");
    let gan = Gan::new(GanConfig::for_mnist(Arch::Gan, true), 2).unwrap();
    gan.save(&path, BTreeMap::new()).unwrap();
    let server = Server::start(&[&path]);
    let (status, g) =
        server.post_json("/api/generate", &json!({"seed": 5, "count": 3, "digit": 7}));
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["labels"], json!([7, 7, 7]));
    let images = g["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    assert!(images.iter().all(|i| i.as_array().unwrap().len() == 784));
    // The walk starts at seed 5's first noise vector and ends at seed 9's.
    let walk = |t: Vec<f32>| {
        server
            .post_json(
                "/api/generate",
                &json!({"seed": 5, "digit": 7, "interpolate": {"to": 9, "t": t}}),
            )
            .1
    };
    let ends = walk(vec![0.0, 0.5, 1.0]);
    let one = |seed: u64| {
        server
            .post_json(
                "/api/generate",
                &json!({"seed": seed, "count": 1, "digit": 7}),
            )
            .1
    };
    assert_eq!(ends["images"][0], one(5)["images"][0]);
    assert_eq!(ends["images"][2], one(9)["images"][0]);
    assert_ne!(ends["images"][1], ends["images"][0]);
    for (body, want) in [
        (json!({"digit": 10}), "below 10"),
        (json!({"count": 0}), "count"),
        (json!({"count": 100000}), "count"),
        (json!({"interpolate": {"to": 1, "t": [1.5]}}), "outside"),
        (json!({"model": "nope"}), "no model"),
        (json!({"steps": 3}), "unknown field"),
    ] {
        let (status, e) = server.post_json("/api/generate", &body);
        assert!((400..500).contains(&status), "{body}: {status}");
        assert!(e["error"].as_str().unwrap().contains(want), "{body}: {e}");
    }
    // A GAN is not a classifier.
    let (status, _) = server.post_json("/api/predict", &json!({"model": "cgan", "pixels": bar()}));
    assert_eq!(status, 400);
}

/// Sends a 100 MB body and returns the status line of the answer, read
/// while the body is still being written (the server answers once it has
/// seen more than its cap, then closes).
fn post_100mb(url: &str) -> String {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let len = 100 << 20;
    let head = format!(
        "POST /api/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..100 {
            if writer.write_all(&chunk).is_err() {
                break; // the server stopped reading: expected
            }
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(2).any(|w| w == b"}\n") || answer.ends_with(b"}") {
            break;
        }
    }
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn bad_requests_get_a_4xx_and_the_server_keeps_answering() {
    let path = classifier(Arch::Mlp);
    let server = Server::start(&[&path]);
    let png = {
        let mut bytes = Vec::new();
        let img = image::GrayImage::from_fn(56, 56, |x, y| {
            image::Luma([if (26..30).contains(&x) && (8..48).contains(&y) {
                255
            } else {
                0
            }])
        });
        image::DynamicImage::ImageLuma8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageOutputFormat::Png,
            )
            .unwrap();
        bytes
    };
    let (status, ok) = server.post("/api/predict", "image/png", &png);
    assert_eq!(status, 200, "{ok}");
    let mut nan = json!({"pixels": bar()}).to_string();
    nan = nan.replacen("0.0", "NaN", 1);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "truncated PNG",
            "image/png",
            png[..png.len() / 2].to_vec(),
            400,
            "PNG",
        ),
        ("not a PNG", "image/png", b"GIF89a".to_vec(), 400, "PNG"),
        (
            "malformed JSON",
            "application/json",
            b"{\"pixels\": [0, 1".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "NaN float",
            "application/json",
            nan.into_bytes(),
            400,
            "malformed JSON",
        ),
        (
            "NaN as a string",
            "application/json",
            br#"{"pixels": ["NaN"]}"#.to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "overflowing float",
            "application/json",
            json!({"pixels": vec![1e39; 784]}).to_string().into_bytes(),
            400,
            // serde_json's exact float parsing refuses a value past f32.
            "number out of range",
        ),
        (
            "out of range",
            "application/json",
            json!({"pixels": vec![2.0; 784]}).to_string().into_bytes(),
            400,
            "[0, 1]",
        ),
        (
            "wrong length",
            "application/json",
            json!({"pixels": vec![0.5; 10]}).to_string().into_bytes(),
            400,
            "784",
        ),
        (
            "unknown model",
            "application/json",
            json!({"model": "nope", "pixels": bar()})
                .to_string()
                .into_bytes(),
            404,
            "no model",
        ),
        (
            "unknown field",
            "application/json",
            json!({"pixel": bar()}).to_string().into_bytes(),
            400,
            "unknown field",
        ),
        (
            "empty body",
            "application/json",
            Vec::new(),
            400,
            "malformed JSON",
        ),
    ];
    for (what, ct, body, want, text) in cases {
        for endpoint in ["/api/predict", "/api/explain"] {
            let (status, e) = server.post(endpoint, ct, &body);
            assert_eq!(status, want, "{what} at {endpoint}: {e}");
            let msg = e["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no error field: {e}"));
            assert!(msg.contains(text), "{what}: {msg}");
        }
    }
    let answer = post_100mb(&server.url);
    assert!(answer.starts_with("HTTP/1.1 413"), "100 MB body: {answer}");
    assert!(
        answer.contains(r#"{"error":"request body over"#),
        "{answer}"
    );
    let (status, e) = server.post_json("/api/nowhere", &json!({}));
    assert_eq!((status, e["error"].is_string()), (404, true));
    // Still answering, with the same numbers as before.
    let (status, again) = server.post("/api/predict", "image/png", &png);
    assert_eq!((status, &again), (200, &ok));
}

/// Why the browser test cannot run here, if it cannot.
fn browser_missing(dir: &Path) -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("chromium not installed (apt-get install chromium)".into());
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node not installed".into());
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Some(format!(
            "playwright-core missing (npm ci in {})",
            dir.display()
        ));
    }
    None
}

#[test]
fn the_page_classifies_a_drawn_one_and_draws_every_matrix() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = browser_missing(&dir) {
        println!("skipped: {why}");
        return;
    }
    let Some(data) = common::mnist_data("train-images-idx3-ubyte.gz") else {
        return;
    };
    // One epoch on 5,000 digits: about a second, and it reads a bar as a 1.
    let run = temp("browser-run");
    common::train(
        &data,
        &run,
        &["--model", "mlp", "--epochs", "1", "--limit", "5000"],
    );
    let server = Server::start(&[&run.join("model.safetensors")]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-browser");
    let out = Command::new("node")
        .arg(dir.join("drive.mjs"))
        .arg(format!("{}/", server.url))
        .arg(&shots)
        .arg("1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    println!("{result}");
    assert_eq!(result["errors"], json!([]), "page errors");
    assert_eq!(result["predicted"], "1", "{result}");
    assert_eq!(result["top"], "1");
    assert!(
        result["updatesWhileDrawing"].as_u64().unwrap() >= 2,
        "bars update while drawing"
    );
    let views = result["views"].as_array().unwrap();
    let count = |section: &str| views.iter().filter(|v| v["section"] == section).count();
    // The input and each layer's output; a weight and a bias per Linear.
    assert!(
        count("activations") >= 4 && count("weights") >= 4,
        "{views:?}"
    );
    let blank: Vec<&Value> = views
        .iter()
        .filter(|v| v["nonBlank"] != true && !v["name"].as_str().unwrap().ends_with("bias"))
        .collect();
    assert!(blank.is_empty(), "blank views: {blank:?}");
    assert!(shots.join("serve-draw.png").is_file());
}
