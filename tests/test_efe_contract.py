"""The EFE contract: every aif engine x every term x every convention agrees with ``tests/efe_reference.py``
(the definitions written one policy and one step at a time) on random models, float64, to 1e-10.

Engines: ``expected_free_energy`` (the prefix-tree scheduler, also behind ``PolicyEnumeration`` and
``SophisticatedInference``'s one-step G), ``PolicyEnumeration.plan`` and ``sequence_expected_free_energy`` fed
the predicted beliefs (it also scores the present step).
"""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import entropy

import aif
from aif.efe import (
    Ambiguity,
    EFEOptions,
    GoalDivergence,
    InductiveCost,
    InfoGain,
    Novelty,
    Risk,
    TerminalValue,
    Utility,
)
from aif.learning import WNORM_EXACT, WNORM_LEGACY, WNORM_SPM
from tests import efe_reference as ref

WNORMS = (WNORM_LEGACY, WNORM_SPM, WNORM_EXACT)
CONVENTIONS = {"exact": EFEOptions(), "pymdp": EFEOptions.pymdp(), "pymdp_legacy": EFEOptions.pymdp_legacy(),
               "pymdp_legacy_joint": EFEOptions.pymdp_legacy_joint()}
SEEDS = range(42)
ATOL = 1e-10
MAX_POLICIES = 12


def terminal(qs):
    """A terminal value that reads every factor: sum_f q_f(s_f = 0) (rows)."""
    return sum(q[:, 0] for q in qs)


def all_terms(model, seed):
    """Every term kind; the novelty conventions and per-modality/joint information gain rotate with the seed,
    so the seeds cover every combination."""
    goals = [np.eye(s)[seed % s] for s in model.num_states]
    I = aif.planning.inductive_matrix(goals, model.B, 0.0, 3, model.B_dependencies)
    ln_p = np.log(np.random.default_rng(seed).dirichlet(np.ones(np.prod(model.num_states)))).reshape(model.num_states)
    return (Utility(), Risk(), Ambiguity(), InfoGain(joint=bool(seed % 2)), Novelty("A", WNORMS[seed % 3]),
            Novelty("B", WNORMS[(seed // 3) % 3]), InductiveCost(I, 1e-3), TerminalValue(terminal, 0.9),
            GoalDivergence(ln_p - logsumexp(ln_p), 0.7))


def with_goal(model, qs, policies, terms, want):
    """The reference loop's result plus the goal divergence, written here from its definition: the weight times
    scipy's KL of the joint belief at the horizon (the outer product of the loop's predictions) from p_g."""
    (goal,) = [t for t in terms if isinstance(t, GoalDivergence)]
    last = [q[:, -1] for q in predicted(model, qs, policies)]
    q_H = [np.einsum(",".join("abc"[:len(last)]) + "->" + "abc"[:len(last)], *[q[p] for q in last]).ravel()
           for p in range(len(policies))]
    kl = goal.weight * np.array([entropy(q, np.exp(goal.log_goal).ravel()) for q in q_H])
    G, out = want
    return G + kl, {**out, goal.key: kl}


def reference_sequence(model, qs, terms, options, future):
    """The sequence scorer's definition: the present step (no transition) plus the reference's predicted steps
    ``future`` (C is one column here, so the step index that picks C's column does not matter)."""
    assert all(C_m.ndim == 1 for C_m in model.C)
    present = tuple(t for t in terms if not (isinstance(t, Novelty) and t.param == "B"))
    now = ref.step(model, qs, None, qs, None, 0, present, options)
    G, out = future
    out = {k: v + now.get(k, 0.0) for k, v in out.items()}
    return G + sum(term.sign * now.get(term.key, 0.0) for term in terms), out


def predicted(model, qs, policies):
    """``qs_future[f]`` (P, H + 1, S_f): the current belief and the mean-field predictions along each policy."""
    rows = []
    for policy in policies:
        q, seq = qs, [qs]
        for action in policy:
            q = ref.predict(model, q, action)
            seq.append(q)
        rows.append(seq)
    return [np.stack([[seq[k][f] for k in range(len(seq))] for seq in rows]) for f in range(model.num_factors)]


def assert_same(got, want, what):
    G, terms = got
    G_ref, terms_ref = want
    np.testing.assert_allclose(G, G_ref, rtol=0, atol=ATOL, err_msg=f"G of {what}")
    assert set(terms) == set(terms_ref), what
    for key in terms_ref:
        np.testing.assert_allclose(terms[key], terms_ref[key], rtol=0, atol=ATOL, err_msg=f"{key} of {what}")


@pytest.mark.parametrize("seed", SEEDS)
def test_every_engine_term_and_convention_matches_the_reference(seed):
    model, qs, policies = ref.random_case(seed)
    if len(policies) > MAX_POLICIES:  # a sorted subset (prefixes still shared) keeps the loops of the reference short
        policies = policies[np.sort(np.random.default_rng(seed).choice(len(policies), MAX_POLICIES, replace=False))]
    terms = all_terms(model, seed)
    qs_future = predicted(model, qs, policies)
    for name, options in CONVENTIONS.items():
        want = with_goal(model, qs, policies, terms, ref.expected_free_energy(model, qs, policies, terms, options))
        assert_same(aif.expected_free_energy(model, qs, policies, terms, options), want, f"prefix tree, {name}")
        plan = aif.planning.PolicyEnumeration(efe_terms=terms, options=options, policies=policies).plan(model, qs)
        assert_same((plan.G, plan.terms), want, f"PolicyEnumeration, {name}")
        assert_same(aif.sequence_expected_free_energy(model, qs_future, policies, terms, options),
                    reference_sequence(model, qs, terms, options, want), f"sequence scorer, {name}")


def test_default_terms_and_single_terms(rng):
    model, qs, policies = ref.random_case(7)
    G, terms = aif.expected_free_energy(model, qs, policies)
    np.testing.assert_allclose(G, -(terms["utility"] + terms["state_info_gain"]), atol=1e-12)
    G_ra, _ = aif.expected_free_energy(model, qs, policies, (Risk(), Ambiguity()))
    np.testing.assert_allclose(G, G_ra, atol=1e-12)
    assert set(terms) == {"risk", "ambiguity", "utility", "state_info_gain"}
