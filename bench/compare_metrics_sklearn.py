"""Times scikit-learn on the sizes of bench/bench_metrics.cpp, for a side-by-side with cxr's CPU metrics.

Same data model (scores = label + N(0, 1), numpy's generator instead of Philox, so values agree only
statistically). The bootstrap is timed over `--time-resamples` resamples (each: roc_auc_score and
average_precision_score for every label on an index resample) and extrapolated to --bootstrap.
Run in a virtual environment with numpy and scikit-learn (never a build or CI dependency):
    python bench/compare_metrics_sklearn.py [--n 10000000] [--rows 100000] [--labels 14] [--bootstrap 1000]
"""
import argparse
import json
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def data(rng, n, prevalence):
    y = (rng.random(n) < prevalence).astype(np.int8)
    return y + rng.standard_normal(n), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--labels", type=int, default=14)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--time-resamples", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    s, y = data(rng, a.n, 0.1)
    t0 = time.perf_counter()
    auc = roc_auc_score(y, s)
    t_auc = time.perf_counter() - t0
    t0 = time.perf_counter()
    apv = average_precision_score(y, s)
    t_ap = time.perf_counter() - t0
    print(f"sklearn AUROC over {a.n} scores: {auc:.4f} in {t_auc:.3f} s; AUPRC {apv:.4f} in {t_ap:.3f} s")
    cols = [data(rng, a.rows, 0.05 + 0.02 * l) for l in range(a.labels)]
    t0 = time.perf_counter()
    for _ in range(a.time_resamples):
        idx = rng.integers(0, a.rows, a.rows)
        for sc, yy in cols:
            roc_auc_score(yy[idx], sc[idx])
            average_precision_score(yy[idx], sc[idx])
    per = (time.perf_counter() - t0) / a.time_resamples
    print(f"sklearn bootstrap: {per:.3f} s per resample of {a.rows} x {a.labels} (AUROC + AUPRC) -> "
          f"{per * a.bootstrap:.1f} s for {a.bootstrap} resamples (extrapolated from {a.time_resamples})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"auroc_seconds": t_auc, "auprc_seconds": t_ap, "bootstrap_seconds_per_resample": per,
                       "bootstrap_seconds_extrapolated": per * a.bootstrap, "n": a.n, "rows": a.rows,
                       "labels": a.labels}, f, indent=2)


if __name__ == "__main__":
    main()
