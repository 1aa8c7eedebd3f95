"""The reference for the trainer's benchmark: the same DP-SGD run in NumPy.

The same model (inputs standardised by the declared public ranges of
`datasets/breast-cancer/standardisation.json`, a ReLU hidden layer, softmax cross-entropy), the same
data, batch rate, clipping, noise and learning rate as `tclearn_member::trainer::train`, with
per-example gradients written out by hand and vectorised over the batch (what an autodiff
framework must find by itself). Float32 throughout. Prints one JSON line.

    python dp_sgd_reference.py CSV HIDDEN BATCH EPOCHS NOISE_MULTIPLIER STANDARDISATION_JSON
"""
import json
import sys
import time

import numpy as np

path, hidden, batch, epochs, sigma = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ranges = json.load(open(sys.argv[6]))["ranges"]
rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
x, y = rows[:, :-1].astype(np.float32), rows[:, -1].astype(np.int64)
n, d = x.shape
classes = int(y.max()) + 1
rng = np.random.default_rng(7)
low, high = np.array([r["low"] for r in ranges]), np.array([r["high"] for r in ranges])
x = ((x - (low + high) / 2) * (2 / (high - low))).astype(np.float32)
bound1, bound2 = 1 / np.sqrt(d), 1 / np.sqrt(hidden)
w1 = rng.uniform(-bound1, bound1, (d, hidden)).astype(np.float32)
b1 = rng.uniform(-bound1, bound1, hidden).astype(np.float32)
w2 = rng.uniform(-bound2, bound2, (hidden, classes)).astype(np.float32)
b2 = rng.uniform(-bound2, bound2, classes).astype(np.float32)
onehot = np.eye(classes, dtype=np.float32)[y]
lr, clip, q = np.float32(0.1), np.float32(1.0), batch / n


def loss():
    logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    logits = logits - logits.max(1, keepdims=True)
    return float(-(onehot * (logits - np.log(np.exp(logits).sum(1, keepdims=True)))).sum(1).mean())


before = loss()
steps = -(-n // batch) * epochs
gradients = 0
started = time.perf_counter()
for _ in range(steps):
    idx = np.nonzero(rng.random(n) < q)[0]
    xb, tb = x[idx], onehot[idx]
    h_pre = xb @ w1 + b1
    h = np.maximum(h_pre, 0)
    logits = h @ w2 + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g_logits = p - tb                                   # [B, C]
    g_w2 = np.einsum("bh,bc->bhc", h, g_logits)         # per example
    g_b2 = g_logits
    g_h = (g_logits @ w2.T) * (h_pre > 0)               # [B, H]
    g_w1 = np.einsum("bi,bh->bih", xb, g_h)
    g_b1 = g_h
    flat = np.concatenate([g_w1.reshape(len(idx), -1), g_b1, g_w2.reshape(len(idx), -1), g_b2], axis=1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    flat = flat * np.minimum(1, clip / np.maximum(norms, 1e-12))
    total = flat.sum(0) + rng.normal(0, sigma * clip, flat.shape[1]).astype(np.float32)
    step = total / np.float32(q * n)
    sizes = [w1.size, b1.size, w2.size, b2.size]
    parts = np.split(step, np.cumsum(sizes)[:-1])
    w1 -= lr * parts[0].reshape(w1.shape)
    b1 -= lr * parts[1]
    w2 -= lr * parts[2].reshape(w2.shape)
    b2 -= lr * parts[3]
    gradients += len(idx)
seconds = time.perf_counter() - started
print(json.dumps({"gradients": gradients, "seconds": seconds, "samples_per_second": gradients / seconds,
                  "loss_before": before, "loss_after": loss()}))
