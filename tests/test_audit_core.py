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


# ------------------------------------------------------------------- beta distribution

@pytest.mark.parametrize("q,a,b", [(0.025, 1, 10), (0.975, 6, 5), (0.025, 3, 998),
                                   (0.975, 321, 31680), (0.025, 31990, 11), (0.00625, 2000, 1)])
def test_beta_ppf_matches_scipy(q, a, b):
    # the quantile behind one_run_epsilon (and its Clopper-Pearson-style tails)
    assert audit.beta_ppf(q, a, b) == pytest.approx(stats.beta.ppf(q, a, b), rel=1e-9,
                                                    abs=1e-15)


def test_betainc_matches_scipy():
    for a, b, x in [(0.5, 0.5, 0.3), (2, 3, 0.9), (320, 31681, 0.011), (50, 1, 0.99)]:
        assert audit.betainc(a, b, x) == pytest.approx(stats.beta.cdf(x, a, b), rel=1e-10)


# ------------------------------------------------------------------- LiRA

def _paired(key, labels, runs):
    return audit.paired_membership(jax.random.PRNGKey(key), labels, runs)[0]


def test_gaussian_fit_recovers_per_example_means_and_the_fixed_std():
    rng = np.random.default_rng(2)
    runs, n = 64, 300
    mu_out = rng.normal(size=n)
    mu_in = mu_out + 1.5
    member = _paired(4, np.arange(n) % 2, runs)
    scores = np.where(member, mu_in, mu_out) + np.where(member, 0.5, 0.8) * \
        rng.normal(size=(runs, n))
    fit = audit.fit_gaussians(scores, member, equalise=False)
    assert np.all(fit.n_in + fit.n_out == runs)
    assert np.mean(np.abs(fit.mean_in - mu_in)) < 0.1
    assert np.mean(np.abs(fit.mean_out - mu_out)) < 0.16
    assert fit.std_in == pytest.approx(0.5, rel=0.03)  # ~9300 residuals
    assert fit.std_out == pytest.approx(0.8, rel=0.03)
    assert 0.5 < fit.std < 0.8  # pooled over both sides
    # equalised: every example keeps the smallest in (out) count
    fit = audit.fit_gaussians(scores, member)
    assert len(set(fit.n_in)) == 1 and len(set(fit.n_out)) == 1
    assert fit.n_in[0] == member.sum(axis=0).min()


def test_lira_separates_a_per_example_shift_that_a_global_threshold_cannot():
    # Each example's score is its own difficulty (sd 3) plus 1 when it is a member (noise sd
    # 0.3): a global threshold barely works, the per-example calibration of LiRA does.
    rng = np.random.default_rng(3)
    runs, n = 16, 400
    member = _paired(0, np.arange(n) % 4, runs)
    difficulty = 3.0 * rng.normal(size=n)
    scores = difficulty + member + 0.3 * rng.normal(size=(runs, n))
    auc = {name: audit.roc_auc(audit.roc_curve(s.ravel(), member.ravel())) for name, s in (
        ("global", scores), ("offline", audit.lira_scores(scores, member, online=False)),
        ("online", audit.lira_scores(scores, member, online=True)))}
    assert auc["global"] < 0.7
    assert auc["offline"] > 0.95 and auc["online"] > 0.97


def test_lira_online_uses_one_pooled_std_so_it_is_linear_in_the_score():
    rng = np.random.default_rng(9)
    member = _paired(1, np.arange(100) % 2, 9)
    scores = rng.normal(size=(9, 100)) * np.where(member, 0.3, 2.0) + member
    out = audit.lira_scores(scores, member, online=True)
    # for fixed example means, log N(s; a, sd) - log N(s; b, sd) is affine in s: probing
    # run 0 with s, s + 1, s + 2 gives equal steps
    probes = [scores.copy() for _ in range(3)]
    for i, p in enumerate(probes):
        p[0] = scores[0] + i
    rows = [audit.lira_scores(p, member, online=True)[0] for p in probes]
    np.testing.assert_allclose(rows[2] - rows[1], rows[1] - rows[0], rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(out))


def test_lira_over_queries_sums_the_per_query_statistics():
    rng = np.random.default_rng(5)
    member = _paired(2, np.arange(60) % 2, 6)
    q = rng.normal(size=(6, 60, 3)) + member[..., None]
    together = audit.lira_scores(q, member, online=False)
    apart = sum(audit.lira_scores(q[..., i], member, online=False) for i in range(3))
    np.testing.assert_allclose(together, apart)


