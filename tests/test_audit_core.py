"""Unit tier: the audit maths (core.audit) on synthetic scores with known answers."""

import math

import jax
import numpy as np
import pytest
from scipy import stats

from kip_runner.core import audit


# ------------------------------------------------------------------- ROC / AUC / TPR@FPR

def test_perfectly_separated_scores_give_auc_1_and_tpr_1_at_zero_fpr():
    scores = np.r_[np.linspace(1, 2, 50), np.linspace(-2, 0, 70)]
    member = np.r_[np.ones(50, bool), np.zeros(70, bool)]
    roc = audit.roc_curve(scores, member)
    assert audit.roc_auc(roc) == 1.0
    op = audit.tpr_at_fpr(roc, 0.001)
    assert (op.tpr, op.fpr, op.tp, op.fp) == (1.0, 0.0, 50, 0)
    # and the reversed score is the worst possible attack
    assert audit.roc_auc(audit.roc_curve(-scores, member)) == 0.0


def test_auc_is_the_mann_whitney_statistic_with_ties_counting_half():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40).astype(float)  # many ties
    member = rng.random(40) < 0.4
    pos, neg = scores[member], scores[~member]
    brute = np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])
    assert audit.roc_auc(audit.roc_curve(scores, member)) == pytest.approx(brute, abs=1e-12)


def test_identical_distributions_give_auc_near_one_half():
    # Under H0 the AUC of n1 = n0 = 5000 independent draws has standard deviation
    # sqrt((n1 + n0 + 1) / (12 n1 n0)) = 0.0041; 0.02 is ~5 sigma.
    rng = np.random.default_rng(1)
    scores = rng.normal(size=10000)
    member = np.arange(10000) < 5000
    roc = audit.roc_curve(scores, member)
    assert abs(audit.roc_auc(roc) - 0.5) < 0.02
    # and TPR at 1% FPR is ~1% (binomial sd of 50/5000: 0.0014; a 5-sigma band)
    assert abs(audit.tpr_at_fpr(roc, 0.01).tpr - 0.01) < 0.01


def test_tpr_at_fpr_takes_the_best_threshold_not_exceeding_the_fpr():
    # members 10 .. 1, non-members 9.5, 0.5, ... : thresholds pass one non-member at 9.5
    member_scores = np.arange(10, 0, -1.0)
    nonmember_scores = np.r_[9.5, np.full(99, -5.0)]
    scores = np.r_[member_scores, nonmember_scores]
    member = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    roc = audit.roc_curve(scores, member)
    below = audit.tpr_at_fpr(roc, 0.005)  # no false positive allowed: only the score 10
    assert (below.tp, below.fp) == (1, 0)
    at = audit.tpr_at_fpr(roc, 0.01)  # one false positive allowed: every member above -5
    assert (at.tp, at.fp, at.fpr) == (10, 1, 0.01)


def test_ties_form_one_roc_point_and_nan_counts_as_lowest():
    roc = audit.roc_curve([1.0, 1.0, 0.0, np.nan], [True, False, True, False])
    assert list(roc.tp) == [0, 1, 2, 2] and list(roc.fp) == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="members and non-members"):
        audit.roc_curve([1.0, 2.0], [True, True])


# ------------------------------------------------------------------- Clopper-Pearson, epsilon

@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (3, 1000),
                                 (320, 32000), (31990, 32000), (1, 1)])
def test_clopper_pearson_matches_scipy_beta_quantiles(k, n):
    lo, hi = audit.clopper_pearson(k, n, 0.95)
    ref_lo = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    ref_hi = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    assert lo == pytest.approx(ref_lo, rel=1e-9, abs=1e-15)
    assert hi == pytest.approx(ref_hi, rel=1e-9, abs=1e-15)


def test_clopper_pearson_known_table_values():
    # k = 0 of n: upper = 1 - 0.025^(1/n) (Beta(1, n) quantile); the "rule of three" region
    assert audit.clopper_pearson(0, 100)[1] == pytest.approx(1 - 0.025 ** 0.01, rel=1e-12)
    # 5 of 10: the classic exact interval (0.1871, 0.8129)
    lo, hi = audit.clopper_pearson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.1871, 0.8129)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        audit.clopper_pearson(11, 10)


def test_betainc_matches_scipy():
    for a, b, x in [(0.5, 0.5, 0.3), (2, 3, 0.9), (320, 31681, 0.011), (50, 1, 0.99)]:
        assert audit.betainc(a, b, x) == pytest.approx(stats.beta.cdf(x, a, b), rel=1e-10)


