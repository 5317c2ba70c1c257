//! `matnet serve`: trained checkpoints behind a JSON API, and a page that
//! draws the network as its matrices while the user draws a digit.
//!
//! Limits: request bodies over [`MAX_BODY`] bytes get a 413 before the
//! rest is read; every request has a time limit (`--timeout`); inference
//! runs on a fixed pool of threads ([`pool::Pool`]). Every failure is a
//! JSON `{"error": "..."}` with a 4xx (the request) or 5xx (the server).

mod api;
mod pool;
mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use matnet::models::{self, Arch, Model};
use matnet::nn::Module;
use serde::{Deserialize, Serialize};

use api::{GenerateRequest, Input, InputRequest};
use pool::Pool;

/// Largest request body accepted: a 280×280 PNG or 784 floats as JSON are
/// a few kB; 1 MiB leaves room for large photographs.
pub const MAX_BODY: usize = 1 << 20;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A checkpoint to serve (repeatable); named after its run directory,
    /// or its file name when that is not `model.safetensors`.
    #[arg(long)]
    pub checkpoint: Vec<PathBuf>,
    /// Also serve every `model.safetensors` under this directory, each
    /// named by its run directory.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Inference threads [default: the number of cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Time limit for one request, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

/// A request's failure as HTTP: a status and a one-line message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed or its values are out of range.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such model or path.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: no capacity now.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: the server failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (
            self.status,
            Json(Body {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// What `GET /api/models` says about one served model.
#[derive(Serialize, Clone)]
struct ModelInfo {
    name: String,
    /// `classifier` or `gan`.
    kind: &'static str,
    arch: String,
    description: String,
    parameters: usize,
    rows: usize,
    cols: usize,
    classes: usize,
    /// GANs: whether it takes a digit.
    conditional: bool,
    checkpoint: String,
}

struct App {
    pool: Pool,
    models: Vec<ModelInfo>,
    /// Served names in listing order (the default model is the first that fits).
    order: Arc<Vec<String>>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout > 0.0,
        "--timeout must be a positive number of seconds"
    );
    let found = discover(&args.checkpoint, &args.runs)?;
    let mut models = Vec::new();
    let mut served = Vec::new();
    for (name, path) in found {
        match describe(&name, &path)? {
            Some(info) => {
                models.push(info);
                served.push((name, path));
            }
            None => eprintln!("skipping {}: not an image model", path.display()),
        }
    }
    if served.is_empty() {
        bail!(
            "no models to serve: give --checkpoint FILE, or train one into {} (matnet train)",
            args.runs.display()
        );
    }
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = Pool::start(&served, workers)?;
    let app = Arc::new(App {
        pool,
        order: Arc::new(served.iter().map(|(n, _)| n.clone()).collect()),
        models,
    });
    let limit = Duration::from_secs_f64(args.timeout);
    let router = Router::new()
        .route(
            "/",
            get(|| async { page(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/page.js",
            get(|| async { page(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route("/api/models", get(list_models))
        .route("/api/predict", post(predict))
        .route("/api/explain", post(explain))
        .route("/api/generate", post(generate))
        .fallback(|| async { ApiError::not_found("no such path") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(move |req, next| {
            time_limit(limit, req, next)
        }))
        .with_state(app.clone());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        for m in &app.models {
            println!("serving {} ({}, {})", m.name, m.arch, m.checkpoint);
        }
        println!("listening on http://{addr} ({workers} inference threads)");
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("server failed")
    })
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Ends any request (reading its body included) that runs past `limit`.
async fn time_limit(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(format!(
            "the request took longer than {:.1} s",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// The checkpoints to serve: `(name, path)`, names unique.
fn discover(explicit: &[PathBuf], runs: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for path in explicit {
        anyhow::ensure!(path.is_file(), "{}: no such checkpoint", path.display());
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        let dir = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str());
        let name = match (stem, dir) {
            ("model", Some(d)) => d.to_string(),
            _ => stem.to_string(),
        };
        found.push((name, path.clone()));
    }
    if runs.is_dir() {
        let mut files = Vec::new();
        walk(runs, 0, &mut files)?;
        files.sort();
        for path in files {
            let dir = path.parent().unwrap_or(runs);
            let rel = dir.strip_prefix(runs).unwrap_or(dir);
            let name = rel.to_string_lossy().replace('\\', "/");
            let name = if name.is_empty() {
                "model".into()
            } else {
                name
            };
            if !found.iter().any(|(_, p)| same_file(p, &path)) {
                found.push((name, path));
            }
        }
    }
    // Two runs of the same name (from --checkpoint and --runs) get -2, -3, ...
    let mut names: Vec<String> = Vec::new();
    for (name, _) in found.iter_mut() {
        let base = name.clone();
        let mut k = 2;
        while names.contains(name) {
            *name = format!("{base}-{k}");
            k += 1;
        }
        names.push(name.clone());
    }
    Ok(found)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Every `model.safetensors` below `dir`, a few levels deep.
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    const MAX_DEPTH: usize = 4;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth < MAX_DEPTH {
            walk(&path, depth + 1, out)?;
        } else if path.file_name().is_some_and(|n| n == "model.safetensors") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads the checkpoint once to check it and describe it; `None` for a
/// model that takes no images (the reverse-task transformer).
fn describe(name: &str, path: &Path) -> anyhow::Result<Option<ModelInfo>> {
    let model = models::load(path)?;
    let parameters = model.num_parameters();
    let description = model.describe();
    let checkpoint = path.display().to_string();
    let (kind, arch, rows, cols, classes, conditional) = match &model {
        Model::Classifier(c) => {
            let k = &c.config;
            ("classifier", k.arch, k.rows, k.cols, k.classes, false)
        }
        Model::Gan(g) => {
            let k = &g.config;
            ("gan", k.arch, k.rows, k.cols, k.classes, k.conditional)
        }
        // The class head serves predict and explain; generation from a
        // joint checkpoint is `matnet generate`'s for now.
        Model::Joint(j) => {
            let k = &j.config;
            ("classifier", Arch::Joint, k.rows, k.cols, k.classes, false)
        }
        Model::Reverser(_) => return Ok(None),
    };
    Ok(Some(ModelInfo {
        name: name.to_string(),
        kind,
        arch: arch.name().to_string(),
        description,
        parameters,
        rows,
        cols,
        classes,
        conditional,
        checkpoint,
    }))
}

async fn list_models(State(app): State<Arc<App>>) -> Json<Vec<ModelInfo>> {
    Json(app.models.clone())
}

#[derive(Deserialize)]
struct ModelQuery {
    model: Option<String>,
}

fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(e.status(), format!("request body over {MAX_BODY} bytes"))
    } else {
        ApiError::new(e.status(), e.body_text())
    }
}

/// The body of a predict or explain request: a PNG (by its content type or
/// its first bytes; the model from `?model=`) or a JSON [`InputRequest`].
fn read_input(
    headers: &HeaderMap,
    query: Result<Query<ModelQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Option<String>, Input, Option<bool>), ApiError> {
    let body = body.map_err(body_error)?;
    let query = query.map_err(|e| ApiError::bad(e.body_text()))?.0;
    let png_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("image/png"));
    if png_type || body.starts_with(b"\x89PNG") {
        return Ok((query.model, Input::Png(body.to_vec()), None));
    }
    let req: InputRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))?;
    Ok((
        req.model.or(query.model),
        Input::Pixels(req.pixels),
        req.weights,
    ))
}

async fn predict(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ModelQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Prediction>, ApiError> {
    let (model, input, _) = read_input(&headers, query, body)?;
    let order = app.order.clone();
    let answer = app
        .pool
        .run(move |models| api::predict(models, &order, model.as_deref(), input))
        .await?;
    Ok(Json(answer))
}

async fn explain(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ModelQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Explained>, ApiError> {
    let (model, input, weights) = read_input(&headers, query, body)?;
    let order = app.order.clone();
    let weights = weights.unwrap_or(true);
    let answer = app
        .pool
        .run(move |models| api::explain_input(models, &order, model.as_deref(), input, weights))
        .await?;
    Ok(Json(answer))
}

async fn generate(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Generated>, ApiError> {
    let body = body.map_err(body_error)?;
    let req: GenerateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))?;
    let order = app.order.clone();
    let answer = app
        .pool
        .run(move |models| api::generate_images(models, &order, req))
        .await?;
    Ok(Json(answer))
}