def test_lira_on_pure_noise_is_at_chance_and_never_sees_the_target_run():
    rng = np.random.default_rng(4)
    member = _paired(1, np.arange(200) % 2, 8)
    scores = rng.normal(size=(8, 200))
    for online in (False, True):
        auc = audit.roc_auc(audit.roc_curve(audit.lira_scores(scores, member, online).ravel(),
                                            member.ravel()))
        assert abs(auc - 0.5) < 0.05  # 1600 samples: sd ~0.015
    # leave-one-out: run 0's row is a function of its own scores and a fit on the other
    # runs only (its scores never enter its own shadow statistics)
    other = scores.copy()
    other[0] = rng.normal(size=200)
    fit = audit.fit_gaussians(scores[1:], member[1:], equalise=False)
    expected = (other[0] - fit.mean_out) / fit.std_out
    assert np.allclose(audit.lira_scores(other, member, False)[0], expected)


def test_lira_is_at_chance_on_the_paired_design_with_run_offsets():
    # The paired design's coins are independent across runs, so the shadow counts of a member
    # and a non-member of the target run have the same distribution and LiRA needs no equal
    # counts (the balanced design did: its leave-one-out counts gave membership away). Run
    # offsets (each support shifts every score) must not bias it either. 16 runs x 8000
    # examples: AUC sd ~0.0011 under H0.
    rng = np.random.default_rng(6)
    member = _paired(8, np.arange(8000) % 10, 16)
    offsets = 3.0 * rng.normal(size=(16, 1))
    scores = rng.normal(size=(8000,))[None, :] + offsets + rng.normal(size=(16, 8000))
    select = audit.split_runs(jax.random.PRNGKey(0), 16)
    boot = audit.cluster_bootstrap(jax.random.PRNGKey(1), 8, 8000, 300)
    for online in (False, True):
        lira = audit.lira_scores(scores, member, online)
        roc = audit.roc_curve(lira.ravel(), member.ravel())
        # online's sign depends on each example's noisy in-out gap: its AUC varies more
        # between designs (0.4954-0.5040 over 3 designs here; offline 0.4991-0.4998)
        assert abs(audit.roc_auc(roc) - 0.5) < (0.01 if online else 0.004), online
        # TPR = FPR at a held-out 1 % threshold, within the runs x examples bootstrap (the
        # run offsets make pooled pairs dependent: an iid Clopper-Pearson interval is too
        # narrow for them, which is why the audit's intervals are cluster-bootstrapped)
        ok, info = audit.null_gate(lira, member, ~member, select, boot, 0.95)
        assert ok, (online, info)


def test_lira_with_two_runs_falls_back_to_the_global_in_out_gap():
    member = _paired(2, np.zeros(10, int), 2)
    scores = np.where(member, 1.0, 0.0) + 0.01 * np.arange(20).reshape(2, 10)
    out = audit.lira_scores(scores, member, online=True)
    assert np.all(np.isfinite(out))


# ------------------------------------------------------------------- design and scores

@pytest.mark.parametrize("runs", [2, 3, 16])
def test_paired_membership_is_replace_one_and_independent_across_runs(runs):
    labels = np.repeat(np.arange(5), 8)  # 40 examples, 8 per class
    member, partner = audit.paired_membership(jax.random.PRNGKey(3), labels, runs)
    assert member.shape == (runs, 40)
    assert np.array_equal(partner[partner], np.arange(40))  # an involution
    assert np.all(partner != np.arange(40)) and np.all(labels[partner] == labels)
    assert np.all(member ^ member[:, partner])  # exactly one of each pair, in every run
    assert np.all(member.sum(axis=1) == 20)
    for c in range(5):
        assert np.all(member[:, labels == c].sum(axis=1) == 4)


def test_paired_coins_are_fair_and_uncorrelated_between_runs():
    member, partner = audit.paired_membership(jax.random.PRNGKey(7), np.arange(4000) % 10, 16)
    first = np.flatnonzero(np.arange(4000) < partner)
    coins = member[:, first].astype(float)  # [16, 2000]
    assert abs(coins.mean() - 0.5) < 0.01
    corr = np.corrcoef(coins)[np.triu_indices(16, 1)]
    assert np.max(np.abs(corr)) < 0.1  # 2000 coins: sd 0.022


