"""fastText prediction compiled with numba, read straight from the model file.

The same model, the same arithmetic: a text is split into tokens as fastText splits a line,
each token adds its vocabulary row and its hashed character n-grams (FNV-1a, pruned by the
model's n-gram index), word n-grams come last, the mean of those rows is the hidden vector, and
the hierarchical softmax (lid.176, most language-ID models) or the softmax ranks the labels, in
float32 in fastText's order of operations. Tests compare it with the C++ engine on every real
entry text and on small models of each kind, written here.

Why not the engine: it is called once per text through pybind (a string copy, a stream, Python
objects for the answer) and holds the GIL, so it needs a worker process per core. This runs on a
whole batch of UTF-8 bytes per call without the GIL, on threads, and a quantised model's rows
are unpacked once into a dense float32 matrix (lid.176.ftz: 50,000 x 16, 3 MB).

File format (fastText 0.9, version 12): magic, version; the arguments (12 int32 and a double);
the dictionary (size, nwords, nlabels as int32; ntokens, pruneidx size as int64; per entry its
bytes, a NUL, count int64 and type int8; then the pruned n-gram index as int32 pairs); the input
matrix and the output matrix, each after a byte saying whether it is product-quantised.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from globmed_data.kernels.model_cache import cached_arrays

MAGIC, VERSION = 793712314, 12
HS, SOFTMAX = 1, 3  # fastText's loss codes; others (ns, ova) are left to the C++ engine
LABEL_PREFIX = b"__label__"
_KSUB = 256  # centroids per sub-quantiser (8-bit codes)


class UnsupportedModel(ValueError):
    """A model this reader does not handle (another loss, another file version)."""


@dataclass(frozen=True)
class NativeModel:
    labels: list[str]  # label names without the prefix, by label id
    nwords: int
    bucket: int
    minn: int
    maxn: int
    word_ngrams: int
    loss: int
    slots: np.ndarray  # open-addressing table of vocabulary entries (int32, -1 empty)
    entry_hash: np.ndarray  # uint32 FNV-1a of each entry
    entry_bytes: np.ndarray
    entry_offsets: np.ndarray
    sub_offsets: np.ndarray  # each word's rows: itself, then its character n-grams
    sub_ids: np.ndarray
    prune: np.ndarray  # n-gram bucket -> row after the words (-1: dropped); empty: unpruned
    pruned_all: bool  # a pruned index with no n-grams at all
    input: np.ndarray  # float32 (rows, dim)
    output: np.ndarray  # float32 (labels, dim)
    output_scale: np.ndarray  # float32 per output row (a quantised row's norm; else 1)
    left: np.ndarray  # hierarchical softmax tree (nodes >= labels are inner)
    right: np.ndarray

    def predict(
        self,
        data: np.ndarray,
        offsets: np.ndarray,
        k: int,
        lo: int = 0,
        hi: int = -1,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k (label ids, probabilities, count) of texts lo..hi of a UTF-8 column, each read
        as one line. Writes into `out` when given (threads fill parts of one result)."""
        n = len(offsets) - 1
        hi = n if hi < 0 else hi
        if out is None:
            out = (np.full((n, k), -1, np.int32), np.zeros((n, k), np.float32), np.zeros(n, np.int32))
        _predict(
            data,
            offsets,
            lo,
            hi,
            k,
            self.nwords,
            self.bucket,
            self.minn,
            self.maxn,
            self.word_ngrams,
            self.loss,
            self.slots,
            self.entry_hash,
            self.entry_bytes,
            self.entry_offsets,
            self.sub_offsets,
            self.sub_ids,
            self.prune,
            self.pruned_all,
            self.input,
            self.output,
            self.output_scale,
            self.left,
            self.right,
            *out,
        )
        return out


