"""Privacy audit maths for `kipctl audit` (issue #15): membership design, per-example attack
scores, ROC / TPR at a fixed FPR, LiRA with a fixed-variance Gaussian fit, Clopper-Pearson
intervals and an epsilon lower bound.

Conventions: every attack score is oriented so that a *higher* score means "more likely a
member" (distances and losses enter with a minus sign in the pipeline). Membership is decided
before any distillation by `balanced_membership` (LiRA's balanced design: every example of the
universe is a member in half of the runs, every run has exactly half of the universe).

References (read, not copied): Carlini et al., "Membership Inference Attacks From First
Principles" (S&P 2022), LiRA offline/online with a global ("fixed") variance;
tensorflow/privacy `privacy_tests/epsilon_lower_bound.py` (Clopper-Pearson ratio bound).
Everything here is host-side numpy except the draws, which take explicit JAX keys.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from kip_runner.core.types import PRNGKey

# ------------------------------------------------------------------- membership design


def universe_and_population(key: PRNGKey, labels: ArrayLike, universe: int,
                            n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint class-balanced index sets of `universe` examples each: the audit universe
    U (candidates for membership) and the population H (the `null` cell's only source).

    Args:
      key: PRNG key.
      labels: int class labels [N] of the training split.
      universe: |U| = |H|, a multiple of n_classes (checked by the caller).
      n_classes: C.

    Returns:
      (u_idx [universe], h_idx [universe]) int64 training indices, grouped by class.

    Raises:
      ValueError: some class has fewer than 2 * universe / C examples.
    """
    labels = np.asarray(labels)
    per_class = universe // n_classes
    u_idx, h_idx = [], []
    for c, k in enumerate(jax.random.split(key, n_classes)):
        members = np.flatnonzero(labels == c)  # [n_c]
        if len(members) < 2 * per_class:
            raise ValueError(f"class {c} has {len(members)} training examples; a universe of "
                             f"{universe} and a disjoint population of the same size need "
                             f"{2 * per_class} per class; lower `universe`")
        picked = members[np.asarray(jax.random.permutation(k, len(members)))[:2 * per_class]]
        u_idx.append(picked[:per_class])
        h_idx.append(picked[per_class:])
    return np.concatenate(u_idx).astype(np.int64), np.concatenate(h_idx).astype(np.int64)


def balanced_membership(key: PRNGKey, labels: ArrayLike, n_runs: int) -> np.ndarray:
    """LiRA's balanced design, made exact: run r's members are a class-balanced half of the
    universe, and each example is a member in half of the runs.

    Examples are paired at random within their class; in every run exactly one example of each
    pair is a member, the first in a random subset of n_runs // 2 runs (n_runs odd: n_runs // 2
    or n_runs // 2 + 1, at random) and the second in the other runs. So each run has exactly
    n / 2 members, n_c / 2 of each class c, and each example is a member in n_runs / 2 runs
    (odd n_runs: floor or ceil).

    Args:
      key: PRNG key.
      labels: int class labels [n] of the universe; every class count must be even.
      n_runs: R >= 2.

    Returns:
      bool [R, n]: member[r, i] is True when example i is a member of run r.

    Raises:
      ValueError: a class has an odd count, or n_runs < 2.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n_runs < 2:
        raise ValueError(f"the balanced design needs at least 2 runs, got {n_runs}")
    counts = np.bincount(labels)
    if np.any(counts % 2):
        raise ValueError(f"every class of the universe needs an even count, got {counts}")
    k_pair, k_runs, k_odd = jax.random.split(key, 3)
    order = np.asarray(jax.random.permutation(k_pair, n))  # [n]
    order = order[np.argsort(labels[order], kind="stable")]  # [n] by class, random within
    first, second = order[0::2], order[1::2]  # [n/2] each; classes have even counts
    # float32 draws whatever jax_enable_x64 says: the design must not depend on the flag
    u = np.asarray(jax.random.uniform(k_runs, (n // 2, n_runs), jnp.float32))  # [n/2, R]
    ranks = np.argsort(np.argsort(u, axis=1), axis=1)  # [n/2, R]
    size = np.full(n // 2, n_runs // 2)  # [n/2]
    if n_runs % 2:
        coin = jax.random.uniform(k_odd, (n // 2,), jnp.float32) < 0.5  # [n/2]
        size = size + np.asarray(coin, np.int64)
    first_in = ranks < size[:, None]  # [n/2, R]
    member = np.zeros((n_runs, n), bool)  # [R, n]
    member[:, first] = first_in.T
    member[:, second] = ~first_in.T
    return member


# ------------------------------------------------------------------- per-example scores


def margin(pred: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Correct-class output minus the best other output. pred [n, C], labels [n] -> [n]"""
    pred = np.asarray(pred, np.float64)
    labels = np.asarray(labels)
    rows = np.arange(pred.shape[0])
    correct = pred[rows, labels]  # [n]
    other = pred.copy()
    other[rows, labels] = -np.inf
    return correct - other.max(axis=1)  # [n]


