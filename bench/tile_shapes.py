#!/usr/bin/env python3
"""How close can an AVX-512 GEMM microkernel get to the FMA peak on this CPU?

Writes a small Rust program into a temporary directory and runs it with
`cargo run --release`. The program times, on one core:

* the FMA peak: 12 independent chains of `vfmadd231ps zmm` (no loads);
* the k loop of register tiles of R rows x 16*V columns, written in inline
  assembly (so the compiler's scheduling is out of the picture), on packed
  panels small enough to stay in L1 (k = 256): per step, V vector loads of B,
  and per row one broadcast of A (`vbroadcastss`) and V FMAs into the row's
  accumulators, or, with "embedded", the A element as the FMA's broadcast
  memory operand (`{1to16}`) instead of a separate broadcast.

Every variant and the peak run in each of --rounds interleaved rounds; the
best of each is printed, with its share of the best peak. This is the
ceiling of a tile, with no packing, cache misses or C traffic: a whole
product runs below it. matnet's own 12x32 tile is timed the same way by
`matnet bench matmul` ("the avx512 tile alone on L1-resident panels").

Usage: python3 bench/tile_shapes.py [--rounds 7]
"""

import argparse
import os
import subprocess
import sys
import tempfile

# (name, rows R, vectors V per row, k steps unrolled U, embedded broadcast)
SHAPES = [
    ("12x32 (matnet's), unroll 1", 12, 2, 1, False),
    ("12x32, unroll 4", 12, 2, 4, False),
    ("14x32, unroll 2", 14, 2, 2, False),
    ("9x48, unroll 2", 9, 3, 2, False),
    ("8x48, unroll 1", 8, 3, 1, False),
    ("8x48, unroll 4", 8, 3, 4, False),
    ("6x64, unroll 2", 6, 4, 2, False),
    ("4x96, unroll 2", 4, 6, 2, False),
    ("12x32 embedded, unroll 2", 12, 2, 2, True),
    ("8x48 embedded, unroll 2", 8, 3, 2, True),
]
KC = 256


def tile_fn(index, rows, vecs, unroll, embedded):
    """One Rust function whose body is the tile's k loop in assembly."""
    acc = rows * vecs
    b_regs = [32 - vecs + v for v in range(vecs)]
    bcast = acc
    assert acc + (0 if embedded else 1) + vecs <= 32, "registers"
    asm = [f"vxorps zmm{i}, zmm{i}, zmm{i}" for i in range(acc)] + ["2:"]
    for u in range(unroll):
        for v in range(vecs):
            asm.append(f"vmovups zmm{b_regs[v]}, [{{b}} + {(u * vecs + v) * 64}]")
        for r in range(rows):
            a_off = (u * rows + r) * 4
            if embedded:
                for v in range(vecs):
                    asm.append(f"vfmadd231ps zmm{r * vecs + v}, zmm{b_regs[v]}, "
                               f"dword ptr [{{a}} + {a_off}]{{{{1to16}}}}")
            else:
                asm.append(f"vbroadcastss zmm{bcast}, dword ptr [{{a}} + {a_off}]")
                for v in range(vecs):
                    asm.append(f"vfmadd231ps zmm{r * vecs + v}, zmm{b_regs[v]}, zmm{bcast}")
    asm += [f"add {{a}}, {unroll * rows * 4}", f"add {{b}}, {unroll * vecs * 64}",
            "dec {n}", "jnz 2b"]
    body = ",\n        ".join(f'"{line}"' for line in asm)
    clobbers = ", ".join(f'out("zmm{i}") _' for i in range(32))
    return f"""
#[target_feature(enable = "avx512f")]
unsafe fn tile{index}(a: *const f32, b: *const f32, n: usize) {{
    unsafe {{
        std::arch::asm!(
        {body},
        a = inout(reg) a => _, b = inout(reg) b => _, n = inout(reg) n => _,
        {clobbers},
        options(nostack, readonly))
    }}
}}
"""


def program(rounds):
    fns = "".join(tile_fn(i, r, v, u, e) for i, (_, r, v, u, e) in enumerate(SHAPES))
    chains = ", ".join(f'"vfmadd231ps zmm{i}, zmm30, zmm31"' for i in range(12))
    clobbers = ", ".join(f'out("zmm{i}") _' for i in range(12))
    runs = ""
    for i, (_, rows, vecs, unroll, _) in enumerate(SHAPES):
        runs += f"""
        let reps = 100_000_000 / KC;
        let t = Instant::now();
        for _ in 0..reps {{ unsafe {{ tile{i}(a.as_ptr(), b.as_ptr(), KC / {unroll}) }} }}
        let g = (reps * KC * {rows * vecs * 16} * 2) as f64 / t.elapsed().as_secs_f64() / 1e9;
        best[{i + 1}] = best[{i + 1}].max(g);
"""
    names = ", ".join(f'"{n}"' for n, *_ in SHAPES)
    return f"""
use std::time::Instant;
const KC: usize = {KC};
{fns}
#[target_feature(enable = "avx512f")]
unsafe fn chains(n: usize) {{
    unsafe {{
        std::arch::asm!("2:", {chains}, "dec {{n}}", "jnz 2b",
            n = inout(reg) n => _, out("zmm30") _, out("zmm31") _, {clobbers})
    }}
}}
fn main() {{
    if !std::is_x86_feature_detected!("avx512f") {{
        println!("skipped: no avx512f");
        return;
    }}
    let names = [{names}];
    let a = vec![1.0f32; 16 * KC];
    let b = vec![0.5f32; 96 * KC];
    let mut best = [0.0f64; {len(SHAPES) + 1}];
    for _ in 0..{rounds} {{
        let n = 20_000_000usize;
        let t = Instant::now();
        unsafe {{ chains(n) }};
        best[0] = best[0].max((n * 12 * 32) as f64 / t.elapsed().as_secs_f64() / 1e9);
{runs}
    }}
    println!("FMA-chain peak, one core: {{:.1}} GFLOP/s", best[0]);
    println!("{{:<28}} {{:>8}} {{:>7}}", "tile (rows x columns)", "GFLOP/s", "% peak");
    for (name, g) in names.iter().zip(&best[1..]) {{
        println!("{{:<28}} {{:>8.1}} {{:>6.1}}%", name, g, 100.0 * g / best[0]);
    }}
}}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"cpu: {cpu}")
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "src"))
        with open(os.path.join(d, "Cargo.toml"), "w") as f:
            f.write('[package]\nname = "tile-shapes"\nversion = "0.1.0"\nedition = "2024"\n'
                    '[workspace]\n[profile.release]\nopt-level = 3\n')
        with open(os.path.join(d, "src", "main.rs"), "w") as f:
            f.write(program(args.rounds))
        r = subprocess.run(["cargo", "run", "--release", "-q"], cwd=d)
        sys.exit(r.returncode)


if __name__ == "__main__":
    main()
