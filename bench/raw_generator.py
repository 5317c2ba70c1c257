#!/usr/bin/env python3
"""raw_generator.py RUN_DIR PREFIX OUT: a copy of RUN_DIR/model.safetensors whose
generator.* tensors are the raw (not averaged) weights of the run's training state
(state.safetensors, tensors PREFIX.generator.*), for scoring both from one run."""
import json, struct, sys
run, prefix, out = sys.argv[1:4]
def read(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    return b, json.loads(b[8:8 + n]), 8 + n
mb, mh, mo = read(f"{run}/model.safetensors")
sb, sh, so = read(f"{run}/state.safetensors")
buf = bytearray(mb)
count = 0
for name, info in mh.items():
    if not name.startswith("generator."):
        continue
    src = sh[f"{prefix}.{name}"]
    assert src["shape"] == info["shape"] and src["dtype"] == info["dtype"] == "F32", name
    a, b = info["data_offsets"]; c, d = src["data_offsets"]
    assert b - a == d - c
    buf[mo + a:mo + b] = sb[so + c:so + d]
    count += 1
open(out, 'wb').write(bytes(buf))
print(f"{count} generator tensors replaced")
