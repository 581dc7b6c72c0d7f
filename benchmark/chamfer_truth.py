"""Exact Chamfer (MaxSim) top-k by a plain numpy scan, independent of vecdex: the ground truth of
the wordnet-minilm-tokens multi-vector set.

Usage: python chamfer_truth.py BASE_TOKENS BASE_OFFSETS QUERY_TOKENS QUERY_OFFSETS DIM K OUT
  *_TOKENS   float32 rows of DIM values (little-endian)
  *_OFFSETS  uint32, count + 1 entries: document i owns rows offsets[i] .. offsets[i+1]
Chamfer(Q, D) = sum over q in Q of max over d in D of <q, d> (higher is closer), computed with
float32 products (BLAS) and float64 sums. Ties go to the lower document number.

OUT, little-endian: magic "VDXCT001", uint32 queries, uint32 k, int32[queries x k] document
numbers best first, float64[queries x k] their Chamfer similarities.
"""

import os
import sys
import time

import numpy as np

# Rows of base tokens multiplied at once (a block of query tokens x this many float32 products).
BASE_BLOCK = 1 << 17
QUERY_BLOCK = 128


def main():
    base_file, base_offsets_file, query_file, query_offsets_file, dim, k, out = sys.argv[1:8]
    dim, k = int(dim), int(k)
    base = np.fromfile(base_file, dtype="<f4").reshape(-1, dim)
    base_offsets = np.fromfile(base_offsets_file, dtype="<u4").astype(np.int64)
    queries = np.fromfile(query_file, dtype="<f4").reshape(-1, dim)
    query_offsets = np.fromfile(query_offsets_file, dtype="<u4").astype(np.int64)
    documents = len(base_offsets) - 1
    count = len(query_offsets) - 1
    if base_offsets[-1] != len(base) or query_offsets[-1] != len(queries):
        raise SystemExit("offsets do not match the token files")
    if np.any(np.diff(base_offsets) <= 0) or np.any(np.diff(query_offsets) <= 0):
        raise SystemExit("every document and query needs at least one token")
    k = min(k, documents)
    # Document blocks: whole documents, about BASE_BLOCK tokens each.
    starts = [0]
    while starts[-1] < documents:
        target = base_offsets[starts[-1]] + BASE_BLOCK
        nxt = int(np.searchsorted(base_offsets, target, side="right")) - 1
        starts.append(min(documents, max(nxt, starts[-1] + 1)))
    top_ids = np.zeros((count, k), dtype=np.int32)
    top_scores = np.zeros((count, k), dtype=np.float64)
    started = time.time()
    for q0 in range(0, count, QUERY_BLOCK):
        q1 = min(count, q0 + QUERY_BLOCK)
        rows = queries[query_offsets[q0] : query_offsets[q1]]
        query_starts = query_offsets[q0:q1] - query_offsets[q0]
        scores = np.empty((q1 - q0, documents), dtype=np.float64)
        for d0, d1 in zip(starts[:-1], starts[1:]):
            first, last = base_offsets[d0], base_offsets[d1]
            products = rows @ base[first:last].T  # query tokens x document tokens, float32
            best = np.maximum.reduceat(products, base_offsets[d0:d1] - first, axis=1)
            scores[:, d0:d1] = np.add.reduceat(best.astype(np.float64), query_starts, axis=0)
        for i in range(q1 - q0):
            row = scores[i]
            part = np.argpartition(-row, k - 1)[:k] if k < documents else np.arange(documents)
            # Everything tied with the k-th score competes, so ties resolve to lower numbers.
            cut = row[part].min()
            tied = np.nonzero(row >= cut)[0]
            order = np.lexsort((tied, -row[tied]))[:k]
            top_ids[q0 + i] = tied[order]
            top_scores[q0 + i] = row[tied[order]]
        done = q1
        rate = done / max(1e-9, time.time() - started)
        print(f"chamfer truth: {done}/{count} queries, {rate:.1f}/s", file=sys.stderr, flush=True)
    with open(out + ".tmp", "wb") as f:
        f.write(b"VDXCT001")
        f.write(np.array([count, k], dtype="<u4").tobytes())
        f.write(top_ids.astype("<i4").tobytes())
        f.write(top_scores.astype("<f8").tobytes())
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