def test_epsilon_lower_bound_from_a_known_pair():
    # TPR 500/1000 at FPR 10/1000: eps >= log(TPR_lo / FPR_hi) with scipy's CP bounds
    tpr_lo = stats.beta.ppf(0.025, 500, 501)
    fpr_hi = stats.beta.ppf(0.975, 11, 990)
    expected = math.log(tpr_lo / fpr_hi)
    assert audit.epsilon_lower_bound(500, 10, 1000, 1000) == pytest.approx(expected, rel=1e-8)
    # the complementary ratio dominates when the attack rejects non-members well
    tpr_lo = stats.beta.ppf(0.025, 999, 2)
    fpr_hi = stats.beta.ppf(0.975, 501, 500)
    expected = math.log((1 - fpr_hi) / (1 - tpr_lo))
    assert audit.epsilon_lower_bound(999, 500, 1000, 1000) == pytest.approx(expected, rel=1e-8)
    # chance-level attacks prove nothing
    assert audit.epsilon_lower_bound(10, 10, 1000, 1000) == 0.0


# ------------------------------------------------------------------- LiRA

def test_gaussian_fit_recovers_per_example_means_and_the_fixed_std():
    rng = np.random.default_rng(2)
    runs, n = 64, 300
    mu_out = rng.normal(size=n)
    mu_in = mu_out + 1.5
    member = audit.balanced_membership(jax.random.PRNGKey(4), np.arange(n) % 2, runs)
    scores = np.where(member, mu_in, mu_out) + np.where(member, 0.5, 0.8) * \
        rng.normal(size=(runs, n))
    fit = audit.fit_gaussians(scores, member)
    # per-example means from 32 draws of sd 0.5 / 0.8: mean abs errors ~0.07 / 0.11
    assert np.all(fit.n_in == 32) and np.all(fit.n_out == 32)
    assert np.mean(np.abs(fit.mean_in - mu_in)) < 0.09
    assert np.mean(np.abs(fit.mean_out - mu_out)) < 0.14
    assert fit.std_in == pytest.approx(0.5, rel=0.03)  # ~9300 residuals
    assert fit.std_out == pytest.approx(0.8, rel=0.03)
    # unequal counts are truncated to the smallest one (first shadows in run order)
    uneven = member.copy()
    uneven[0, 0] = not uneven[0, 0]
    fit = audit.fit_gaussians(scores, uneven)
    assert len(set(fit.n_in)) == 1 and len(set(fit.n_out)) == 1
    assert min(fit.n_in[0], fit.n_out[0]) == 31
    assert len(set(audit.fit_gaussians(scores, uneven, equalise=False).n_in)) == 2


def test_lira_separates_a_per_example_shift_that_a_global_threshold_cannot():
    # Each example's score is its own difficulty (sd 3) plus 1 when it is a member (noise sd
    # 0.3): a global threshold barely works, the per-example calibration of LiRA does.
    rng = np.random.default_rng(3)
    runs, n = 16, 400
    member = audit.balanced_membership(jax.random.PRNGKey(0), np.arange(n) % 4, runs)
    difficulty = 3.0 * rng.normal(size=n)
    scores = difficulty + member + 0.3 * rng.normal(size=(runs, n))
    auc = {name: audit.roc_auc(audit.roc_curve(s.ravel(), member.ravel())) for name, s in (
        ("global", scores), ("offline", audit.lira_scores(scores, member, online=False)),
        ("online", audit.lira_scores(scores, member, online=True)))}
    assert auc["global"] < 0.7
    assert auc["offline"] > 0.95 and auc["online"] > 0.97


def test_lira_on_pure_noise_is_at_chance_and_never_sees_the_target_run():
    rng = np.random.default_rng(4)
    member = audit.balanced_membership(jax.random.PRNGKey(1), np.arange(200) % 2, 8)
    scores = rng.normal(size=(8, 200))
    for online in (False, True):
        auc = audit.roc_auc(audit.roc_curve(audit.lira_scores(scores, member, online).ravel(),
                                            member.ravel()))
        assert abs(auc - 0.5) < 0.05  # 1600 samples: sd ~0.015
    # leave-one-out: run 0's row is a function of its own scores and a fit on the other
    # runs only (its scores never enter its own shadow statistics)
    other = scores.copy()
    other[0] = rng.normal(size=200)
    key = jax.random.PRNGKey(3)
    priority = np.asarray(jax.random.uniform(key, scores.shape, np.float32))
    fit = audit.fit_gaussians(scores[1:], member[1:], priority=priority[1:])
    expected = (other[0] - fit.mean_out) / fit.std_out
    assert np.allclose(audit.lira_scores(other, member, False, key)[0], expected)


def test_lira_is_at_chance_on_a_balanced_design_with_pure_noise():
    # Leave-one-out under an exactly balanced design: a member of the target run is in 7 of
    # the 15 other runs, a non-member in 8. Without equal shadow counts the in/out means of
    # members and non-members have different spreads and the online likelihood ratio is
    # biased against members (AUC 0.4915 here; 0.494 on the cpu-scale null cell); keeping
    # the first 7 shadows in run order instead of 7 at random lets run-level offsets bias
    # the offline test (AUC 0.5057, TPR 1.15% at 1% FPR). 16 runs x 8000 examples: 64000
    # pairs per side, AUC sd 0.0011 under H0; 0.003 is ~2.7 sd, each bias is >= 5 sd.
    rng = np.random.default_rng(6)
    member = audit.balanced_membership(jax.random.PRNGKey(8), np.arange(8000) % 10, 16)
    offsets = 3.0 * rng.normal(size=(16, 1))  # each run shifts every score (its support)
    scores = rng.normal(size=(8000,))[None, :] + offsets + rng.normal(size=(16, 8000))
    for online in (False, True):
        lira = audit.lira_scores(scores, member, online)
        roc = audit.roc_curve(lira.ravel(), member.ravel())
        assert abs(audit.roc_auc(roc) - 0.5) < 0.003, online
        op = audit.tpr_at_fpr(roc, 0.01)
        lo, hi = audit.clopper_pearson(op.tp, op.n_pos)
        assert lo <= op.fpr <= hi, (online, op)