def load(path: Path) -> NativeModel:
    """Read a fastText supervised model (.bin or quantised .ftz). What takes work to derive
    from the file (the vocabulary table, each word's n-gram rows, unpacked quantised rows) is
    kept in the model cache, so a later process reads it at once and maps the file's dense
    matrices where they lie."""
    a = cached_arrays(f"fasttext-{path.stem}", path, lambda: _derive(path))
    nwords, bucket, minn, maxn, word_ngrams, loss, pruned_all = (int(v) for v in a["args"])
    with path.open("rb") as fh:
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def matrix(name: str) -> np.ndarray:
        if name in a:
            return a[name]
        at, rows, cols = (int(v) for v in a[f"{name}_at"])  # dense: in the file itself
        return np.frombuffer(buf, np.float32, rows * cols, at).reshape(rows, cols)

    return NativeModel(
        labels=a["labels"].tolist(), nwords=nwords, bucket=bucket, minn=minn, maxn=maxn,
        word_ngrams=word_ngrams, loss=loss, slots=a["slots"], entry_hash=a["entry_hash"],
        entry_bytes=a["entry_bytes"], entry_offsets=a["entry_offsets"], sub_offsets=a["sub_offsets"],
        sub_ids=a["sub_ids"], prune=a["prune"], pruned_all=bool(pruned_all), input=matrix("input"),
        output=matrix("output"), output_scale=a["output_scale"], left=a["left"], right=a["right"],
    )  # fmt: skip


def _derive(path: Path) -> dict[str, np.ndarray]:
    with path.open("rb") as fh:
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    reader = _Reader(buf)
    magic, version = reader.unpack("<ii")
    if magic != MAGIC or version != VERSION:
        raise UnsupportedModel(f"{path} is not a fastText model file of version {VERSION}")
    dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn, _lr_rate = (
        reader.unpack("<12i")
    )
    reader.unpack("<d")
    if model != 3:
        raise UnsupportedModel(f"{path} is not a supervised (classification) model")
    if loss not in (HS, SOFTMAX):
        raise UnsupportedModel(f"{path}: loss {loss} is not hierarchical softmax or softmax")
    size, nwords, nlabels = reader.unpack("<3i")
    _ntokens, prune_size = reader.unpack("<2q")
    words, counts = [], []
    for _ in range(size):
        end = buf.find(b"\0", reader.at)
        words.append(bytes(buf[reader.at : end]))
        reader.at = end + 1
        count, _kind = reader.unpack("<qb")
        counts.append(count)
    pairs = reader.array(np.int32, 2 * max(prune_size, 0)).reshape(-1, 2)
    out: dict[str, np.ndarray] = {}
    _matrix(reader, "input", out, rows_scaled=True)
    _matrix(reader, "output", out, rows_scaled=False)
    shapes = [out[m].shape if m in out else tuple(out[f"{m}_at"][1:]) for m in ("input", "output")]
    if shapes[0][1] != dim or shapes[1][0] != nlabels:
        raise UnsupportedModel(f"{path}: matrix shapes do not match the dictionary")

    entry_bytes = np.frombuffer(b"".join(words), np.uint8)
    entry_offsets = np.zeros(size + 1, np.int64)
    entry_offsets[1:] = np.cumsum([len(w) for w in words])
    entry_hash = _hashes(entry_bytes, entry_offsets)
    prune = np.zeros(0, np.int32)
    if prune_size > 0:
        prune = np.full(bucket, -1, np.int32)
        prune[pairs[:, 0]] = pairs[:, 1]
    pruned_all = prune_size == 0
    sub_offsets, sub_ids = _word_subwords(
        entry_bytes, entry_offsets, nwords, bucket, minn, maxn, prune, pruned_all
    )
    left, right = _tree(np.asarray(counts[nwords:], np.int64))
    labels = [w.removeprefix(LABEL_PREFIX).decode("utf-8", "replace") for w in words[nwords:]]
    return out | {
        "args": np.array([nwords, bucket, minn, maxn, word_ngrams, loss, pruned_all], np.int64),
        "labels": np.array(labels, dtype=str), "slots": _slots(entry_hash, entry_bytes, entry_offsets),
        "entry_hash": entry_hash, "entry_bytes": entry_bytes, "entry_offsets": entry_offsets,
        "sub_offsets": sub_offsets, "sub_ids": sub_ids, "prune": prune, "left": left, "right": right,
    }  # fmt: skip


class _Reader:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.at = buf, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.buf, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype, count, self.at)
        self.at += arr.nbytes
        return arr


