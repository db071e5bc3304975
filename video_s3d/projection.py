"""2D maps of feature vectors for plots: PCA (numpy SVD) and t-SNE (scikit-learn).

t-SNE is `sklearn.manifold.TSNE` with its defaults (Barnes-Hut, PCA initialisation, learning
rate "auto", early exaggeration 12), perplexity 30 lowered to (N - 1) / 3 for small sets, and
a fixed seed; features above 50 dimensions are first reduced to 50 by PCA, as scikit-learn's
TSNE documentation recommends. Barnes-Hut grows as N log N, so there is no upper size limit.
"""

from __future__ import annotations

import numpy as np

from video_s3d.errors import UserError

METHODS = ("tsne", "pca")
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
    total = float((s**2).sum())
    explained = (s[:dims] ** 2) / total if total > 0 else np.zeros(min(dims, len(s)))
    return points, explained


def tsne(features: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> tuple[np.ndarray, float]:
    """(points [N, 2], final KL divergence) from scikit-learn's t-SNE."""
    from sklearn.manifold import TSNE  # scikit-learn loads only when a t-SNE is drawn

    x = np.asarray(features, np.float64)
    n = len(x)
    if n < MIN_TSNE_POINTS:
        raise UserError(f"t-SNE needs at least {MIN_TSNE_POINTS} points, got {n}; use PCA.")
    if x.shape[1] > 50:
        x, _ = pca(x, 50)
    model = TSNE(
        n_components=2,
        perplexity=effective_perplexity(n, perplexity),
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    points = model.fit_transform(x)
    return np.asarray(points, np.float64), float(model.kl_divergence_)


def effective_perplexity(n: int, perplexity: float = 30.0) -> float:
    """Perplexity lowered for small sets (it must stay below the number of neighbours)."""
    return min(perplexity, (n - 1) / 3.0)


def project_2d(features: np.ndarray, method: str = "tsne") -> tuple[np.ndarray, str]:
    """(points [N, 2], description of the map used): t-SNE falls back to PCA on tiny sets."""
    if method not in METHODS:
        raise UserError(f"Unknown projection {method!r}; use one of {METHODS}.")
    n = len(features)
    if method == "tsne" and n >= MIN_TSNE_POINTS:
        points, kl = tsne(features)
        return points, f"t-SNE, perplexity {effective_perplexity(n):.3g}, KL {kl:.3f}"
    points, explained = pca(features)
    why = "" if method == "pca" else f", t-SNE needs at least {MIN_TSNE_POINTS} videos"
    return points, f"PCA, {100 * float(np.sum(explained)):.0f}% of variance{why}"
