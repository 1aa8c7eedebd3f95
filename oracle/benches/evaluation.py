"""The Python side of the oracle's evaluation benchmark (oracle/benches/evaluation.rs).

Runs the same model on the same data with the same thread count and batch size as the Rust
oracle, with the onnxruntime wheel of the same version, and prints one JSON line:
- "e2e": samples/s of load + preprocess + infer + metric + digest, as `oracle evaluate` does;
- "bare": samples/s of a bare `session.run` loop over inputs already in memory;
- "digest": the SHA3-256 predicted-labels digest, laid out as the oracle's
  (`tclearn/labels/v1`, u64 count, u32 labels, little-endian), so the two sides can be checked
  to predict the same labels.

Usage: evaluation.py MODEL DATA KIND THREADS BATCH REPEATS [round]
KIND is `csv` (features then label per line) or `images` (class subfolders of PNG files,
normalised as (x/255 - 0.5)/0.25).

With `round`, what a validator does per round instead: the data parsed once, then per
candidate a session made from the model file, inference, accuracy and digest; prints the
seconds of each of REPEATS rounds ("rounds") and of each bare loop ("bare_seconds").
"""

import hashlib
import json
import os
import struct
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def load(data, kind):
    if kind == "csv":
        table = np.loadtxt(data, delimiter=",", dtype=np.float64)
        return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
    classes = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(data, name)
        for file in sorted(os.listdir(folder)):
            with Image.open(os.path.join(folder, file)) as image:
                pixels = np.asarray(image.convert("L"), dtype=np.float32)
            images.append(((pixels / 255.0 - 0.5) / 0.25)[None, :, :])
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def digest(labels):
    hasher = hashlib.sha3_256()
    hasher.update(b"tclearn/labels/v1")
    hasher.update(struct.pack("<Q", len(labels)))
    hasher.update(np.asarray(labels, dtype="<u4").tobytes())
    return "0x" + hasher.hexdigest()


def infer(sess, inputs, batch):
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: inputs[i : i + batch]})[0] for i in range(0, len(inputs), batch)])


def rounds(model, data, kind, threads, batch, repeats):
    inputs, truth = load(data, kind)
    per_round, bare, labels_digest = [], [], None
    for _ in range(repeats):
        start = time.perf_counter()
        sess = session(model, threads)
        outputs = infer(sess, inputs, batch)
        predicted = outputs.argmax(axis=1)
        accuracy = float((predicted == truth).mean())
        labels_digest = digest(predicted)
        per_round.append(time.perf_counter() - start)
        start = time.perf_counter()
        infer(sess, inputs, batch)
        bare.append(time.perf_counter() - start)
    print(json.dumps({"rounds": per_round, "bare_seconds": bare, "digest": labels_digest, "accuracy": accuracy, "samples": len(inputs)}))


def main():
    model, data, kind, threads, batch, repeats = sys.argv[1:7]
    threads, batch, repeats = int(threads), int(batch), int(repeats)
    if sys.argv[7:] == ["round"]:
        return rounds(model, data, kind, threads, batch, repeats)
    e2e, bare, labels_digest, samples = [], [], None, 0
    for _ in range(repeats):
        start = time.perf_counter()
        sess = session(model, threads)
        inputs, truth = load(data, kind)
        outputs = infer(sess, inputs, batch)
        predicted = outputs.argmax(axis=1)
        accuracy = float((predicted == truth).mean())
        labels_digest = digest(predicted)
        e2e.append(len(inputs) / (time.perf_counter() - start))
        samples = len(inputs)

        start = time.perf_counter()
        infer(sess, inputs, batch)
        bare.append(len(inputs) / (time.perf_counter() - start))
    print(json.dumps({"e2e": max(e2e), "bare": max(bare), "digest": labels_digest, "accuracy": accuracy, "samples": samples}))


if __name__ == "__main__":
    main()