def squared_loss(pred: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """Per-example squared error of the KRR regression. pred, targets [n, C] -> [n]"""
    diff = np.asarray(pred, np.float64) - np.asarray(targets, np.float64)  # [n, C]
    return np.sum(diff * diff, axis=1)  # [n]


def _flat(x: ArrayLike) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], -1)  # [n, d]


def nearest_sq_distance(x: ArrayLike, s: ArrayLike, chunk: int = 1024
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Squared l2 distance of each x to its nearest s, and that s's index.

    x [n, ...], s [m, ...] (same trailing shape) -> (dist [n], index [n])
    """
    xf, sf = _flat(x), _flat(s)  # [n, d], [m, d]
    s_sq = np.sum(sf * sf, axis=1)  # [m]
    dist = np.empty(xf.shape[0])
    index = np.empty(xf.shape[0], np.int64)
    for i in range(0, xf.shape[0], chunk):
        xb = xf[i:i + chunk]  # [b, d]
        d2 = np.sum(xb * xb, axis=1)[:, None] + s_sq[None, :] - 2.0 * xb @ sf.T  # [b, m]
        d2 = np.maximum(d2, 0.0)
        index[i:i + chunk] = np.argmin(d2, axis=1)
        dist[i:i + chunk] = d2[np.arange(xb.shape[0]), index[i:i + chunk]]
    return dist, index


def unfrozen_count(d: int, rho: float) -> int:
    """Coordinates of a KIP_rho image that were not frozen: d - round(rho d) (the corruption
    mask freezes exactly round(rho d) of them; core.corrupt.corruption_mask)."""
    return max(1, d - int(np.round(rho * d)))


def trimmed_nearest(x: ArrayLike, s: ArrayLike, keep: int, chunk: int = 50
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The adaptive attack on KIP_rho: for each x, the mean of its `keep` smallest squared
    pixel differences to a support image, minimised over the support (look only where the
    pixels were not frozen, without knowing where that is).

    x [n, ...], s [m, ...] -> (dist [n], index [n]); keep >= d is the mean squared
    difference to the l2-nearest image (nearest_sq_distance / d).
    """
    xf, sf = _flat(x), _flat(s)  # [n, d], [m, d]
    d = xf.shape[1]
    if keep >= d:
        dist, index = nearest_sq_distance(xf, sf)
        return dist / d, index
    dist = np.empty(xf.shape[0])
    index = np.empty(xf.shape[0], np.int64)
    for i in range(0, xf.shape[0], chunk):
        diff = xf[i:i + chunk, None, :] - sf[None, :, :]  # [b, m, d]
        d2 = diff * diff
        # introselect: the `keep` smallest of each row, in linear time (an argsort or
        # lax.top_k over the d axis was 10-100x slower here)
        low = np.partition(d2, keep - 1, axis=-1)[..., :keep].mean(axis=-1)  # [b, m]
        index[i:i + chunk] = np.argmin(low, axis=1)
        dist[i:i + chunk] = low[np.arange(low.shape[0]), index[i:i + chunk]]
    return dist, index


def kernel_similarity(k_xs: ArrayLike, k_xx: ArrayLike, k_ss: ArrayLike) -> np.ndarray:
    """Largest normalised kernel similarity k(x, s) / sqrt(k(x, x) k(s, s)) over the support.

    k_xs [n, m], k_xx [n] (diagonal), k_ss [m] (diagonal) -> [n]
    """
    k_xs = np.asarray(k_xs, np.float64)
    norm = np.sqrt(np.maximum(np.asarray(k_xx, np.float64), 0.0))[:, None] * \
        np.sqrt(np.maximum(np.asarray(k_ss, np.float64), 0.0))[None, :]  # [n, m]
    return np.max(k_xs / np.where(norm > 0, norm, np.inf), axis=1)  # [n]


# ------------------------------------------------------------------- ROC


class Roc(NamedTuple):
    """The ROC of "member if score >= threshold" over every distinct threshold, from
    (0, 0) (threshold +inf) to (1, 1)."""

    fpr: np.ndarray  # [k]
    tpr: np.ndarray  # [k]
    thresholds: np.ndarray  # [k]
    tp: np.ndarray  # [k] int
    fp: np.ndarray  # [k] int
    n_pos: int
    n_neg: int


def roc_curve(scores: ArrayLike, is_member: ArrayLike) -> Roc:
    """ROC of a score (higher = member). Ties form one point (no arbitrary tie order); NaN
    scores count as the lowest possible score (never flagged before any other).

    Args:
      scores: [n] float.
      is_member: [n] bool, with at least one member and one non-member.

    Raises:
      ValueError: no members or no non-members.
    """
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(is_member, bool).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"an ROC needs members and non-members, got {n_pos} and {n_neg}")
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-s, kind="stable")  # [n] descending
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each tie group
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    tp, fp = np.r_[0, tp], np.r_[0, fp]  # [k]
    thresholds = np.r_[np.inf, s[last]]  # [k]
    return Roc(fp / n_neg, tp / n_pos, thresholds, tp, fp, n_pos, n_neg)


