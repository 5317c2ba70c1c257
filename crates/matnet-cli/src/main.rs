//! `matnet`: train, evaluate and run neural networks on MNIST-format data
//! from the command line, built on the `matnet` library's public API.

mod adversarial;
mod bench;
mod bench_gan;
mod chart;
mod evaluate;
mod explain;
mod gan_score;
mod gan_train;
mod generate;
mod inspect;
mod joint_train;
mod predict;
mod recipe;
mod reverse;
mod samples;
mod serve;
mod state;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Buffers of 4 MiB and more (large operands) on 2 MiB pages: see
/// [`matnet::alloc`].
#[global_allocator]
static ALLOC: matnet::alloc::HugePageAlloc = matnet::alloc::HugePageAlloc;

const WELCOME: &str = "\
matnet: neural networks as matrix operations.

First steps:
  matnet download mnist              fetch MNIST into the cache (needs internet)
  matnet train                       train the default MLP on MNIST and evaluate it
  matnet eval --checkpoint runs/mlp/model.safetensors
  matnet predict --checkpoint runs/mlp/model.safetensors digit.png
  matnet explain --model seed-mlp    print the matrix products of one training step

Already have the four MNIST files? Point at them with --data DIR or MATNET_DATA=DIR.
Run `matnet help <command>` for the options of each command.";

#[derive(Parser)]
#[command(name = "matnet", version, about = "Neural networks as matrix operations", before_help = WELCOME)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model, evaluate it on the test set, and save checkpoint, metrics and chart.
    // Boxed: the training flags are most of the enum's size.
    Train(Box<train::TrainArgs>),
    /// Evaluate a checkpoint: accuracy, per-class accuracy, confusion matrix.
    Eval(evaluate::EvalArgs),
    /// Classify a PNG image of a digit (any size, colour or grey, light or dark background).
    Predict(predict::PredictArgs),
    /// Draw a conv net's first-layer filters and its feature maps for one image, as PNGs.
    Inspect(inspect::InspectArgs),
    /// Print the matrix operations of one forward and backward pass, with shapes, FLOPs and time.
    Explain(explain::ExplainArgs),
    /// Write digits with a GAN checkpoint: a PNG grid, a folder of PNGs or an IDX file.
    Generate(generate::GenerateArgs),
    /// Score generated 28×28 digits (IDX file, PNG folder or PNG grid): FID,
    /// Inception Score, precision/recall and class shares, beside real MNIST.
    GanScore(gan_score::GanScoreArgs),
    /// Serve checkpoints over HTTP: a JSON API and a page to draw digits on
    /// and watch every matrix of the network respond.
    Serve(serve::ServeArgs),
    /// Download a dataset into the cache directory and verify its checksums.
    Download {
        /// Dataset to fetch (mnist).
        dataset: String,
        /// Directory to write to (default: the cache directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Measure kernel speed.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let Some(command) = cli.command else {
        println!("{WELCOME}");
        return ExitCode::SUCCESS;
    };
    let result = match command {
        Command::Train(mut args) => {
            if let Some(m) = matches.subcommand_matches("train") {
                args.explicit = state::explicit_flags(m);
            }
            train::run(*args)
        }
        Command::Eval(args) => evaluate::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Generate(args) => generate::run(args),
        Command::GanScore(args) => gan_score::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Download { dataset, dir } => download(&dataset, dir),
        Command::Bench { what } => bench::run(what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<state::Interrupted>() => {
            eprintln!("{e}");
            let code = e
                .downcast_ref::<state::Interrupted>()
                .map_or(130, |i| i.code);
            ExitCode::from(code)
        }
        Err(e) => {
            // One clear line (with its causes), never a panic trace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The dataset directory: `--data`, `MATNET_DATA`, or the cache. For a user
/// who gave neither and has no files yet, MNIST is downloaded on first use.
pub fn locate_data(
    explicit: Option<&std::path::Path>,
    kind: matnet::data::DatasetKind,
) -> anyhow::Result<PathBuf> {
    use matnet::data::Split;
    locate_splits(explicit, kind, &[Split::Train, Split::Test])
}

/// [`locate_data`] needing only the files of `splits`.
pub fn locate_splits(
    explicit: Option<&std::path::Path>,
    kind: matnet::data::DatasetKind,
    splits: &[matnet::data::Split],
) -> anyhow::Result<PathBuf> {
    let mut downloading = false;
    let dir = matnet::data::locate_splits_or_download(
        explicit,
        kind,
        splits,
        |dest| {
            downloading = true;
            println!(
                "MNIST is not in {} yet: downloading it (first use only)",
                dest.display()
            );
        },
        print_progress,
    );
    if downloading {
        eprintln!();
    }
    Ok(dir?)
}

fn print_progress(name: &str, done: u64, total: Option<u64>) {
    match total {
        Some(t) => eprint!("\r  {name}: {done}/{t} bytes"),
        None => eprint!("\r  {name}: {done} bytes"),
    }
}

fn download(dataset: &str, dir: Option<PathBuf>) -> anyhow::Result<()> {
    use matnet::data::{DatasetKind, download_mnist, resolve_data_dir};
    let kind: DatasetKind = dataset.parse()?;
    anyhow::ensure!(
        kind == DatasetKind::Mnist,
        "only mnist can be downloaded; Fashion-MNIST comes from Debian's dataset-fashion-mnist package"
    );
    let dest = dir.unwrap_or_else(|| resolve_data_dir(None, kind));
    println!("downloading MNIST into {}", dest.display());
    download_mnist(&dest, print_progress)?;
    eprintln!();
    println!("done: four files verified in {}", dest.display());
    Ok(())
}
