"""The EFE contract for aif_deep: every torch engine x every term x every convention against the per-policy loop
written from the definitions (tests/efe_reference.py), on random models, float64, to 1e-10."""

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from efe_reference import expected_free_energy, random_case  # noqa: E402

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.efe import WNORM_EXACT, Ambiguity, EFEOptions, InductiveCost, InfoGain, Novelty, Risk, TerminalValue, Utility  # noqa: E402

TOL = 1e-10
CONVENTIONS = {"exact": EFEOptions(), "pymdp": EFEOptions.pymdp(), "legacy": EFEOptions.pymdp_legacy(),
               "legacy joint": EFEOptions.pymdp_legacy_joint()}


def _terms(model, seed):
    rng = np.random.default_rng(1000 + seed)
    I = [np.triu(rng.random((3, s)) > 0.5).astype(float)[:, :s] for s in model.num_states]
    terms = [(Utility(), InfoGain()), (Risk(), Ambiguity()), (Utility(), InfoGain(joint=True)),
             (Utility(), InfoGain(), Novelty("A")), (Risk(), Novelty("B", wnorm=WNORM_EXACT)),
             (Utility(), InductiveCost(I, 1e-3)),
             (Utility(), InfoGain(), TerminalValue(lambda qs: qs[0][..., 0] * 2.0 - qs[-1][..., -1], 0.9))]
    return terms


def _engines(tm, qs, policies, H, terms, options):
    """The general tree (also aif_deep.expected_free_energy: a thin call of it, checked once per seed and
    convention on the first terms) and PolicyEvaluator."""
    q = [torch.as_tensor(x) for x in qs]
    yield "evaluate_policies", aif_deep.evaluate_policies(tm, q, policies=policies, terms=terms, options=options)
    if terms == (Utility(), InfoGain()):
        yield "expected_free_energy", aif_deep.expected_free_energy(tm, q, policies, terms=terms, options=options)
    yield "PolicyEvaluator", aif_deep.PolicyEvaluator(tm, H, terms=terms, options=options)(q)


def _compare(model, qs, policies, terms, options, label, rows):
    """The engines on all ``policies``, the reference loop on the policies ``rows`` (it is the slow part)."""
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    G_ref, ref = expected_free_energy(model, qs, policies[rows], terms, options)
    for engine, (G, out) in _engines(tm, qs, policies, policies.shape[1], terms, options):
        where = f"{label} {engine} {terms}"
        assert np.abs(G.numpy()[rows] - G_ref).max() < TOL, where
        assert set(out) == set(ref), (where, sorted(out), sorted(ref))
        for k in ref:
            assert np.abs(out[k].numpy()[rows] - ref[k]).max() < TOL, (where, k)


@pytest.mark.parametrize("seed", range(32))
def test_every_engine_term_and_convention_match_the_definitions(seed):
    model, qs, policies = random_case(seed)
    rows = np.unique(np.r_[0, len(policies) - 1, np.random.default_rng(seed).integers(0, len(policies), 4)])
    for name, options in CONVENTIONS.items():
        for terms in _terms(model, seed):
            _compare(model, qs, policies, terms, options, f"seed {seed} {name}", rows)


@pytest.mark.parametrize("seed", range(6))
def test_fused_lane_matches_the_definitions(seed):
    """One controlled factor and a static (uncontrolled, self-dependent) second factor: PolicyEvaluator's fused
    lane, for the terms and conventions that keep it (linear terms, no state floor)."""
    rng = np.random.default_rng(seed)
    S, O = [3, 2], [3, 2, 2]
    model = aif.random_model(rng, S, O, [3, 1], [[0], [0, 1], [1]], [[0], [1]], concentration=0.5, dirichlet=True)
    qs = [rng.dirichlet(np.ones(s)) for s in S]
    policies = aif.enumerate_policies([3, 1], 3)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    for options in (EFEOptions(), EFEOptions.pymdp()):
        for terms in ((Utility(), InfoGain()), (Risk(), Ambiguity())):
            ev = aif_deep.PolicyEvaluator(tm, 3, terms=terms, options=options)
            assert ev._fused == 0
            _compare(model, qs, policies, terms, options, f"fused seed {seed}", np.arange(len(policies)))


def test_batched_models_take_every_term_per_member():
    """A batch of agents with their own parameters (and beliefs): the per-node terms in PolicyEvaluator's layout."""
    rng = np.random.default_rng(3)
    models = [aif.random_model(rng, [3, 2], [3, 2], [2, 2], A_dependencies=[[0, 1], [1]], concentration=0.5,
                               dirichlet=True) for _ in range(2)]
    tm = aif_deep.TabularModel.from_aif(models, device="cpu")
    qs = [rng.dirichlet(np.ones(s), size=2) for s in (3, 2)]
    policies = aif.enumerate_policies([2, 2], 2)
    I = [np.triu(np.ones((3, 3))), np.ones((2, 2))]
    for options in CONVENTIONS.values():
        for terms in ((Utility(), InfoGain(joint=True), Novelty("A")), (Risk(), Novelty("B"), InductiveCost(I))):
            q = [torch.as_tensor(x) for x in qs]
            for G, out in (aif_deep.PolicyEvaluator(tm, 2, terms=terms, options=options)(q),
                           aif_deep.evaluate_policies(tm, q, policies=policies, terms=terms, options=options)):
                for b, model in enumerate(models):
                    G_ref, ref = expected_free_energy(model, [x[b] for x in qs], policies, terms, options)
                    assert np.abs(G[b].numpy() - G_ref).max() < TOL
                    assert all(np.abs(out[k][b].numpy() - ref[k]).max() < TOL for k in ref)


class _Untabled:
    """A BeliefModel without tables (as a neural model): its outcome terms come from the model itself."""

    def __init__(self, tm):
        self.tm = tm
        self.num_states, self.num_obs, self.num_controls = tm.num_states, tm.num_obs, tm.num_controls
        self.A_dependencies, self.batch_shape = tm.A_dependencies, tm.batch_shape

    def prior(self):
        return self.tm.prior()

    def log_likelihood(self, obs, guard):
        return self.tm.log_likelihood(obs, guard)

    def predict_all(self, qs):
        return self.tm.predict_all(qs)

    def outcome_terms(self, qs, t, options):
        return self.tm.outcome_terms(qs, t, options)


def test_models_without_tables_score_the_outcome_terms_and_refuse_the_tabular_ones():
    model, qs, policies = random_case(5)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    q = [torch.as_tensor(x) for x in qs]
    for options in CONVENTIONS.values():
        G, out = aif_deep.evaluate_policies(_Untabled(tm), q, horizon=policies.shape[1], options=options)
        G_ref, ref = expected_free_energy(model, qs, policies, aif.DEFAULT_TERMS, options)
        assert np.abs(G.numpy() - G_ref).max() < TOL
    for term in (Novelty("A"), InductiveCost([np.eye(s) for s in model.num_states]), InfoGain(joint=True)):
        if isinstance(term, InfoGain) and model.num_modalities == 1:
            continue
        with pytest.raises(aif.errors.StrategyError, match="tabular model"):
            aif_deep.evaluate_policies(_Untabled(tm), q, horizon=1, terms=(Utility(), term))