def roc_auc(roc: Roc) -> float:
    """Area under the ROC (trapezoids: a tie between a member and a non-member counts 1/2,
    i.e. the Mann-Whitney statistic)."""
    return float(np.sum(np.diff(roc.fpr) * (roc.tpr[1:] + roc.tpr[:-1]) / 2.0))


class OperatingPoint(NamedTuple):
    tpr: float
    fpr: float  # the achieved FPR (<= the target)
    tp: int
    fp: int
    n_pos: int
    n_neg: int
    threshold: float


def tpr_at_fpr(roc: Roc, max_fpr: float) -> OperatingPoint:
    """The highest TPR among thresholds whose FPR is at most max_fpr (no interpolation:
    LiRA's "TPR at x% FPR")."""
    ok = np.flatnonzero(roc.fpr <= max_fpr + 1e-15)  # never empty: (0, 0) is a point
    i = int(ok[np.argmax(roc.tpr[ok])])
    return OperatingPoint(float(roc.tpr[i]), float(roc.fpr[i]), int(roc.tp[i]), int(roc.fp[i]),
                          roc.n_pos, roc.n_neg, float(roc.thresholds[i]))


# ------------------------------------------------------------------- Clopper-Pearson


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) in float64 (Numerical Recipes' betai)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b), by bisection on betainc (monotone in x)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-17 + 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval for k successes out of n (alpha/2 on each side).

    Raises:
      ValueError: n < 1, k outside [0, n], or confidence outside (0, 1).
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"Clopper-Pearson needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    # closed forms at the ends: Beta(1, n) and Beta(n, 1) quantiles
    if k == 0:
        lo = 0.0
    elif k == n:
        lo = (alpha / 2.0) ** (1.0 / n)
    else:
        lo = beta_ppf(alpha / 2.0, k, n - k + 1)
    if k == n:
        hi = 1.0
    elif k == 0:
        hi = 1.0 - (alpha / 2.0) ** (1.0 / n)
    else:
        hi = beta_ppf(1.0 - alpha / 2.0, k + 1, n - k)
    return lo, hi


def epsilon_lower_bound(tp: int, fp: int, n_pos: int, n_neg: int,
                        confidence: float = 0.95) -> float:
    """A statistical lower bound on epsilon (delta = 0) from one attack operating point.

    An (epsilon, 0)-DP mechanism forces TPR <= e^eps FPR and TNR <= e^eps FNR for every
    membership test. With Clopper-Pearson intervals [lo, hi] of TPR and FPR:

        eps >= max(0, log(TPR_lo / FPR_hi), log((1 - FPR_hi) / (1 - TPR_lo)))

    (each ratio's numerator at its lower bound, its denominator at its upper bound, as
    tensorflow/privacy's Clopper-Pearson RatioBound). Valid at the interval's confidence for
    one pre-chosen threshold and independent trials.
    """
    tpr_lo, _ = clopper_pearson(tp, n_pos, confidence)
    _, fpr_hi = clopper_pearson(fp, n_neg, confidence)
    bounds = [0.0]
    if tpr_lo > 0.0 and fpr_hi > 0.0:
        bounds.append(math.log(tpr_lo / fpr_hi))
    if tpr_lo < 1.0 and fpr_hi < 1.0:
        bounds.append(math.log((1.0 - fpr_hi) / (1.0 - tpr_lo)))
    return max(bounds)


# ------------------------------------------------------------------- LiRA


class GaussianFit(NamedTuple):
    """Per-example in/out means with one global ("fixed") standard deviation each."""

    mean_in: np.ndarray  # [n]
    mean_out: np.ndarray  # [n]
    std_in: float
    std_out: float
    n_in: np.ndarray  # [n] shadow runs in which the example was a member
    n_out: np.ndarray  # [n]


def _pooled_std(scores: np.ndarray, mask: np.ndarray, mean: np.ndarray) -> float:
    """sqrt of the within-example variance pooled over examples (ddof 1 per example);
    falls back to the std of all masked scores when no example has two of them."""
    count = mask.sum(axis=0)  # [n]
    resid = np.where(mask, scores - mean[None, :], 0.0)  # [S, n]
    dof = np.sum(np.maximum(count - 1, 0))
    if dof > 0:
        return float(np.sqrt(np.sum(resid * resid) / dof))
    vals = scores[mask]
    return float(np.std(vals)) if vals.size > 1 else 1.0


def _lowest_k(mask: np.ndarray, priority: np.ndarray, k: int) -> np.ndarray:
    """The k entries of each column of mask with the lowest priority. [S, n] bool"""
    p = np.where(mask, priority, np.inf)  # [S, n]
    rank = np.argsort(np.argsort(p, axis=0, kind="stable"), axis=0)  # [S, n]
    return mask & (rank < k)


def fit_gaussians(scores: ArrayLike, member: ArrayLike, equalise: bool = True,
                  priority: Optional[ArrayLike] = None) -> GaussianFit:
    """LiRA's fixed-variance fit on shadow runs: for each example the mean of its score over
    the shadows where it was in (out), and one standard deviation per side pooled over all
    examples (within-example spread; the per-example variance is too noisy with few shadows).
    An example never in (out) gets the other side's mean shifted by the average in-out gap.

    equalise: every example uses the same number of in (out) shadows, the smallest count
    over the examples (LiRA's code truncates the same way). Under a balanced design the
    leave-one-out counts give the target's membership away (a member of the target run is
    in R/2 - 1 of the other runs, a non-member in R/2), and means estimated from 7 vs 8
    shadows have different spreads, which biases the attack below chance on a support that
    knows nothing. Which shadows are kept is decided by `priority` (lowest first; lira_scores
    draws it at random): keeping the first ones in run order would make a member's shadows
    and a non-member's differ systematically in which runs they use, and run-level score
    offsets then bias the test again (tests/test_audit_core.py has both cases).

    Args:
      scores: [S, n] shadow scores.
      member: [S, n] bool.
      priority: [S, n] float, which shadows an equalised fit keeps; None: run order.
    """
    s = np.asarray(scores, np.float64)
    m = np.asarray(member, bool)
    if equalise:
        pr = (np.broadcast_to(np.arange(s.shape[0], dtype=np.float64)[:, None], s.shape)
              if priority is None else np.asarray(priority, np.float64))  # [S, n]
        m_in = _lowest_k(m, pr, max(1, int(m.sum(axis=0).min())))  # [S, n]
        m_out = _lowest_k(~m, pr, max(1, int((~m).sum(axis=0).min())))  # [S, n]
    else:
        m_in, m_out = m, ~m
    n_in, n_out = m_in.sum(axis=0), m_out.sum(axis=0)  # [n], [n]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = np.sum(np.where(m_in, s, 0.0), axis=0) / n_in  # [n] (nan where n_in = 0)
        mean_out = np.sum(np.where(m_out, s, 0.0), axis=0) / n_out  # [n]
    both = (n_in > 0) & (n_out > 0)
    if both.any():
        shift = float(np.mean(mean_in[both] - mean_out[both]))
    else:
        shift = float(np.mean(s[m_in]) - np.mean(s[m_out])) if m_in.any() and m_out.any() \
            else 0.0
    mean_in = np.where(n_in > 0, mean_in, mean_out + shift)
    mean_out = np.where(n_out > 0, mean_out, mean_in - shift)
    std_in = _pooled_std(s, m_in, mean_in)
    std_out = _pooled_std(s, m_out, mean_out)
    return GaussianFit(mean_in, mean_out, max(std_in, 1e-30), max(std_out, 1e-30), n_in, n_out)


def _log_normal_pdf(x: np.ndarray, mean: np.ndarray, std: float) -> np.ndarray:
    z = (x - mean) / std
    return -0.5 * z * z - math.log(std) - 0.5 * math.log(2.0 * math.pi)


def lira_scores(scores: ArrayLike, member: ArrayLike, online: bool,
                key: Optional[PRNGKey] = None) -> np.ndarray:
    """LiRA with each run in turn as the target and all other runs as its shadows.

    offline: (s - mean_out) / std_out, the one-sided test against the out distribution
             (monotone in LiRA's 1 - Pr[Z > s], Z ~ N(mean_out, std_out^2));
    online:  log N(s; mean_in, std_in^2) - log N(s; mean_out, std_out^2).

    Args:
      scores: [R, n] the score of every example under every run (higher = member).
      member: [R, n] bool, the design.
      online: the online (in and out) test, else offline.
      key: draws which shadows the equal-count fit keeps (default PRNGKey(0)).

    Returns:
      [R, n] attack scores (higher = member); the target's own row never enters its fit.
    """
    s = np.asarray(scores, np.float64)
    m = np.asarray(member, bool)
    key = jax.random.PRNGKey(0) if key is None else key
    priority = np.asarray(jax.random.uniform(key, s.shape, jnp.float32))  # [R, n]
    out = np.empty_like(s)
    for r in range(s.shape[0]):
        others = np.arange(s.shape[0]) != r
        fit = fit_gaussians(s[others], m[others], priority=priority[others])
        if online:
            out[r] = (_log_normal_pdf(s[r], fit.mean_in, fit.std_in)
                      - _log_normal_pdf(s[r], fit.mean_out, fit.std_out))
        else:
            out[r] = (s[r] - fit.mean_out) / fit.std_out
    return out
