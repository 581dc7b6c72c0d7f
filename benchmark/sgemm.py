"""f32 matrix-multiply throughput of this machine through numpy's BLAS, for vecdex benchmark reports.

Usage: python sgemm.py '{"shapes": [[q, n, dim], ...], "repeats": 5}'
For each shape, times Q @ B.T with Q (q x dim) and B (n x dim) float32 (into a preallocated
q x n result, and allocating one), and a 4096^3 sgemm;
best of `repeats` after one warm-up. Prints one JSON object on stdout. Threads come from
OPENBLAS_NUM_THREADS, set by the caller.
"""

import io
import json
import os
import sys
import time
from contextlib import redirect_stdout

import numpy as np


def best_seconds(fn, repeats):
    fn()  # warm-up: page in, spin up the BLAS threads
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def blas_config():
    info = {"numpy": np.__version__}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        info.update({"name": blas.get("name"), "version": blas.get("version"), "openblas_config": blas.get("openblas configuration")})
    except TypeError:  # numpy < 1.26 has no mode= argument: keep the printed text
        text = io.StringIO()
        with redirect_stdout(text):
            np.show_config()
        info["show_config"] = text.getvalue()
    try:
        from threadpoolctl import threadpool_info

        info["threadpoolctl"] = threadpool_info()
    except Exception as error:  # optional
        info["threadpoolctl"] = f"unavailable: {error}"
    return info


def main():
    args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    repeats = int(args.get("repeats", 5))
    rng = np.random.default_rng(7)
    results = []
    for q, n, dim in args.get("shapes", []):
        a = rng.standard_normal((q, dim), dtype=np.float32)
        b = rng.standard_normal((n, dim), dtype=np.float32)
        flops = 2.0 * q * n * dim
        out = np.empty((q, n), dtype=np.float32)
        # Into a preallocated result (pure compute), and allocating a fresh one as `Q @ B.T` does.
        seconds = best_seconds(lambda: np.matmul(a, b.T, out=out), repeats)
        seconds_alloc = best_seconds(lambda: a @ b.T, repeats)
        results.append({"m": q, "n": n, "k": dim, "seconds": seconds, "gflops": flops / seconds / 1e9,
                        "secondsAllocating": seconds_alloc, "gflopsAllocating": flops / seconds_alloc / 1e9})
        del a, b, out
    size = int(args.get("square", 4096))
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    seconds = best_seconds(lambda: a @ b, repeats)
    square = {"m": size, "n": size, "k": size, "seconds": seconds, "gflops": 2.0 * size**3 / seconds / 1e9}
    print(json.dumps({
        "shapes": results,
        "square": square,
        "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "python": sys.version.split()[0],
        "blas": blas_config(),
    }))


if __name__ == "__main__":
    main()
