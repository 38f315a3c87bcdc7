"""Dedup's reduce: over every signed entry, candidate pairs from shared keys, the links that
stand after verification, and connected components. The keep policy is policy.py's.

Candidates: each new entry against the two smallest others sharing its exact key or an LSH band
(datasketch's banding, bands and rows chosen as MinHashLSH chooses them). Verified: equal exact
keys, or estimated similarity at the threshold less the margin with equal answers (open answers:
similar ones), nested numbers, and no key word swapped (a template filled with another disease).
`cluster_labels` is the whole method in memory: the same map and reduce the stage runs,
without the warehouse (for tests, the evaluation and the kernel benchmark).
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import polars as pl

from globmed_data.dedup.kernels import band_keys, group_partners, similarity
from globmed_data.dedup.settings import DedupSettings
from globmed_data.dedup.signing import Signed, normalised, sign_batch

BATCH = 20_000  # entries signed at a time: memory stays bounded by a batch (at 50k: +0.3 GiB, no faster)
# Bump when the candidates or the verification change for the same settings: every stored link
# is then searched again (stage.index_hash). 2: the second partner is of another exact key.
LINK_VERSION = "2"


def lsh_shape(s: DedupSettings) -> tuple[int, int]:
    """(bands, rows): as configured, or the ones that suit the threshold."""
    return (s.bands, s.rows) if s.bands and s.rows else optimal_bands(s.threshold, s.num_perm)


# optimal_bands for 128 permutations at common thresholds, worked out once: the search takes
# 0.7 s (scipy included), which every `globmed run` paid just to check for pending work.
# tests/dedup checks that each equals the search.
KNOWN_SHAPES: dict[tuple[float, int], tuple[int, int]] = {
    (0.5, 128): (25, 5),
    (0.6, 128): (18, 7),
    (0.7, 128): (14, 9),
    (0.75, 128): (11, 11),
    (0.8, 128): (9, 13),
    (0.85, 128): (8, 16),
    (0.9, 128): (5, 25),
}


def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands b and rows r (b·r ≤ num_perm) minimising false positives + false negatives."""
    return KNOWN_SHAPES.get((threshold, num_perm)) or search_bands(threshold, num_perm)


@cache
def search_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """The search behind optimal_bands, with the same weighting as datasketch's MinHashLSH (equal
    weights): the integrals of the S-curve 1 − (1 − s^r)^b below and above the threshold."""
    from scipy.integrate import quad  # scipy is a core dependency, imported when dedup runs

    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = quad(lambda s, b=b, r=r: 1 - (1 - s**r) ** b, 0.0, threshold)[0]
            fn = quad(lambda s, b=b, r=r: 1 - (1 - (1 - s**r) ** b), threshold, 1.0)[0]
            if fp + fn < best_err:
                best, best_err = (b, r), fp + fn
    return best


