//! `matnet explain`: one training step's ops, each with its matrix form and
//! FLOP count, for every model the CLI trains.

use std::process::Command;

/// One table row: op name, the matrices text and the FLOPs column.
struct Row {
    op: String,
    text: String,
    flops: String,
}

/// Runs `matnet explain` on a batch of 2 and returns its table rows (in
/// order) and the whole output.
fn explain(model: &str) -> (Vec<Row>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matnet"))
        .args(["explain", "--model", model, "--batch-size", "2"])
        .output()
        .expect("the matnet binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "explain --model {model} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = stdout
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<usize>().is_ok())
        })
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // `# op matrices... FLOPs time share`
            let n = words.len();
            assert!(n >= 6, "short row: {l}");
            Row {
                op: words[1].to_string(),
                text: words[2..n - 3].join(" "),
                flops: words[n - 3].to_string(),
            }
        })
        .collect();
    (rows, stdout)
}

fn rows_of<'a>(rows: &'a [Row], op: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.op == op).collect()
}

#[test]
fn every_model_explains_every_op() {
    for model in ["seed-mlp", "mlp", "lenet", "cnn", "lstm", "vit", "joint"] {
        let (rows, out) = explain(model);
        assert!(rows.len() > 10, "{model}: too few rows:\n{out}");
        assert!(out.contains("\nforward\n") && out.contains("\nbackward (reverse order)\n"));
        let total = out.lines().last().unwrap();
        assert!(total.starts_with("total: "), "{model}: {total}");
        for r in &rows {
            assert!(!r.text.is_empty(), "{model}: {} has no description", r.op);
            assert!(!r.flops.starts_with('-'), "{model}: {}: {}", r.op, r.flops);
        }
    }
}

#[test]
fn matmul_flops_are_two_m_k_n() {
    let (rows, out) = explain("mlp");
    let mm = rows_of(&rows, "matmul");
    // 2·2·784·512 = 1,605,632 for X[2×784] · W1ᵀ[784×512].
    assert_eq!(
        mm[0].text, "t1[2×512] = X[2×784] · 0.weightᵀ[784×512]",
        "{out}"
    );
    assert_eq!(mm[0].flops, "1.6M");
    // Backward of the first layer: only grad_W (X needs none), the same 1.6M.
    let last = mm.last().unwrap();
    assert_eq!(
        last.text,
        "grad_0.weightᵀ[784×512] = Xᵀ[784×2] · grad_t1[2×512]"
    );
    assert_eq!(last.flops, "1.6M");
}

#[test]
fn conv_is_counted_as_its_gemm() {
    let (rows, out) = explain("lenet");
    let conv = rows_of(&rows, "conv2d");
    assert_eq!(conv.len(), 4, "{out}");
    // Forward: 2·(N·C_out·H·W)·(C_in·kh·kw) = 2·(2·6·28·28)·25 and
    // 2·(2·16·10·10)·150, plus one add per output for the bias (9,408 and
    // 3,200), which rides in the same op.
    assert!(
        conv[0]
            .text
            .contains("= 1.weight[6×1×5×5] · im2col(X[2×1×28×28]) + 1.bias[6] per channel"),
        "{out}"
    );
    assert_eq!(conv[0].flops, "479.8k");
    assert_eq!(conv[1].flops, "963.2k");
    // Backward of the second: grad_x and grad_W, one GEMM's worth each,
    // and grad_b from the weight gradient's pass.
    assert!(
        conv[2]
            .text
            .contains("(conv_transpose2d); grad_4.weight = Σ_images")
    );
    assert!(conv[2].text.contains("; grad_4.bias = Σ_images,pixels"));
    assert_eq!(conv[2].flops, "1.9M");
    // The first convolution's input needs no gradient.
    assert!(conv[3].text.starts_with("grad_1.weight = Σ_images"));
    assert_eq!(conv[3].flops, "479.8k");
}

#[test]
fn lstm_layer_is_counted_as_its_recurrent_products() {
    let (rows, out) = explain("lstm");
    let lstm = rows_of(&rows, "lstm_layer");
    assert_eq!(lstm.len(), 2, "{out}");
    // 2·T·N·4H·H + 10·T·N·H + T·N·4H (the bias) = 2·28·2·512·128 +
    // 10·28·2·128 + 28·2·512 = 7,440,384.
    assert!(lstm[0].text.contains("LSTM over time"));
    assert!(
        lstm[0].text.contains("+ t"),
        "the bias is added inside: {out}"
    );
    assert_eq!(lstm[0].flops, "7.4M");
    // Backward: the gate sweep and grad_W_hh each cost 7,411,712, the bias
    // sum T·N·4H = 28,672; h0, c0 nothing: 14,852,096.
    assert!(lstm[1].text.contains("state gradient at t = 0"));
    assert!(lstm[1].text.contains("(the bias)"), "{out}");
    assert_eq!(lstm[1].flops, "14.9M");
}

#[test]
fn joint_lists_its_convolutions_recurrence_and_attention() {
    let (rows, out) = explain("joint");
    for op in ["conv2d", "lstm_layer", "matmul", "softmax"] {
        assert!(!rows_of(&rows, op).is_empty(), "joint: no {op}:\n{out}");
    }
    // Attention's Q·Kᵀ and A·V per head, forward and backward, besides the
    // linear layers: many products.
    assert!(rows_of(&rows, "matmul").len() >= 6, "{out}");
    assert!(out.contains("discriminator.rnn.weight_ih_l0"), "{out}");
}
