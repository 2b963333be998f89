"""``EFEOptions.pymdp_legacy_joint()`` with ``InfoGain(joint=True)`` against pymdp.legacy's non-factorised
``update_posterior_policies``, whose ``spm_MDP_G`` guards the log of the joint likelihood prod_m p(o_m | s) as
one number (``Guards.joint_likelihood``) and drops joint states at or below exp(-16) from the joint outcome."""

import numpy as np
import pytest

import aif
from aif.efe import EFEOptions, InfoGain, Utility
from tests._reference import obj

TERMS = (Utility(), InfoGain(joint=True))
TOL = 1e-10


def _cases(n, floored=False):
    """Random models, 1-3 factors and 1-3 modalities, every modality on every factor (legacy's non-factorised A).
    ``floored``: permutation transitions and beliefs with entries below exp(-16) that the predictions keep."""
    for seed in range(n):
        rng = np.random.default_rng(seed)
        nf, nm = int(rng.integers(1, 4)), 1 + seed % 3
        S = [int(s) for s in rng.integers(2, 5, nf)]
        O = [int(o) for o in rng.integers(2, 5, nm)]
        U = [max(int(u), 2 * (f == 0)) for f, u in enumerate(rng.integers(1, 4, nf))]
        model = aif.random_model(rng, S, O, U, concentration=0.5)
        qs = [rng.dirichlet(np.ones(s)) for s in S]
        if floored:
            B = [np.stack([np.eye(s)[rng.permutation(s)] for _ in range(u)], -1) for s, u in zip(S, U, strict=True)]
            model = aif.GenerativeModel(model.A, B, model.C, model.D)
            qs = [np.where(np.arange(s) == 0, 1e-9, q) for q, s in zip(qs, S, strict=True)]
            qs = [q / q.sum() for q in qs]
        horizon = 2 if np.prod(U) <= 8 else 1
        yield model, qs, aif.enumerate_policies(U, horizon)


def _legacy(model, qs, policies):
    from pymdp.legacy import control

    q_pi, neg_efe = control.update_posterior_policies(obj(qs), obj(model.A), obj(model.B), obj(model.C),
                                                      list(policies), gamma=16.0)
    return -neg_efe, q_pi


@pytest.mark.parametrize("floored", [False, True])
def test_joint_information_gain_matches_legacy_update_posterior_policies(floored):
    worst_G = worst_q = 0.0
    for model, qs, policies in _cases(18, floored):
        G_ref, q_ref = _legacy(model, qs, policies)
        G, _ = aif.expected_free_energy(model, qs, policies, terms=TERMS, options=EFEOptions.pymdp_legacy_joint())
        worst_G = max(worst_G, np.abs(G - G_ref).max())
        worst_q = max(worst_q, np.abs(aif.policy_posterior(G, gamma=16.0) - q_ref).max())
    assert worst_G < TOL and worst_q < TOL, (worst_G, worst_q)


def test_the_per_modality_guard_is_what_differs():
    """Without the joint guard (``EFEOptions.pymdp_legacy()``) several modalities miss by about exp(-16) per joint
    outcome and step; with one modality the two presets are the same."""
    worst = {1: 0.0, 2: 0.0}
    for model, qs, policies in _cases(12):
        G_ref, _ = _legacy(model, qs, policies)
        G, _ = aif.expected_free_energy(model, qs, policies, terms=TERMS, options=EFEOptions.pymdp_legacy())
        key = min(model.num_modalities, 2)
        worst[key] = max(worst[key], np.abs(G - G_ref).max())
    assert worst[1] < TOL and worst[2] > 1e-8, worst


def test_aif_deep_engines_match_legacy():
    torch = pytest.importorskip("torch")
    import aif_deep

    for model, qs, policies in _cases(4, floored=True):
        G_ref, _ = _legacy(model, qs, policies)
        tm = aif_deep.TabularModel.from_aif(model, device="cpu")
        q = [torch.as_tensor(x) for x in qs]
        options = EFEOptions.pymdp_legacy_joint()
        for G, _ in (aif_deep.evaluate_policies(tm, q, policies=policies, terms=TERMS, options=options),
                     aif_deep.PolicyEvaluator(tm, policies.shape[1], terms=TERMS, options=options)(q)):
            assert np.abs(G.numpy() - G_ref).max() < TOL


def test_joint_likelihood_must_be_a_guard():
    with pytest.raises(aif.errors.StrategyError, match="joint_likelihood"):
        aif.Guards(joint_likelihood="legacy")
