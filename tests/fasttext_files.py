"""Small fastText model files with random weights, written in fastText's binary format (version
12), so the compiled predictor can be compared with the C++ engine on every kind of model:
dense or product-quantised matrices, norms quantised or not, pruned n-gram index or none,
hierarchical softmax or softmax, word n-grams or not."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

KSUB = 256


def write_model(
    path: Path,
    words: list[str],
    labels: list[str],
    *,
    loss: int = 1,  # 1 hierarchical softmax, 3 softmax
    dim: int = 8,
    minn: int = 2,
    maxn: int = 4,
    word_ngrams: int = 1,
    bucket: int = 2000,
    quantised: bool = False,
    qnorm: bool = False,
    qout: bool = False,
    pruned: int | None = None,  # keep this many n-gram buckets (None: unpruned)
    seed: int = 0,
) -> Path:
    rng = np.random.default_rng(seed)
    vocab = ["</s>", *words]
    out = bytearray(struct.pack("<ii", 793712314, 12))
    out += struct.pack("<12i", dim, 5, 5, 1, 5, word_ngrams, loss, 3, bucket, minn, maxn, 100)
    out += struct.pack("<d", 1e-4)
    prune_pairs = np.zeros((0, 2), np.int32)
    if pruned is not None:
        kept = np.sort(rng.choice(bucket, size=pruned, replace=False)).astype(np.int32)
        prune_pairs = np.stack([kept, np.arange(pruned, dtype=np.int32)], axis=1)
    size = len(vocab) + len(labels)
    out += struct.pack("<3i", size, len(vocab), len(labels))
    out += struct.pack("<2q", 10**6, -1 if pruned is None else pruned)
    # Counts decrease within each kind, as fastText sorts its dictionary (the tree needs it).
    for kind, names in ((0, vocab), (1, [f"__label__{lab}" for lab in labels])):
        for rank, name in enumerate(names):
            out += name.encode() + b"\0" + struct.pack("<qb", 10**5 - 37 * rank, kind)
    out += prune_pairs.tobytes()
    rows = len(vocab) + (bucket if pruned is None else pruned)
    out += _matrix(rng, rows, dim, quantised, qnorm, dsub=2)
    out += _matrix(rng, len(labels), dim, quantised and qout, qnorm, dsub=2)
    path.write_bytes(bytes(out))
    return path


def _matrix(
    rng: np.random.Generator, rows: int, dim: int, quantised: bool, qnorm: bool, *, dsub: int
) -> bytes:
    out = struct.pack("<?", quantised)
    if not quantised:
        return (
            out + struct.pack("<2q", rows, dim) + rng.normal(0, 1.0, (rows, dim)).astype(np.float32).tobytes()
        )
    nsubq = -(-dim // dsub)
    last = dim - (nsubq - 1) * dsub
    codes = rng.integers(0, KSUB, rows * nsubq, dtype=np.uint8)
    out += struct.pack("<?qqi", qnorm, rows, dim, len(codes)) + codes.tobytes()
    out += (
        struct.pack("<4i", dim, nsubq, dsub, last)
        + rng.normal(0, 1.0, dim * KSUB).astype(np.float32).tobytes()
    )
    if qnorm:
        out += rng.integers(0, KSUB, rows, dtype=np.uint8).tobytes()
        out += struct.pack("<4i", 1, 1, 1, 1) + rng.uniform(0.2, 3.0, KSUB).astype(np.float32).tobytes()
    return out
