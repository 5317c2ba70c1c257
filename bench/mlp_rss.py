"""Resident memory of `matnet train --model mlp --epochs 50` at the end of each
epoch (VmRSS from /proc), printed at epochs 1, 5, 10, ..., 50, and the ratio of
epoch 50 to epoch 5 (issue 13: autograd memory must not grow).

Usage: MATNET_DATA=path/to/mnist python3 bench/mlp_rss.py  (MATNET=binary, default
target/release/matnet; Linux only)."""
import subprocess, sys, re, os
p = subprocess.Popen([os.environ.get("MATNET", "target/release/matnet"),"train","--model","mlp","--epochs","50","--quiet","--out","/tmp/rss-mlp"],
    stdout=subprocess.PIPE, text=True, env=dict(os.environ, MATNET_DATA=os.environ.get("MATNET_DATA", "data/mnist")))
rss = {}
for line in p.stdout:
    m = re.match(r"epoch\s+(\d+):", line)
    if m:
        e = int(m.group(1))
        try:
            st = open(f"/proc/{p.pid}/status").read()
            v = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
        except Exception as ex:
            v = None
        rss[e] = v
        if e in (1, 5, 10, 20, 30, 40, 50): print(f"epoch {e}: VmRSS {v} kB | {line.strip()}", flush=True)
    elif line.startswith("done"): print(line.strip())
p.wait()
print(f"epoch 5: {rss[5]} kB, epoch 50: {rss[50]} kB, ratio {rss[50]/rss[5]:.4f}")