def _matrix(reader: _Reader, name: str, out: dict[str, np.ndarray], rows_scaled: bool) -> None:
    """A matrix and its scale per row, into `out`. A dense one is left in the file: `out` gets
    where it lies ({name}_at: offset, rows, columns). A quantised one is unpacked to its
    centroids; fastText scales an input row's centroids by its norm before adding them (so
    they are scaled here), and an output row's dot product after."""
    (quantised,) = reader.unpack("<?")
    if not quantised:
        rows, cols = reader.unpack("<2q")
        out[f"{name}_at"] = np.array([reader.at, rows, cols], np.int64)
        reader.at += rows * cols * 4
        out[f"{name}_scale"] = np.ones(rows, np.float32)
        return
    qnorm, rows, cols, codesize = reader.unpack("<?qqi")
    codes = reader.array(np.uint8, codesize)
    dense = _unpack_codes(codes, rows, *_quantiser(reader))
    norms = np.ones(rows, np.float32)
    if qnorm:
        norm_codes = reader.array(np.uint8, rows)
        _dim, _nsubq, _dsub, _last = reader.unpack("<4i")
        norms = reader.array(np.float32, _KSUB)[norm_codes]  # one-dimensional centroids
    if rows_scaled:
        dense, norms = (dense * norms[:, None]).astype(np.float32), np.ones(rows, np.float32)
    out[name], out[f"{name}_scale"] = dense, norms


def _quantiser(reader: _Reader) -> tuple[int, int, int, int, np.ndarray]:
    dim, nsubq, dsub, last = reader.unpack("<4i")
    return dim, nsubq, dsub, last, reader.array(np.float32, dim * _KSUB)


@numba.njit(cache=True, nogil=True)
def _unpack_codes(
    codes: np.ndarray, rows: int, dim: int, nsubq: int, dsub: int, last: int, centroids: np.ndarray
) -> np.ndarray:
    out = np.zeros((rows, dim), np.float32)
    for r in range(rows):
        for m in range(nsubq):
            c = np.int64(codes[r * nsubq + m])
            width = last if m == nsubq - 1 else dsub
            base = m * _KSUB * dsub + c * width  # the last sub-quantiser's centroids are narrower
            for j in range(width):
                out[r, m * dsub + j] = centroids[base + j]
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _fnv(h: np.uint32, byte: np.uint8) -> np.uint32:
    # fastText hashes signed chars: bytes >= 0x80 are sign-extended before the XOR.
    b = np.int32(np.int8(byte))
    return np.uint32((h ^ np.uint32(b & 0xFFFFFFFF)) * np.uint32(16777619))


_FNV_START = np.uint32(2166136261)