def test_lira_with_two_runs_falls_back_to_the_global_in_out_gap():
    member = audit.balanced_membership(jax.random.PRNGKey(2), np.zeros(10, int), 2)
    scores = np.where(member, 1.0, 0.0) + 0.01 * np.arange(20).reshape(2, 10)
    out = audit.lira_scores(scores, member, online=True)
    assert np.all(np.isfinite(out))
    assert audit.roc_auc(audit.roc_curve(out.ravel(), member.ravel())) == 1.0


# ------------------------------------------------------------------- design and scores

@pytest.mark.parametrize("runs", [2, 3, 16])
def test_balanced_membership_is_exactly_balanced(runs):
    labels = np.repeat(np.arange(5), 8)  # 40 examples, 8 per class
    member = audit.balanced_membership(jax.random.PRNGKey(3), labels, runs)
    assert member.shape == (runs, 40)
    assert np.all(member.sum(axis=1) == 20)  # half of the universe per run
    for c in range(5):  # and half of every class
        assert np.all(member[:, labels == c].sum(axis=1) == 4)
    per_example = member.sum(axis=0)
    assert set(per_example) <= {runs // 2, (runs + 1) // 2}


def test_membership_design_does_not_depend_on_the_x64_flag():
    labels = np.repeat(np.arange(4), 6)
    with jax.enable_x64(True):
        a = audit.balanced_membership(jax.random.PRNGKey(5), labels, 5)
        ua, ha = audit.universe_and_population(jax.random.PRNGKey(6), np.arange(80) % 4, 24, 4)
    with jax.enable_x64(False):
        b = audit.balanced_membership(jax.random.PRNGKey(5), labels, 5)
        ub, hb = audit.universe_and_population(jax.random.PRNGKey(6), np.arange(80) % 4, 24, 4)
    assert np.array_equal(a, b) and np.array_equal(ua, ub) and np.array_equal(ha, hb)


def test_universe_and_population_are_disjoint_and_class_balanced():
    labels = np.arange(100) % 5
    u, h = audit.universe_and_population(jax.random.PRNGKey(7), labels, 20, 5)
    assert len(set(u) | set(h)) == 40
    assert np.all(np.bincount(labels[u]) == 4) and np.all(np.bincount(labels[h]) == 4)
    with pytest.raises(ValueError, match="lower `universe`"):
        audit.universe_and_population(jax.random.PRNGKey(7), labels, 60, 5)  # 24 > 20


def test_margin_loss_and_kernel_similarity_by_hand():
    pred = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.4]])
    assert np.allclose(audit.margin(pred, np.array([0, 2])), [0.8, -0.1])
    assert np.allclose(audit.squared_loss(pred, np.eye(3)[[0, 2]]), [0.02, 0.04 + 0.25 + 0.36])
    k_xs = np.array([[2.0, 1.0], [0.0, 3.0]])
    assert np.allclose(audit.kernel_similarity(k_xs, [4.0, 9.0], [1.0, 1.0]),
                       [1.0, 1.0])


def test_nearest_and_trimmed_distances():
    rng = np.random.default_rng(5)
    s = rng.normal(size=(6, 4, 4, 1))
    x = s[[2, 4]].copy()
    dist, idx = audit.nearest_sq_distance(x, s)
    assert np.allclose(dist, 0.0, atol=1e-10) and list(idx) == [2, 4]
    # An image equal to support image 3 on half of its pixels and far away elsewhere: the
    # trimmed distance over the smallest half is 0 at image 3, the l2 distance is not.
    d = 16
    probe = s[3].reshape(-1).copy()
    probe[: d // 2] += 50.0
    tdist, tidx = audit.trimmed_nearest(probe[None], s, keep=d // 2)
    assert tdist[0] == pytest.approx(0.0, abs=1e-12) and tidx[0] == 3
    assert audit.nearest_sq_distance(probe[None], s)[0][0] > 100.0
    # keep = d is the mean squared difference to the l2-nearest image
    full, _ = audit.trimmed_nearest(x, s, keep=d)
    assert np.allclose(full, dist / d)
    brute = np.min(np.sort((probe[None, :] - s.reshape(6, -1)) ** 2, axis=1)[:, :5].mean(1))
    assert audit.trimmed_nearest(probe[None], s, keep=5)[0][0] == pytest.approx(brute)
    assert audit.unfrozen_count(784, 0.9) == 784 - 706
