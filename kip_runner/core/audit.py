"""Privacy audit maths for `kipctl audit` (issues #15, #26): membership design, per-example
attack scores, ROC / TPR at a fixed FPR, LiRA with a fixed-variance Gaussian fit, held-out
operating points with cluster-bootstrap intervals, the null gate, and the certified one-run
epsilon lower bound.

Conventions: every attack score is oriented so that a *higher* score means "more likely a
member" (distances and losses enter with a minus sign in the pipeline). Membership is decided
before any distillation by `paired_membership` (replace-one pairs, one independent coin per
pair and run; every run has exactly half of the universe).

References (read, not copied): Carlini et al., "Membership Inference Attacks From First
Principles" (S&P 2022), LiRA offline/online with a global ("fixed") variance; Steinke, Nasr &
Jagielski, "Privacy Auditing with One (1) Training Run" (NeurIPS 2023).
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


def paired_membership(key: PRNGKey, labels: ArrayLike, n_runs: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The audit's membership design: examples are paired at random within their class, and in
    every run one fair coin per pair, independent of every other pair and run, picks which of
    the two is the member. So each run has exactly n / 2 members (n_c / 2 of each class c),
    flipping one coin replaces one member by its partner (the replace-one neighbouring
    relation), and a run's coins are independent of all other runs' (what lets an attack use
    the other runs as shadows and still be audited as a one-run test, audit_one_run).

    Args:
      key: PRNG key.
      labels: int class labels [n] of the universe; every class count must be even.
      n_runs: R >= 2.

    Returns:
      (member bool [R, n]: member[r, i] is True when example i is a member of run r;
       partner int [n]: the other example of i's pair)

    Raises:
      ValueError: a class has an odd count, or n_runs < 2.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n_runs < 2:
        raise ValueError(f"the paired design needs at least 2 runs, got {n_runs}")
    counts = np.bincount(labels)
    if np.any(counts % 2):
        raise ValueError(f"every class of the universe needs an even count, got {counts}")
    k_pair, k_coin = jax.random.split(key)
    order = np.asarray(jax.random.permutation(k_pair, n))  # [n]
    order = order[np.argsort(labels[order], kind="stable")]  # [n] by class, random within
    first, second = order[0::2], order[1::2]  # [n/2] each; classes have even counts
    # float32 draws whatever jax_enable_x64 says: the design must not depend on the flag
    coin = np.asarray(jax.random.uniform(k_coin, (n_runs, n // 2), jnp.float32)) < 0.5
    member = np.zeros((n_runs, n), bool)  # [R, n]
    member[:, first] = coin
    member[:, second] = ~coin
    partner = np.empty(n, np.int64)
    partner[first], partner[second] = second, first
    return member, partner


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


def weighted_nearest(x: ArrayLike, s: ArrayLike, w: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """For each x, the weighted mean squared pixel difference to a support image s_j with s_j's
    own pixel weights w_j, minimised over j: sum_p w_jp (x_p - s_jp)^2 / sum_p w_jp. A support
    image with no weight is never the nearest. Three matrix products, no [n, m, d] tensor.

    x [n, ...], s [m, ...], w [m, ...] (>= 0) -> (dist [n] (inf when no image has weight),
    index [n])
    """
    xf, sf, wf = _flat(x), _flat(s), _flat(w)  # [n, d], [m, d], [m, d]
    total = wf.sum(axis=1)  # [m]
    num = (xf * xf) @ wf.T - 2.0 * xf @ (wf * sf).T + np.sum(wf * sf * sf, axis=1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(total[None, :] > 0, np.maximum(num, 0.0) / total[None, :], np.inf)
    index = np.argmin(mean, axis=1)  # [n]
    return mean[np.arange(xf.shape[0]), index], index


def certain_weights(s: ArrayLike, noise_range: float = 1.0) -> np.ndarray:
    """1 on the pixels that cannot be frozen noise (|s| > the noise range: KIP_rho's frozen
    pixels are U(-1, 1), core.corrupt), 0 elsewhere. [m, ...] -> [m, ...]"""
    return (np.abs(np.asarray(s, np.float64)) > noise_range).astype(np.float64)


def estimated_unfrozen(s: ArrayLike, rho: float, noise_range: float = 1.0,
                       bins: int = 40) -> np.ndarray:
    """The posterior probability that each support pixel was learned, not frozen, from the
    released values and the public rho alone: the histogram of all support pixel values is
    rho U(-r, r) + (1 - rho) f, so in a bin inside [-r, r] with count c the frozen share is
    about min(1, rho N width / (2 r c)); outside [-r, r] a pixel is learned for certain.
    rho = 0 gives 1 everywhere. [m, ...] -> [m, ...] in [0, 1]"""
    v = np.asarray(s, np.float64)
    if rho <= 0:
        return np.ones_like(v)
    edges = np.linspace(-noise_range, noise_range, bins + 1)
    inside = np.abs(v) <= noise_range
    b = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
    counts = np.bincount(b[inside], minlength=bins).astype(np.float64)  # [bins]
    frozen = rho * v.size / bins  # expected frozen pixels per bin (uniform over [-r, r])
    p_learned = 1.0 - np.minimum(1.0, frozen / np.maximum(counts, 1.0))  # [bins]
    return np.where(inside, p_learned[b], 1.0)


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


# ------------------------------------------------------------------- beta distribution


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


# ------------------------------------------------------------------- LiRA


class GaussianFit(NamedTuple):
    """Per-example in/out means with one global ("fixed") standard deviation per side and one
    pooled over both sides (the one LiRA online uses)."""

    mean_in: np.ndarray  # [n]
    mean_out: np.ndarray  # [n]
    std_in: float
    std_out: float
    n_in: np.ndarray  # [n] shadow runs in which the example was a member
    n_out: np.ndarray  # [n]
    std: float = 1.0  # pooled over the in and the out residuals


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
    dof_in = float(np.sum(np.maximum(n_in - 1, 0)))
    dof_out = float(np.sum(np.maximum(n_out - 1, 0)))
    pooled = (math.sqrt((dof_in * std_in ** 2 + dof_out * std_out ** 2) / (dof_in + dof_out))
              if dof_in + dof_out > 0 else math.sqrt(0.5 * (std_in ** 2 + std_out ** 2)))
    return GaussianFit(mean_in, mean_out, max(std_in, 1e-30), max(std_out, 1e-30), n_in, n_out,
                       max(pooled, 1e-30))


def _log_normal_pdf(x: np.ndarray, mean: np.ndarray, std: float) -> np.ndarray:
    z = (x - mean) / std
    return -0.5 * z * z - math.log(std) - 0.5 * math.log(2.0 * math.pi)


def lira_scores(scores: ArrayLike, member: ArrayLike, online: bool,
                key: Optional[PRNGKey] = None, equalise: bool = False) -> np.ndarray:
    """LiRA with each run in turn as the target and all other runs as its shadows.

    offline: (s - mean_out) / std_out, the one-sided test against the out distribution
             (monotone in LiRA's 1 - Pr[Z > s], Z ~ N(mean_out, std_out^2));
    online:  log N(s; mean_in, std^2) - log N(s; mean_out, std^2) with one pooled std (the
             fixed-variance test: linear in s; separate in / out variances made it quadratic
             and worse than offline).
    Several queries per example (scores [R, n, q], e.g. shifted views of each x): each
    query gets its own fit and the per-query statistics are summed (offline: z-scores,
    online: log-likelihood ratios; independent queries, as LiRA's augmented queries).

    Args:
      scores: [R, n] or [R, n, q] the score of every example under every run (higher =
        member).
      member: [R, n] bool, the design.
      online: the online (in and out) test, else offline.
      key: draws which shadows an equal-count fit keeps (default PRNGKey(0)).
      equalise: equal in / out shadow counts for every example (fit_gaussians); needed under a
        design whose counts give membership away, not under paired_membership.

    Returns:
      [R, n] attack scores (higher = member); the target's own row never enters its fit.
    """
    s = np.asarray(scores, np.float64)
    if s.ndim == 2:
        s = s[..., None]  # [R, n, 1]
    m = np.asarray(member, bool)
    key = jax.random.PRNGKey(0) if key is None else key
    priority = np.asarray(jax.random.uniform(key, m.shape, jnp.float32))  # [R, n]
    out = np.zeros(m.shape)
    for r in range(s.shape[0]):
        others = np.arange(s.shape[0]) != r
        for q in range(s.shape[2]):
            fit = fit_gaussians(s[others, :, q], m[others], equalise=equalise,
                                priority=priority[others])
            if online:
                out[r] += (_log_normal_pdf(s[r, :, q], fit.mean_in, fit.std)
                           - _log_normal_pdf(s[r, :, q], fit.mean_out, fit.std))
            else:
                out[r] += (s[r, :, q] - fit.mean_out) / fit.std_out
    return out


# ------------------------------------------------------------------- held-out evaluation


def split_runs(key: PRNGKey, n_runs: int) -> np.ndarray:
    """The selection half of the runs (floor(R / 2) of them, at random): attacks, thresholds
    and operating points are chosen there and evaluated on the other runs. bool [R]"""
    pick = np.asarray(jax.random.permutation(key, n_runs))[:n_runs // 2]
    out = np.zeros(n_runs, bool)
    out[pick] = True
    return out


def heldout_threshold(scores: ArrayLike, positive: ArrayLike, max_fpr: float) -> float:
    """The threshold ("member if score >= t") with the highest TPR at FPR <= max_fpr on these
    (selection) scores; +inf flags nothing."""
    return tpr_at_fpr(roc_curve(scores, positive), max_fpr).threshold


def flagged(scores: ArrayLike, threshold: float) -> np.ndarray:
    s = np.asarray(scores, np.float64)
    return np.where(np.isnan(s), False, s >= threshold)


def empirical_epsilon(tpr: ArrayLike, fpr: ArrayLike, floor: float) -> np.ndarray:
    """max(log(TPR / FPR), log((1 - FPR) / (1 - TPR)), 0) with the rates floored at `floor`
    (1 / the number of trials: a zero count is not an infinite ratio). Not a bound: the
    point estimate, or a bootstrap sample of it."""
    tpr = np.clip(np.asarray(tpr, np.float64), floor, 1 - floor)
    fpr = np.clip(np.asarray(fpr, np.float64), floor, 1 - floor)
    return np.maximum(0.0, np.maximum(np.log(tpr / fpr), np.log((1 - fpr) / (1 - tpr))))


class Bootstrap(NamedTuple):
    """Two-way cluster bootstrap weights: runs and examples resampled with replacement (every
    (run, example) pair weighted by the product of its run's and its example's counts)."""

    runs: np.ndarray  # [B, R] multinomial counts
    items: np.ndarray  # [B, n]


def cluster_bootstrap(key: PRNGKey, n_runs: int, n_items: int, n_boot: int) -> Bootstrap:
    k_r, k_i = jax.random.split(key)
    # int32 whatever jax_enable_x64 says: the draws must not depend on the flag
    rr = np.asarray(jax.random.randint(k_r, (n_boot, n_runs), 0, n_runs, jnp.int32))
    ii = np.asarray(jax.random.randint(k_i, (n_boot, n_items), 0, n_items, jnp.int32))
    runs = np.stack([np.bincount(r, minlength=n_runs) for r in rr]).astype(np.float64)
    items = np.stack([np.bincount(i, minlength=n_items) for i in ii]).astype(np.float64)
    return Bootstrap(runs, items)


def bootstrap_rates(flag: ArrayLike, positive: ArrayLike, negative: ArrayLike,
                    boot: Bootstrap) -> tuple[np.ndarray, np.ndarray]:
    """TPR and FPR of a fixed decision under each bootstrap draw.
    flag, positive, negative [R, n] bool -> (tpr [B], fpr [B])"""
    f = np.asarray(flag, np.float64)
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)

    def total(a):
        return np.einsum("br,rn,bn->b", boot.runs, a, boot.items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total(f * pos) / total(pos), total(f * neg) / total(neg)


def bootstrap_auc(scores: ArrayLike, positive: ArrayLike, negative: ArrayLike,
                  boot: Bootstrap) -> np.ndarray:
    """The weighted Mann-Whitney AUC (ties count 1/2) under each bootstrap draw. [B]"""
    s = np.asarray(scores, np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    use = np.asarray(positive, bool) | np.asarray(negative, bool)
    r_idx, i_idx = np.nonzero(use)
    sv, pos = s[use], np.asarray(positive, bool)[use]
    order = np.argsort(sv, kind="stable")
    sv, pos, r_idx, i_idx = sv[order], pos[order], r_idx[order], i_idx[order]
    group = np.r_[0, np.cumsum(np.diff(sv) != 0)]  # [E] tie group, ascending
    n_groups = int(group[-1]) + 1
    out = np.empty(boot.runs.shape[0])
    for b in range(boot.runs.shape[0]):
        w = boot.runs[b, r_idx] * boot.items[b, i_idx]  # [E]
        w_neg = np.bincount(group, weights=np.where(pos, 0.0, w), minlength=n_groups)  # [G]
        below = np.cumsum(w_neg) - w_neg  # negatives strictly below each group
        w_pos = np.where(pos, w, 0.0)
        total_pos, total_neg = w_pos.sum(), w_neg.sum()
        out[b] = (np.sum(w_pos * (below[group] + 0.5 * w_neg[group])) / (total_pos * total_neg)
                  if total_pos > 0 and total_neg > 0 else np.nan)
    return out


def interval(samples: ArrayLike, confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap samples (NaN draws dropped)."""
    x = np.asarray(samples, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    a = (1.0 - confidence) / 2.0
    return float(np.quantile(x, a)), float(np.quantile(x, 1.0 - a))


# ------------------------------------------------------------------- one-run audit


def one_run_epsilon(correct: int, guesses: int, beta: float) -> float:
    """Steinke, Nasr & Jagielski (2023), "Privacy Auditing with One (1) Training Run": if the
    mechanism is (eps, 0)-DP in each of independent fair coins, the number W of correct
    guesses among `guesses` abstention-allowed guesses is stochastically dominated by
    Binomial(guesses, e^eps / (1 + e^eps)). The lower bound at confidence 1 - beta is the eps
    whose binomial tail P[X >= correct] equals beta (0 when chance already explains W)."""
    if guesses < 1 or correct < 1:
        return 0.0
    p = beta_ppf(beta, correct, guesses - correct + 1)  # P[Binom(k, p) >= W] = I_p(W, k-W+1)
    return float(math.log(p / (1.0 - p))) if p > 0.5 else 0.0


def percentile_ranks(x: ArrayLike) -> np.ndarray:
    """Ranks of x scaled to [0, 1] (ties share their mean rank, NaN lowest). [n] -> [n]"""
    x = np.asarray(x, np.float64)
    return _ranks(x) / max(len(x) - 1, 1)


def _ranks(x: np.ndarray) -> np.ndarray:
    x = np.where(np.isnan(x), -np.inf, x)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    uniq, inv = np.unique(x, return_inverse=True)  # ties share their mean rank
    ranks = (np.bincount(inv, ranks) / np.bincount(inv))[inv]
    return ranks


def pair_guesses(scores: ArrayLike, member: ArrayLike, partner: ArrayLike, k: int
                 ) -> tuple[int, int]:
    """One run's guessing game on the design's pairs: in each pair the example with the higher
    score (rank) is guessed the member; only the k pairs whose higher score ranks highest in
    the run are guessed (the attack is surest about its most member-like examples), the rest
    abstain. Returns (correct, guesses)."""
    s = _ranks(np.asarray(scores, np.float64))
    partner = np.asarray(partner)
    member = np.asarray(member, bool)
    a = np.flatnonzero(np.arange(len(s)) < partner)  # [n/2] one index per pair
    b = partner[a]
    gap = s[a] - s[b]
    top = np.maximum(s[a], s[b])
    take = np.argsort(-top, kind="stable")[:k]
    take = take[gap[take] != 0]  # a tie is no guess
    guess_a = gap[take] > 0
    correct = np.where(guess_a, member[a[take]], member[b[take]])
    return int(correct.sum()), int(len(take))


GUESS_COUNTS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class OneRunAudit(NamedTuple):
    attack: str
    guesses: int  # k chosen on the selection runs
    epsilon: float  # certified lower bound: max over evaluation runs at beta / their count
    run: int  # the evaluation run that gave it
    correct: int
    made: int  # guesses actually made in that run (ties abstain)
    selection_epsilon: float  # the mean bound on the selection runs (how it was chosen)


def audit_one_run(attacks: dict, member: ArrayLike, partner: ArrayLike, select: ArrayLike,
                  confidence: float) -> OneRunAudit:
    """The certified epsilon lower bound of a cell: the attack and the number of guesses are
    chosen on the selection runs (best mean one_run_epsilon at 1 - confidence), then every
    evaluation run is audited with that choice at (1 - confidence) / (number of evaluation
    runs) and the largest bound is kept (valid at `confidence` by the union bound). Each run's
    coins are independent of every other run's (paired_membership), so attacks whose scores
    use the other runs as shadows (LiRA) qualify too.

    attacks: {name: [R, n] scores}; member [R, n]; partner [n]; select [R] bool.
    """
    member = np.asarray(member, bool)
    select = np.asarray(select, bool)
    beta = 1.0 - confidence
    n_pairs = member.shape[1] // 2
    ks = [k for k in GUESS_COUNTS if k < n_pairs] + [n_pairs]
    best = None
    for name, sc in attacks.items():
        for k in ks:
            vals = [one_run_epsilon(*pair_guesses(sc[r], member[r], partner, k), beta)
                    for r in np.flatnonzero(select)]
            score = float(np.mean(vals))
            if best is None or score > best[0]:
                best = (score, name, k)
    sel_eps, name, k = best
    evals = np.flatnonzero(~select)
    out = None
    for r in evals:
        c, g = pair_guesses(attacks[name][r], member[r], partner, k)
        e = one_run_epsilon(c, g, beta / len(evals))
        if out is None or e > out.epsilon:
            out = OneRunAudit(name, k, e, int(r), c, g, sel_eps)
    return out


def null_gate(scores: ArrayLike, positive: ArrayLike, negative: ArrayLike,
              select: ArrayLike, boot: Bootstrap, level: float, max_fpr: float = 0.01
              ) -> tuple[bool, dict]:
    """The sanity gate of a cell that cannot leak, two-sided: on the evaluation runs the
    AUC's cluster-bootstrap interval at `level` covers 0.5, and at the threshold chosen on the
    selection runs for `max_fpr` the interval of TPR - FPR covers 0. A biased attack (below
    chance as much as above) fails. boot: drawn over the evaluation runs.

    Returns (ok, {auc_lo, auc_hi, diff_lo, diff_hi}).
    """
    sc = np.asarray(scores, np.float64)
    pos, neg = np.asarray(positive, bool), np.asarray(negative, bool)
    sel = np.asarray(select, bool)
    ev = ~sel
    use_s = (pos | neg) & sel[:, None]
    thr = heldout_threshold(sc[use_s], pos[use_s], max_fpr)
    flag = flagged(sc, thr)
    tpr_b, fpr_b = bootstrap_rates(flag[ev], pos[ev], neg[ev], boot)
    a_lo, a_hi = interval(bootstrap_auc(sc[ev], pos[ev], neg[ev], boot), level)
    d_lo, d_hi = interval(tpr_b - fpr_b, level)
    ok = bool(a_lo <= 0.5 <= a_hi and d_lo <= 0.0 <= d_hi)
    return ok, {"auc_lo": a_lo, "auc_hi": a_hi, "diff_lo": d_lo, "diff_hi": d_hi}