def candidate_pairs(
    exact: np.ndarray, bands: np.ndarray, is_new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) to verify: each new entry against two others sharing a key, the smallest and
    the smallest of another exact key (kernels.group_partners).

    Linking to two partners per key (not to every member, as an LSH query would) keeps big
    clusters linear in size; where those links verify, every member still links into its group,
    so the components are the same. Where they fail, the rest of the group is not tried, so what
    else shares a key can change a component (docs/dedup.md, "Candidates"). (Linking every pair
    of groups up to 8 members was measured: no change in F1.)
    Key columns: the exact key, then each band (`bands`: bands × entries).
    """
    columns = [np.ascontiguousarray(k) for k in [exact.astype(np.uint64), *bands]]
    workers = max(1, min(os.cpu_count() or 1, 8, len(columns)))
    with ThreadPoolExecutor(workers) as pool:  # sorts and kernels release the GIL
        found = list(
            pool.map(
                lambda part: _links(part, is_new, columns[0]), [columns[w::workers] for w in range(workers)]
            )
        )
    lo = np.concatenate([np.minimum(i, j) for i, j in found]).astype(np.uint64)
    hi = np.concatenate([np.maximum(i, j) for i, j in found]).astype(np.uint64)
    pair = np.sort((lo << np.uint64(32)) | hi)
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    return (pair >> np.uint64(32)).astype(np.int64), (pair & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _links(columns: list[np.ndarray], is_new: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """group_partners over some key columns, with their own memory of pairs already written."""
    n = len(is_new)
    seen = np.full((n, 4), -1, np.int64)
    # A column writes at most two pairs per entry. Untouched pages of np.empty cost no memory,
    # so the bound is allocated at once and only the pairs written are resident.
    out_i, out_j = np.empty(2 * n * len(columns), np.int64), np.empty(2 * n * len(columns), np.int64)
    filled = 0
    for keys in columns:
        filled = group_partners(keys, np.argsort(keys), is_new, exact, seen, out_i, out_j, filled)
    return out_i[:filled], out_j[:filled]


def verified(
    exact: np.ndarray,
    item: np.ndarray,
    numbers: pl.Series,
    sig: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    at: float,
    answer_sig: np.ndarray | None = None,
    answer_at: float = 0.5,
) -> np.ndarray:
    """Links that stand: equal exact keys; or estimated similarity >= `at`, equal answers, and
    one question's numbers all found in the other's (a cut or edited question keeps a subset).
    Two open questions (a non-zero `answer_sig`) also need answers similar at `answer_at`: the
    same question answered differently is two items."""
    same = exact[i] == exact[j]
    near = ~same & (item[i] == item[j]) & (similarity(sig, i, j) >= at)
    if answer_sig is not None and len(i):
        has_answer = answer_sig.any(axis=1)
        both = np.flatnonzero(near & has_answer[i] & has_answer[j])
        near[both] &= similarity(answer_sig, i[both], j[both]) >= answer_at
    number_key = numbers.hash(seed=13).to_numpy()
    for k in np.flatnonzero(near & (number_key[i] != number_key[j])):  # the rare case, in Python
        a, b = numbers[int(i[k])], numbers[int(j[k])]
        if a != b and not _within(a.split(), b.split()):
            near[k] = False
    return same | near


def swapped_key_word(a: str, b: str) -> bool:
    """Two normalised questions that read alike but for a key word: one short span replaced
    (at most three words a side), a word of 5+ letters on each side, one with no spelling variant across
    ("treatment for uncomplicated malaria" / "... cystitis", "ascending" / "descending colon").
    An inserted or dropped word, a spelling variant (haemoglobin / hemoglobin, one edit) and a
    number (nested numbers are checked apart) are not a swap. Spaced scripts only."""
    x, y = a.split(), b.split()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, x, y, autojunk=False).get_opcodes():
        if op != "replace" or i2 - i1 > 3 or j2 - j1 > 3:
            continue
        if _variant("".join(x[i1:i2]), "".join(y[j1:j2])):  # a space lost or gained in a typo
            continue
        left = [w for w in x[i1:i2] if _key_word(w)]
        right = [w for w in y[j1:j2] if _key_word(w)]
        if (
            left
            and right
            and (
                any(not any(_variant(w, v) for v in right) for w in left)
                or any(not any(_variant(v, w) for w in left) for v in right)
            )
        ):
            return True
    return False


def _swapped(left: list[str], right: list[str]) -> list[bool]:
    """swapped_key_word for each pair, each distinct pair read once: the copies of one text near
    the copies of another make the same pair many times (at 8x the shared data, 93,969 near
    links held 4,683 distinct pairs of questions)."""
    verdicts: dict[tuple[str, str], bool] = {}
    for pair in zip(left, right, strict=True):
        if pair not in verdicts:
            verdicts[pair] = swapped_key_word(*pair)
    return [verdicts[pair] for pair in zip(left, right, strict=True)]


def _key_word(w: str) -> bool:
    """5+ letters of a spaced script: a run of Chinese, Japanese or Thai is a phrase, not a word."""
    return len(w) >= 5 and not any(
        c.isdigit() or "\u0e00" <= c <= "\u0e7f" or "\u3040" <= c <= "\u9fff" for c in w
    )


def _variant(w: str, v: str) -> bool:
    """One edit apart (a spelling variant or a typo) in words of five letters or more, or one
    the start or the end of the other (a question cut inside its last word, "sequence" typed
    for "consequence")."""
    if w.startswith(v) or v.startswith(w) or w.endswith(v) or v.endswith(w):
        return True
    if min(len(w), len(v)) < 5 or abs(len(w) - len(v)) > 1:
        return False
    return difflib.SequenceMatcher(None, w, v, autojunk=False).ratio() >= 1 - 1.5 / max(len(w), len(v))


def _within(a: list[str], b: list[str]) -> bool:
    """One multiset of numbers contained in the other."""
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    pool = Counter(big)
    return all(pool[x] >= c for x, c in Counter(small).items())


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find over edges, vectorised: the component label of each of n nodes."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def link(
    signed: Signed, is_new: np.ndarray, s: DedupSettings, questions: pl.Series | None = None
) -> pl.DataFrame:
    """The links that stand among signed entries, searched for the new ones (`is_new`): rows
    `i`, `j` (positions in `signed`), `method` (exact | near) and `similarity`. With the
    entries' `questions` (raw, in `signed`'s order), near links between templated look-alikes
    (`swapped_key_word`) are dropped."""
    bands, rows = lsh_shape(s)
    exact = signed.keys["exact_key"].to_numpy().astype(np.uint64)
    item = signed.keys["item_key"].to_numpy().astype(np.uint64)
    i, j = candidate_pairs(exact, band_keys(signed.sig, bands, rows), is_new)
    if not len(i):
        return pl.DataFrame(
            schema={"i": pl.Int64, "j": pl.Int64, "method": pl.String, "similarity": pl.Float64}
        )
    same = exact[i] == exact[j]
    sim = np.where(same, 1.0, similarity(signed.sig, i, j))
    keep = verified(exact, item, signed.keys["numbers"], signed.sig, i, j, s.threshold - s.verify_margin,
                    signed.answer_sig, s.answer_threshold)  # fmt: skip
    if questions is not None:
        near = np.flatnonzero(keep & ~same & (sim < 1.0))
        if len(near):
            left = normalised(questions.gather(i[near])).to_list()
            right = normalised(questions.gather(j[near])).to_list()
            keep[near[_swapped(left, right)]] = False
    return pl.DataFrame({"i": i[keep], "j": j[keep], "method": np.where(same, "exact", "near")[keep],
                         "similarity": sim[keep].astype(np.float64)})  # fmt: skip


def cluster_labels(frame: pl.DataFrame, s: DedupSettings) -> np.ndarray:
    """The whole method in memory: the cluster label of each entry. Map: `sign_batch` batch by
    batch, as the stage signs. Reduce: `link` every entry, then connected components."""
    signed = Signed.concat(
        [sign_batch(frame.slice(k, BATCH), s) for k in range(0, max(len(frame), 1), BATCH)]
    )
    questions = frame["question"] if "question" in frame.columns else None
    links = link(signed, np.ones(len(frame), dtype=bool), s, questions)
    return components(len(frame), links["i"].to_numpy(), links["j"].to_numpy())
