#!/usr/bin/env python3
"""An independent check of `matnet gan-score`: the same scores (FID, Inception
Score, k-NN precision and recall with k = 3) from PyTorch and numpy in float64,
with the committed scoring classifier's weights read from its safetensors file.

Usage: python3 bench/gan_score_reference.py SAMPLES-idx3-ubyte[.gz] [--data DIR]
(DIR holds the MNIST test images; default $MATNET_DATA). u8 IDX samples only.
"""
import argparse, os
import gzip, struct, numpy as np, torch, torch.nn.functional as F
import json
def load_file(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = torch.tensor(np.frombuffer(b[8+n+s:8+n+e], dtype='<f4').reshape(v['shape']).copy())
    return out
torch.set_num_threads(1)
ap = argparse.ArgumentParser(); ap.add_argument('samples'); ap.add_argument('--data', default=os.environ.get('MATNET_DATA'))
args = ap.parse_args()
w = load_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'assets', 'scorer-lenet.safetensors'))
def read(path):
    raw = gzip.open(path).read() if path.endswith('.gz') else open(path,'rb').read()
    n = struct.unpack('>I', raw[4:8])[0]
    return np.frombuffer(raw[16:16+n*784], dtype=np.uint8).reshape(n, 784)
def feats(x):
    x = torch.tensor((x / 255.0 - 0.1307) / 0.3081, dtype=torch.float64).reshape(-1, 1, 28, 28)
    g = {k: v.double() for k, v in w.items()}
    h = F.max_pool2d(F.relu(F.conv2d(x, g['1.weight'], g['1.bias'], padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, g['4.weight'], g['4.bias'])), 2).flatten(1)
    h = F.relu(F.linear(h, g['8.weight'], g['8.bias']))
    h = F.relu(F.linear(h, g['10.weight'], g['10.bias']))
    p = F.softmax(F.linear(h, g['12.weight'], g['12.bias']), -1)
    return h.numpy(), p.numpy()
def fid(a, b):
    m1, m2 = a.mean(0), b.mean(0); c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    l, v = np.linalg.eigh(c1); s = (v * np.sqrt(np.clip(l, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(s @ c2 @ s)
    return ((m1-m2)**2).sum() + np.trace(c1) + np.trace(c2) - 2*np.sqrt(np.clip(ev,0,None)).sum()
def radii(x, k=3):
    x = torch.tensor(x); d = torch.cdist(x, x); d.fill_diagonal_(float('inf'))
    return d.kthvalue(k, dim=1).values
def pr(real, fake):
    rr, rf = radii(real), radii(fake)
    d = torch.cdist(torch.tensor(fake), torch.tensor(real))
    prec = (d <= rr[None, :]).any(1).double().mean().item()
    rec = (d.T <= rf[None, :]).any(1).double().mean().item()
    return prec, rec
def IS(p):
    m = p.mean(0); return np.exp(np.mean(np.sum(p * (np.log(p + 1e-300) - np.log(m)), 1)))
ref, _ = feats(read(os.path.join(args.data, 't10k-images-idx3-ubyte.gz')))
f, p = feats(read(args.samples))
prec, rec = pr(ref, f)
print('%s: FID %.3f  IS %.3f  precision %.4f  recall %.4f' % (args.samples, fid(f, ref), IS(p), prec, rec))