@numba.njit(cache=True, nogil=True)
def _hashes(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.zeros(len(offsets) - 1, np.uint32)
    for i in range(len(out)):
        h = _FNV_START
        for k in range(offsets[i], offsets[i + 1]):
            h = _fnv(h, data[k])
        out[i] = h
    return out


@numba.njit(cache=True, nogil=True)
def _slots(hashes: np.ndarray, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    size = 1
    while size < 2 * len(hashes) + 2:
        size *= 2
    slots = np.full(size, -1, np.int32)
    for i in range(len(hashes)):
        # An entry spelled like an earlier one takes its slot, as in fastText's own table.
        token = data[offsets[i] : offsets[i + 1]]
        s = _lookup(slots, hashes, data, offsets, hashes[i], token, len(token))
        if s >= 0:
            slots[_slot_of(slots, hashes[i], s)] = i
        else:
            _place(slots, hashes[i], i)
    return slots


@numba.njit(cache=True, nogil=True, inline="always")
def _place(slots: np.ndarray, h: np.uint32, i: int) -> None:
    s = np.int64(h) & (len(slots) - 1)
    while slots[s] != -1:
        s = (s + 1) & (len(slots) - 1)
    slots[s] = i


_CACHE_SLOTS, _CACHE_BYTES, _CACHE_ROWS = 1 << 16, 1 << 20, 1 << 21


@numba.njit(cache=True, nogil=True)
def _slot_of(slots: np.ndarray, h: np.uint32, entry: int) -> int:
    s = np.int64(h) & (len(slots) - 1)
    while slots[s] != entry:
        s = (s + 1) & (len(slots) - 1)
    return s


@numba.njit(cache=True, nogil=True)
def _lookup(
    slots: np.ndarray,
    entry_hash: np.ndarray,
    entry_bytes: np.ndarray,
    entry_offsets: np.ndarray,
    h: np.uint32,
    token: np.ndarray,
    length: int,
) -> int:
    mask = len(slots) - 1
    s = np.int64(h) & mask
    while slots[s] != -1:
        e = slots[s]
        start = entry_offsets[e]
        if entry_hash[e] == h and entry_offsets[e + 1] - start == length:
            same = True
            for j in range(length):
                if entry_bytes[start + j] != token[j]:
                    same = False
                    break
            if same:
                return e
        s = (s + 1) & mask
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _ngram_row(h: np.uint32, nwords: int, bucket: int, prune: np.ndarray, pruned_all: bool) -> int:
    """The input row of a hashed n-gram (-1: pruned away)."""
    b = np.int64(h) % bucket
    if pruned_all:
        return -1
    if len(prune):
        b = prune[b]
        if b < 0:
            return -1
    return nwords + b


@numba.njit(cache=True, nogil=True)
def _subwords(
    word: np.ndarray,
    length: int,
    minn: int,
    maxn: int,
    nwords: int,
    bucket: int,
    prune: np.ndarray,
    pruned_all: bool,
    rows: np.ndarray,
    count: int,
) -> int:
    """Append the character n-gram rows of `word` (already wrapped in < >) to rows[count:];
    returns the new count. n counts characters, not bytes; single characters at the edges
    (the < and >) are skipped, as fastText does."""
    for i in range(length):
        if (word[i] & 0xC0) == 0x80:
            continue
        h = _FNV_START
        j, n = i, 1
        while j < length and n <= maxn:
            h = _fnv(h, word[j])
            j += 1
            while j < length and (word[j] & 0xC0) == 0x80:
                h = _fnv(h, word[j])
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == length)):
                row = _ngram_row(h, nwords, bucket, prune, pruned_all)
                if row >= 0:
                    rows[count] = row
                    count += 1
            n += 1
    return count


@numba.njit(cache=True, nogil=True)
def _word_subwords(
    entry_bytes: np.ndarray,
    entry_offsets: np.ndarray,
    nwords: int,
    bucket: int,
    minn: int,
    maxn: int,
    prune: np.ndarray,
    pruned_all: bool,
) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(nwords + 1, np.int64)
    longest = 0
    for w in range(nwords):
        longest = max(longest, entry_offsets[w + 1] - entry_offsets[w])
    word = np.zeros(longest + 2, np.uint8)
    rows = np.zeros(1 + (longest + 2) * max(maxn, 1), np.int32)
    ids = np.zeros(16, np.int32)
    total = 0
    for w in range(nwords):
        start, length = entry_offsets[w], entry_offsets[w + 1] - entry_offsets[w]
        rows[0] = w
        count = 1
        if not _is_eos(entry_bytes, start, length):
            word[0] = 60  # <
            word[1 : length + 1] = entry_bytes[start : start + length]
            word[length + 1] = 62  # >
            count = _subwords(word, length + 2, minn, maxn, nwords, bucket, prune, pruned_all, rows, 1)
        while total + count > len(ids):
            ids = np.concatenate((ids, np.zeros(len(ids), np.int32)))
        ids[total : total + count] = rows[:count]
        total += count
        offsets[w + 1] = total
    return offsets, ids[:total].copy()