def test_membership_design_does_not_depend_on_the_x64_flag():
    labels = np.repeat(np.arange(4), 6)
    with jax.enable_x64(True):
        a = audit.paired_membership(jax.random.PRNGKey(5), labels, 5)
        ua, ha = audit.universe_and_population(jax.random.PRNGKey(6), np.arange(80) % 4, 24, 4)
    with jax.enable_x64(False):
        b = audit.paired_membership(jax.random.PRNGKey(5), labels, 5)
        ub, hb = audit.universe_and_population(jax.random.PRNGKey(6), np.arange(80) % 4, 24, 4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(ua, ub) and np.array_equal(ha, hb)


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


# ------------------------------------------------------------------- KIP_rho attacks (#26)


def _rho_support(rng, members, rho, step=0.3):
    """KIP_rho-like supports of the first m members: a rho fraction of each image's pixels is
    frozen U(-1, 1) noise, the rest is the member moved by N(0, step^2)."""
    m = 20
    x0 = members[:m]
    mask = rng.random(x0.shape) < rho
    s = np.where(mask, rng.uniform(-1, 1, x0.shape), x0 + step * rng.normal(size=x0.shape))
    return s, mask


def test_weighted_nearest_matches_brute_force_and_skips_weightless_images():
    rng = np.random.default_rng(0)
    x, s = rng.normal(size=(7, 3, 4, 1)), rng.normal(size=(5, 3, 4, 1))
    w = (rng.random(s.shape) < 0.5).astype(float)
    w[2] = 0.0  # never the nearest
    dist, idx = audit.weighted_nearest(x, s, w)
    for i in range(7):
        d = [np.sum(w[j] * (x[i] - s[j]) ** 2) / w[j].sum() if w[j].sum() else np.inf
             for j in range(5)]
        assert idx[i] == int(np.argmin(d)) and dist[i] == pytest.approx(min(d))
    assert np.all(idx != 2)
    assert np.all(np.isinf(audit.weighted_nearest(x, s, np.zeros_like(s))[0]))


def test_certain_and_estimated_masks_find_the_learned_pixels():
    rng = np.random.default_rng(1)
    members = 2.0 * rng.normal(size=(40, 8, 8, 1))  # half the learned pixels beyond |1|
    s, mask = _rho_support(rng, members, 0.9)
    certain = audit.certain_weights(s)
    assert not np.any(certain.astype(bool) & mask)  # frozen noise is never "certain"
    est = audit.estimated_unfrozen(s, 0.9)
    assert est[~mask].mean() > 3 * est[mask].mean()
    assert np.all(audit.estimated_unfrozen(s, 0.0) == 1.0)


def test_mask_aware_attacks_beat_plain_l2_on_a_known_mask():
    # rho 0.9 supports of the first 20 members of each run; the universe is 200 images with
    # 2 runs' worth of membership. nn_mask (released mask) and nn_certain (|s| > 1) compare
    # only learned pixels and find the init members; plain l2 drowns in the frozen noise.
    rng = np.random.default_rng(2)
    universe = 2.0 * rng.normal(size=(200, 8, 8, 1))
    aucs = {k: [] for k in ("l2", "mask", "certain")}
    for r in range(6):
        order = rng.permutation(200)
        s, mask = _rho_support(rng, universe[order], 0.9, step=0.1)
        is_init = np.zeros(200, bool)
        is_init[order[:20]] = True
        scores = {"l2": -audit.nearest_sq_distance(universe, s)[0],
                  "mask": -audit.weighted_nearest(universe, s, (~mask).astype(float))[0],
                  "certain": -audit.weighted_nearest(universe, s, audit.certain_weights(s))[0]}
        for k, v in scores.items():
            aucs[k].append(audit.roc_auc(audit.roc_curve(v, is_init)))
    assert np.mean(aucs["mask"]) > 0.99 and np.mean(aucs["certain"]) > 0.95
    assert np.mean(aucs["l2"]) < np.mean(aucs["certain"]) - 0.1


# ------------------------------------------------------------------- held-out evaluation


def test_heldout_threshold_ignores_the_evaluation_runs():
    rng = np.random.default_rng(3)
    member = _paired(1, np.arange(400) % 2, 8)
    scores = rng.normal(size=(8, 400)) + 0.5 * member
    select = audit.split_runs(jax.random.PRNGKey(0), 8)
    assert select.sum() == 4
    use = select[:, None] & np.ones_like(member)
    thr = audit.heldout_threshold(scores[use], member[use], 0.01)
    changed = scores.copy()
    changed[~select] = rng.normal(size=(4, 400)) * 100  # evaluation runs: anything
    assert audit.heldout_threshold(changed[use], member[use], 0.01) == thr
    # on the evaluation runs, the selection threshold's FPR is an honest estimate (no
    # optimism): over many splits it averages about the target
    fprs = []
    for k in range(30):
        sel = audit.split_runs(jax.random.PRNGKey(k), 8)
        s = rng.normal(size=(8, 400))
        u = sel[:, None] & np.ones_like(member)
        t = audit.heldout_threshold(s[u], member[u], 0.05)
        ev = ~sel[:, None] & ~member
        fprs.append(np.mean(s[ev] >= t))
    assert 0.03 < np.mean(fprs) < 0.07


def test_bootstrap_auc_with_unit_weights_is_the_auc_and_intervals_widen_with_clusters():
    rng = np.random.default_rng(4)
    member = _paired(2, np.arange(300) % 2, 6)
    scores = rng.normal(size=(6, 300)) + 0.3 * member
    ones = audit.Bootstrap(np.ones((1, 6)), np.ones((1, 300)))
    auc = audit.roc_auc(audit.roc_curve(scores.ravel(), member.ravel()))
    assert audit.bootstrap_auc(scores, member, ~member, ones)[0] == pytest.approx(auc)
    # an example effect shared by all runs: the two-way bootstrap sees the dependence
    shared = rng.normal(size=300)[None, :] * 2 + rng.normal(size=(6, 300))
    flag = shared > 1.0
    boot = audit.cluster_bootstrap(jax.random.PRNGKey(0), 6, 300, 2000)
    tpr_b, _ = audit.bootstrap_rates(flag, member, ~member, boot)
    iid = np.sqrt(flag[member].mean() * (1 - flag[member].mean()) / member.sum())
    assert np.std(tpr_b) > 1.3 * iid


def test_null_gate_passes_chance_and_fails_a_planted_biased_attack():
    rng = np.random.default_rng(5)
    member = _paired(3, np.arange(2000) % 10, 8)
    select = audit.split_runs(jax.random.PRNGKey(1), 8)
    boot = audit.cluster_bootstrap(jax.random.PRNGKey(2), 4, 2000, 1000)
    fair = rng.normal(size=(8, 2000))
    assert audit.null_gate(fair, member, ~member, select, boot, 0.99)[0]
    # below chance: members score a little lower (the biased LiRA of an earlier version had
    # AUC 0.494 on the null cell; a one-sided AUC <= 0.6 check let it pass)
    biased = fair - 0.15 * member
    ok, info = audit.null_gate(biased, member, ~member, select, boot, 0.99)
    assert not ok and info["auc_hi"] < 0.5
    assert not audit.null_gate(fair + 0.15 * member, member, ~member, select, boot, 0.99)[0]


# ------------------------------------------------------------------- one-run audit


def test_one_run_epsilon_known_values():
    # all 50 guesses right: P[Binom(50, p) >= 50] = p^50 = beta
    p = 0.05 ** (1 / 50)
    assert audit.one_run_epsilon(50, 50, 0.05) == pytest.approx(math.log(p / (1 - p)), rel=1e-6)
    assert audit.one_run_epsilon(27, 50, 0.05) == 0.0  # chance explains 27 of 50
    assert audit.one_run_epsilon(0, 0, 0.05) == 0.0
    # the bound's tail equals beta (scipy, independently)
    eps = audit.one_run_epsilon(80, 100, 0.05)
    q = math.exp(eps) / (1 + math.exp(eps))
    assert stats.binom.sf(79, 100, q) == pytest.approx(0.05, rel=1e-4)


def test_one_run_audit_certifies_a_perfect_attack_and_not_noise():
    rng = np.random.default_rng(6)
    labels = np.arange(2000) % 10
    member, partner = audit.paired_membership(jax.random.PRNGKey(4), labels, 8)
    select = audit.split_runs(jax.random.PRNGKey(5), 8)
    noise = audit.audit_one_run({"noise": rng.normal(size=(8, 2000))}, member, partner,
                                select, 0.95)
    assert noise.epsilon < 0.5
    copies = member & (rng.random((8, 2000)) < 0.1)  # 10 % of members are exact copies
    attack = np.where(copies, 10.0, 0.0) + 0.01 * rng.normal(size=(8, 2000))
    res = audit.audit_one_run({"noise": rng.normal(size=(8, 2000)), "copy": attack}, member,
                              partner, select, 0.95)
    assert res.attack == "copy" and res.correct == res.made and res.epsilon > 3.0
    assert not select[res.run]  # measured on an evaluation run


def test_bootstrap_and_split_do_not_depend_on_the_x64_flag():
    with jax.enable_x64(True):
        a = audit.cluster_bootstrap(jax.random.PRNGKey(1), 5, 30, 4)
        sa = audit.split_runs(jax.random.PRNGKey(2), 8)
    with jax.enable_x64(False):
        b = audit.cluster_bootstrap(jax.random.PRNGKey(1), 5, 30, 4)
        sb = audit.split_runs(jax.random.PRNGKey(2), 8)
    assert np.array_equal(a.runs, b.runs) and np.array_equal(a.items, b.items)
    assert np.array_equal(sa, sb)


def test_percentile_ranks():
    np.testing.assert_allclose(audit.percentile_ranks([3.0, 1.0, 2.0, 2.0, np.nan]),
                               [1.0, 0.25, 0.625, 0.625, 0.0])
