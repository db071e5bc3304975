"""2D maps of feature vectors for plots: PCA and exact t-SNE, in numpy (no scikit-learn here).

t-SNE follows van der Maaten & Hinton (2008) with scikit-learn's defaults: perplexity 30
(lowered for small sets), PCA initialisation scaled to std 1e-4, early exaggeration 12 for
250 iterations with momentum 0.5, then momentum 0.8, learning rate max(N / 48, 50), per-
parameter gains, 1000 iterations. It is exact (all N² pairs, float32 in the loop): measured on
the loaded 2-core development machine, 1 s for 300 points and 32 s for 1000; time grows as N²,
so above MAX_TSNE_POINTS the plot uses PCA.
"""
from __future__ import annotations

import numpy as np

METHODS = ("tsne", "pca")
MAX_TSNE_POINTS = 3_000
MIN_TSNE_POINTS = 5  # below this t-SNE's perplexity is meaningless: PCA instead


def pca(features: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(points [N, dims], fraction of variance each dimension explains) via SVD.

    Sign-fixed (largest loading of each component positive) so repeated runs agree.
    """
    x = np.asarray(features, np.float64)
    x = x - x.mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    signs[signs == 0] = 1
    u, vt = u * signs, vt * signs[:, None]
    points = u[:, :dims] * s[:dims]
    if points.shape[1] < dims:  # fewer samples or features than dims
        points = np.pad(points, ((0, 0), (0, dims - points.shape[1])))
    total = float((s ** 2).sum())
    explained = (s[:dims] ** 2) / total if total > 0 else np.zeros(min(dims, len(s)))
    return points, explained


def _squared_distances(x: np.ndarray) -> np.ndarray:
    sq = (x ** 2).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    np.fill_diagonal(d, 0.0)
    return np.maximum(d, 0.0)


def conditional_probabilities(features: np.ndarray, perplexity: float, tol: float = 1e-5,
                              max_steps: int = 100) -> np.ndarray:
    """P(j | i) [N, N]: each row a Gaussian whose bandwidth bisection sets to `perplexity`."""
    d = _squared_distances(np.asarray(features, np.float64))
    n = len(d)
    target = np.log(perplexity)  # entropy in nats
    conditional = np.zeros((n, n))
    for i in range(n):
        row = np.delete(d[i], i)
        beta, low, high = 1.0, 0.0, np.inf
        for _ in range(max_steps):
            weights = np.exp(-(row - row.min()) * beta)  # shift: same P, no underflow
            total = weights.sum()
            p = weights / total
            entropy = np.log(total) + beta * np.sum((row - row.min()) * p)
            if abs(entropy - target) < tol:
                break
            if entropy > target:  # too flat: narrow the Gaussian
                low = beta
                beta = beta * 2.0 if high == np.inf else (beta + high) / 2.0
            else:
                high = beta
                beta = (beta + low) / 2.0
        conditional[i, np.arange(n) != i] = p
    return conditional


def joint_probabilities(features: np.ndarray, perplexity: float) -> np.ndarray:
    """Symmetric P [N, N] (sums to 1): the conditionals averaged with their transpose."""
    conditional = conditional_probabilities(features, perplexity)
    joint = (conditional + conditional.T) / (2.0 * len(conditional))
    return np.maximum(joint, 1e-12)


def kl_divergence(p: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """KL(P || Q) of the map `y` [N, 2] (Student-t Q) and its gradient with respect to `y`."""
    numerator = 1.0 / (1.0 + _squared_distances(y))
    np.fill_diagonal(numerator, 0.0)
    q = np.maximum(numerator / numerator.sum(), 1e-12)
    weights = (p - q) * numerator
    np.fill_diagonal(weights, 0.0)
    gradient = 4.0 * (weights.sum(1)[:, None] * y - weights @ y)
    off = ~np.eye(len(y), dtype=bool)
    return float(np.sum(p[off] * np.log(p[off] / q[off]))), gradient


def _kl_gradient(p: np.ndarray, y: np.ndarray, exaggeration: float) -> np.ndarray:
    """`kl_divergence`'s gradient alone, P scaled by `exaggeration`: the loop's only N² work."""
    numerator = 1.0 / (1.0 + _squared_distances(y))
    np.fill_diagonal(numerator, 0.0)
    weights = (exaggeration * p - numerator / numerator.sum()) * numerator
    return 4.0 * (weights.sum(1)[:, None] * y - weights @ y)


def tsne(features: np.ndarray, perplexity: float = 30.0, iterations: int = 1000,
         seed: int = 0) -> tuple[np.ndarray, float]:
    """(points [N, 2], final KL divergence). Features above 50 dims are first reduced by PCA."""
    x = np.asarray(features, np.float64)
    n = len(x)
    if n < MIN_TSNE_POINTS:
        raise ValueError(f"t-SNE needs at least {MIN_TSNE_POINTS} points, got {n}; use PCA.")
    if n > MAX_TSNE_POINTS:
        raise ValueError(f"Exact t-SNE of {n} points would take too long (at most "
                         f"{MAX_TSNE_POINTS}); use PCA.")
    if x.shape[1] > 50:
        x, _ = pca(x, 50)
    perplexity = min(perplexity, (n - 1) / 3.0)
    p = joint_probabilities(x, perplexity)
    y, _ = pca(x, 2)
    spread = y[:, 0].std()
    y = y / spread * 1e-4 if spread > 0 else \
        np.random.default_rng(seed).normal(0.0, 1e-4, (n, 2))
    exaggeration, learning_rate = 12.0, max(n / 12.0 / 4.0, 50.0)
    # The loop is memory-bound on N x N arrays: float32 halves its time (the map is a picture).
    p_loop, y = p.astype(np.float32), y.astype(np.float32)
    velocity, gains = np.zeros_like(y), np.ones_like(y)
    for step in range(iterations):
        early = step < 250
        gradient = _kl_gradient(p_loop, y, exaggeration if early else 1.0)
        # Delta-bar-delta gains: grow where the gradient opposes the last step (descent keeps
        # its direction), shrink where it agrees (the step overshot).
        gains = np.where(velocity * gradient < 0.0, gains + 0.2, gains * 0.8)
        np.maximum(gains, 0.01, out=gains)
        velocity = (0.5 if early else 0.8) * velocity - learning_rate * gains * gradient
        y = y + velocity
        y = y - y.mean(0)
    y = y.astype(np.float64)
    kl, _ = kl_divergence(p, y)
    return y, kl


def project_2d(features: np.ndarray, method: str = "tsne") -> tuple[np.ndarray, str]:
    """(points [N, 2], description of the map used): t-SNE falls back to PCA on tiny sets."""
    if method not in METHODS:
        raise ValueError(f"Unknown projection {method!r}; use one of {METHODS}.")
    n = len(features)
    if method == "tsne" and MIN_TSNE_POINTS <= n <= MAX_TSNE_POINTS:
        points, kl = tsne(features)
        return points, f"t-SNE, perplexity {min(30.0, (n - 1) / 3.0):.3g}, KL {kl:.3f}"
    points, explained = pca(features)
    why = "" if method == "pca" else f", t-SNE needs {MIN_TSNE_POINTS}..{MAX_TSNE_POINTS} videos"
    return points, f"PCA, {100 * float(np.sum(explained)):.0f}% of variance{why}"
