"""Paired comparisons of two systems on the same items: bootstrap confidence interval of the mean
difference and a paired sign-flip randomisation test. Deterministic for a given seed."""
from __future__ import annotations

import numpy as np


def paired_bootstrap(a: list[float], b: list[float], n_boot: int = 2000, n_perm: int = 5000, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Mean of b - a with a percentile bootstrap CI over items, and a two-sided sign-flip p-value."""
    x = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or len(a) != len(b):
        raise ValueError(f"paired comparison needs two equal, non-empty score lists (got {len(a)} and {len(b)})")
    rng = np.random.default_rng(seed)
    n = len(x)
    means = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    observed = abs(x.mean())
    flips = rng.choice([-1.0, 1.0], size=(n_perm, n))
    null = np.abs((flips * x).mean(axis=1))
    p = (1 + int((null >= observed - 1e-12).sum())) / (n_perm + 1)
    return {"mean_a": float(np.mean(a)), "mean_b": float(np.mean(b)), "diff": float(x.mean()),
            "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p), "n": n}


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% for z = 1.96); (0, 0) when n is 0."""
    import math

    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half