def _tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hierarchical softmax's Huffman tree over label counts (sorted, most frequent first),
    built as fastText builds it: leaves are labels, node 2n-2 the root."""
    n = len(counts)
    left = np.full(2 * n - 1, -1, np.int32)
    right = np.full(2 * n - 1, -1, np.int32)
    count = np.full(2 * n - 1, 10**15, np.int64)
    count[:n] = counts
    leaf, node = n - 1, n
    for i in range(n, 2 * n - 1):
        pick = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                pick[j], leaf = leaf, leaf - 1
            else:
                pick[j], node = node, node + 1
        left[i], right[i] = pick
        count[i] = count[pick[0]] + count[pick[1]]
    return left, right


@numba.njit(cache=True, nogil=True, inline="always")
def _std_log(x: np.float32) -> np.float32:
    return np.float32(np.log(np.float64(x) + 1e-5))


@numba.njit(cache=True, nogil=True, inline="always")
def _add_row(hidden: np.ndarray, inputs: np.ndarray, row: int) -> None:
    for j in range(len(hidden)):
        hidden[j] += inputs[row, j]


@numba.njit(cache=True, nogil=True, inline="always")
def _is_eos(buf: np.ndarray, start: int, length: int) -> bool:
    """Whether buf[start:start + length] is fastText's end-of-sentence token, </s>."""
    return (
        length == 4
        and buf[start] == 60
        and buf[start + 1] == 47
        and buf[start + 2] == 115
        and (buf[start + 3] == 62)
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _is_separator(c: np.uint8) -> bool:
    return c == 32 or c == 10 or c == 13 or c == 9 or c == 11 or c == 12 or c == 0


@numba.njit(cache=True, nogil=True)
def _predict(data, offsets, lo, hi, k, nwords, bucket, minn, maxn, word_ngrams, loss, vocab_slots,
             entry_hash, entry_bytes, entry_offsets, sub_offsets, sub_ids, prune, pruned_all,
             inputs, output, output_scale, left, right, top_ids, top_probs, top_count):  # fmt: skip
    dim = inputs.shape[1]
    nlabels = output.shape[0]
    longest = 4
    for t in range(lo, hi):
        longest = max(longest, offsets[t + 1] - offsets[t])
    word = np.zeros(longest + 2, np.uint8)
    rows = np.zeros(1 + (longest + 2) * max(maxn, 1), np.int32)
    hashes = np.zeros(longest + 2, np.int64)
    hidden = np.zeros(dim, np.float32)
    scores = np.zeros(nlabels, np.float32)
    best_score = np.zeros(k + 1, np.float32)
    best_id = np.zeros(k + 1, np.int32)
    stack_node = np.zeros(2 * nlabels + 2, np.int32)
    stack_score = np.zeros(2 * nlabels + 2, np.float32)
    floor = _std_log(np.float32(0.0))
    eos = np.array([60, 47, 115, 62], np.uint8)
    # A token's rows are worked out once per call (words repeat; hashing each of their
    # character n-grams and looking it up in the pruned index is the dear part), for as many
    # distinct tokens as the cache holds.
    slots = np.full(_CACHE_SLOTS, -1, np.int32)
    known_hash = np.empty(_CACHE_SLOTS // 2, np.uint32)
    known_bytes = np.empty(_CACHE_BYTES, np.uint8)
    known_bytes_at = np.zeros(_CACHE_SLOTS // 2 + 1, np.int64)
    known_rows = np.empty(_CACHE_ROWS, np.int32)
    known_rows_at = np.zeros(_CACHE_SLOTS // 2 + 1, np.int64)
    known_label = np.zeros(_CACHE_SLOTS // 2, np.bool_)
    known = 0
    for t in range(lo, hi):
        hidden[:] = 0
        count = 0
        nhash = 0
        pos, end = offsets[t], offsets[t + 1]
        done = False
        while not done:
            # The next token, as fastText reads a line: separators split; a newline (or the
            # line's end) ends the line with the end-of-sentence token, and so does that token.
            while pos < end and _is_separator(data[pos]) and data[pos] != 10:
                pos += 1
            length = 0
            if pos >= end or data[pos] == 10:
                word[1:5] = eos
                length = 4
            else:
                while pos < end and not _is_separator(data[pos]):
                    word[1 + length] = data[pos]
                    length += 1
                    pos += 1
            token = word[1 : 1 + length]
            done = _is_eos(token, 0, length)
            h = _FNV_START
            for j in range(length):
                h = _fnv(h, token[j])
            at = _lookup(slots, known_hash, known_bytes, known_bytes_at, h, token, length)
            source = known_rows
            if at >= 0:
                label = known_label[at]
                first, last = known_rows_at[at], known_rows_at[at + 1]
            else:
                wid = _lookup(vocab_slots, entry_hash, entry_bytes, entry_offsets, h, token, length)
                label = wid >= nwords or (wid < 0 and length >= 9 and _has_label_prefix(token))
                n = 0
                if wid >= 0 and not label:
                    for s in range(sub_offsets[wid], sub_offsets[wid + 1]):
                        rows[n] = sub_ids[s]
                        n += 1
                elif wid < 0 and not label and not done:  # an unknown </s> adds nothing
                    word[0] = 60
                    word[length + 1] = 62
                    n = _subwords(word, length + 2, minn, maxn, nwords, bucket, prune, pruned_all, rows, 0)
                first, last = known_rows_at[known], known_rows_at[known] + n
                room = known < _CACHE_SLOTS // 2 and known_bytes_at[known] + length <= _CACHE_BYTES
                if room and last <= _CACHE_ROWS:
                    at, known = known, known + 1
                    known_hash[at], known_label[at] = h, label
                    known_bytes[known_bytes_at[at] : known_bytes_at[at] + length] = token
                    known_bytes_at[known] = known_bytes_at[at] + length
                    known_rows[first:last] = rows[:n]
                    known_rows_at[known] = last
                    _place(slots, h, at)
                else:  # the cache is full: use the rows as they are
                    source, first, last = rows, 0, n
            if label:
                continue
            for r in range(first, last):
                _add_row(hidden, inputs, source[r])
            count += last - first
            hashes[nhash] = np.int64(np.int32(h))  # fastText keeps word hashes as int32
            nhash += 1
        for i in range(nhash):
            wh = np.uint64(hashes[i])
            for j in range(i + 1, min(nhash, i + word_ngrams)):
                wh = wh * np.uint64(116049371) + np.uint64(hashes[j])
                row = _ngram_row(np.uint32(wh % np.uint64(bucket)), nwords, bucket, prune, pruned_all)
                if row >= 0:
                    _add_row(hidden, inputs, row)
                    count += 1
        if count == 0:
            top_count[t] = 0
            continue
        scale = np.float32(1.0 / count)
        for j in range(dim):
            hidden[j] *= scale
        kept = 0
        if loss == 1:  # hierarchical softmax: depth first, pruned by the k-th best so far
            stack_node[0] = 2 * nlabels - 2
            stack_score[0] = 0.0
            depth = 1
            while depth:
                depth -= 1
                node, score = stack_node[depth], stack_score[depth]
                if score < floor or (kept == k and score < best_score[kept - 1]):
                    continue
                if left[node] == -1:
                    kept = _keep(best_score, best_id, kept, k, score, node)
                    continue
                f = np.float32(0.0)
                inner = node - nlabels
                for j in range(dim):
                    f += output[inner, j] * hidden[j]
                f = f * output_scale[inner]
                f = np.float32(1.0 / np.float64(np.float32(1.0) + np.exp(-f)))
                stack_node[depth] = right[node]  # popped after the left subtree
                stack_score[depth] = score + _std_log(f)
                stack_node[depth + 1] = left[node]
                stack_score[depth + 1] = score + _std_log(np.float32(1.0 - np.float64(f)))
                depth += 2
        else:  # softmax over every label
            for i in range(nlabels):
                f = np.float32(0.0)
                for j in range(dim):
                    f += output[i, j] * hidden[j]
                scores[i] = f * output_scale[i]
            top = scores.max()
            z = np.float32(0.0)
            for i in range(nlabels):
                scores[i] = np.exp(scores[i] - top)
                z += scores[i]
            for i in range(nlabels):
                scores[i] /= z
                if kept == k and _std_log(scores[i]) < best_score[kept - 1]:
                    continue
                kept = _keep(best_score, best_id, kept, k, _std_log(scores[i]), i)
        for i in range(kept):
            top_ids[t, i] = best_id[i]
            top_probs[t, i] = np.exp(best_score[i])
        top_count[t] = kept


@numba.njit(cache=True, nogil=True, inline="always")
def _has_label_prefix(token: np.ndarray) -> bool:
    prefix = (95, 95, 108, 97, 98, 101, 108, 95, 95)  # __label__
    for j in range(9):  # noqa: SIM110 (compiled: no generators)
        if token[j] != prefix[j]:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _keep(
    best_score: np.ndarray, best_id: np.ndarray, kept: int, k: int, score: np.float32, label: int
) -> int:
    """Insert into the k best (sorted, best first); ties keep the earlier one first."""
    i = kept
    while i > 0 and best_score[i - 1] < score:
        best_score[i] = best_score[i - 1]
        best_id[i] = best_id[i - 1]
        i -= 1
    best_score[i] = score
    best_id[i] = label
    return min(kept + 1, k)
