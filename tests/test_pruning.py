"""Pruning levels from a model, Bayesian model reduction deciding which, and B learned from pairwise joints.

References: pymdp.legacy's _prune_A / _prune_B / _prune_prior (random models), the evidence of Dirichlet counts
written out (ln p(data | model) = sum over columns of ln B(posterior) - ln B(prior), on the full and the pruned
model), pymdp 1.0's update_state_transition_dirichlet with joint beliefs (random models, several factors, B
dependencies), and a behaviour (a model with a state and an outcome the world never produces loses them).
"""

import numpy as np
import pytest
from scipy.special import gammaln

import aif
from aif.errors import BeliefError, ModelError
from aif.learning import level_evidence, prune_by_evidence, prune_model, update_A, update_B, update_D
from aif.maths import outer

PRUNE_TOL = 1e-15  # legacy and aif slice and divide the same numbers
BMR_TOL = 1e-10
UPDATE_TOL = 1e-10


def obj(arrays):
    """A pymdp.legacy object array."""
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def random_levels(rng, sizes, keep_one=True):
    """For each factor/modality, a random (possibly empty) list of levels to remove, leaving at least one."""
    return [sorted(rng.choice(n, size=rng.integers(0, n if keep_one else n + 1), replace=False).tolist())
            for n in sizes]


def max_diff(xs, ys):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(xs, ys, strict=True))


# ----------------------------------------------------------------------------------------------------------
# prune_model against pymdp.legacy


def test_prune_matches_pymdp_legacy():
    """legacy's functions take A over every factor and B over its own factor; random models of that kind, with
    random levels removed from every factor, modality and action set (legacy's list-of-lists form), and with
    one factor and modality (its single-array form)."""
    from pymdp.legacy import learning as legacy

    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(60):
        nf, nm = (int(x) for x in rng.integers(1, 4, size=2))
        S, O, U = ([int(x) for x in rng.integers(2, 6, size=n)] for n in (nf, nm, nf))
        model = aif.random_model(rng, S, O, U)
        states, outcomes, actions = random_levels(rng, S), random_levels(rng, O), random_levels(rng, U)
        pruned = prune_model(model, states=states, outcomes=outcomes, actions=actions)
        worst = max(worst, max_diff(pruned.A, legacy._prune_A(obj(model.A), outcomes, states)),
                    max_diff(pruned.B, legacy._prune_B(obj(model.B), states, actions)),
                    max_diff(pruned.D, legacy._prune_prior(obj(model.D), states)))
        if nf == nm == 1:  # legacy's single-array form
            worst = max(worst, max_diff(pruned.A, [legacy._prune_A(model.A[0], outcomes[0], states[0])]),
                        max_diff(pruned.B, [legacy._prune_B(model.B[0], states[0], actions[0])]),
                        max_diff(pruned.D, [legacy._prune_prior(model.D[0], states[0])]))
    print("pymdp.legacy _prune_A/_prune_B/_prune_prior, max |diff|:", worst)
    assert worst <= PRUNE_TOL


def expand(A_m, deps, num_states):
    """``A_m`` over ``deps`` as an array over every factor (constant along the others), for legacy's _prune_A."""
    order = np.argsort(deps)
    x = np.transpose(A_m, [0, *(1 + order)])  # factors ascending
    shape = [A_m.shape[0]] + [num_states[f] if f in deps else 1 for f in range(len(num_states))]
    return np.broadcast_to(x.reshape(shape), (A_m.shape[0], *num_states))


def test_prune_with_dependencies_and_counts():
    """Sparse A dependencies equal legacy's _prune_A on the array expanded over every factor; the counts keep
    their kept entries and their mean is the pruned array; C loses rows without renormalising."""
    from pymdp.legacy import learning as legacy

    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(25):
        nf, nm = (int(x) for x in rng.integers(1, 4, size=2))
        S, O, U = ([int(x) for x in rng.integers(2, 5, size=n)] for n in (nf, nm, nf))
        A_deps = [sorted(rng.choice(nf, size=rng.integers(1, nf + 1), replace=False).tolist()) for _ in range(nm)]
        B_deps = [sorted({f, *rng.choice(nf, size=rng.integers(0, nf), replace=False).tolist()}) for f in range(nf)]
        model = aif.random_model(rng, S, O, U, A_dependencies=A_deps, B_dependencies=B_deps, dirichlet=True)
        model = model.replace(A=None, B=None, D=None)  # arrays = means of the counts
        states, outcomes, actions = random_levels(rng, S), random_levels(rng, O), random_levels(rng, U)
        pruned = prune_model(model, states=states, outcomes=outcomes, actions=actions)
        for m, deps in enumerate(A_deps):
            full = legacy._prune_A(obj([expand(model.A[m], deps, S)]), [outcomes[m]], states)[0]
            here = full[(slice(None), *[slice(None) if f in deps else 0 for f in range(nf)])]
            worst = max(worst, max_diff([np.transpose(pruned.A[m], [0, *(1 + np.argsort(deps))])], [here]))
            kept = np.ix_(np.setdiff1d(range(O[m]), outcomes[m]), *[np.setdiff1d(range(S[f]), states[f]) for f in deps])
            np.testing.assert_array_equal(pruned.pA[m], model.pA[m][kept])
            np.testing.assert_array_equal(pruned.C[m], model.C[m][kept[0].ravel()])
        worst = max(worst, max_diff(pruned.A, [p / p.sum(axis=0) for p in pruned.pA]),
                    max_diff(pruned.B, [p / p.sum(axis=0) for p in pruned.pB]))
        assert pruned.A_dependencies == A_deps and pruned.B_dependencies == B_deps
        assert pruned.num_states == [s - len(r) for s, r in zip(S, states, strict=True)]
        assert pruned.num_controls == [u - len(r) for u, r in zip(U, actions, strict=True)]
    print("pruning with dependencies, max |diff|:", worst)
    assert worst < 1e-14


def test_prune_errors():
    rng = np.random.default_rng(2)
    model = aif.random_model(rng, [3, 2], [4], [2, 1])
    with pytest.raises(ModelError, match=r"states\[0\] names level 3, but factor 0 has 3"):
        prune_model(model, states=[[3], []])
    with pytest.raises(ModelError, match="states has 1 lists but the model has 2 factors"):
        prune_model(model, states=[[0]])
    with pytest.raises(ModelError, match=r"actions\[1\] removes every level of factor 1"):
        prune_model(model, actions=[[], [0]])
    A = np.zeros((4, 3, 2))
    A[0] = A[1] = 0.5  # outcomes 2 and 3 never happen
    with pytest.raises(ModelError, match=r"pruning leaves A\[0\] without mass in the column at \(0, 0\)"):
        prune_model(model.replace(A=[A]), outcomes=[[0, 1]])
    with_E = model.replace(E=np.full(2, 0.5))
    with pytest.raises(ModelError, match="policy prior E"):
        prune_model(with_E, actions=[[1], []])
    np.testing.assert_array_equal(prune_model(with_E, states=[[0], []]).E, with_E.E)  # states keep the policies


# ----------------------------------------------------------------------------------------------------------
# Bayesian model reduction of levels


def log_evidence(posterior, prior):
    """ln p(data | model) of the learned counts: sum over the columns of every count array of
    ln B(posterior) - ln B(prior) (the Dirichlet-categorical marginal likelihood; zero counts left out)."""
    def ln_B(a):
        return np.where(a > 0, gammaln(np.where(a > 0, a, 1.0)), 0.0).sum(axis=0) - gammaln(a.sum(axis=0))

    return sum(float((ln_B(q) - ln_B(p)).sum()) for name in ("pA", "pB", "pD")
               for q, p in zip(getattr(posterior, name) or [], getattr(prior, name) or [], strict=True))


def learned(rng, prior, T, visit):
    """Counts after ``T`` steps of one-hot beliefs over the states in ``visit[f]`` and outcomes drawn from A."""
    pA, pB, pD = prior.pA, prior.pB, prior.pD
    qs_prev = None
    for t in range(T):
        qs = [np.eye(s)[rng.choice(visit[f])] for f, s in enumerate(prior.num_states)]
        obs = [int(rng.choice(o, p=aif.maths.factor_dot(a, [qs[g] for g in deps], range(1, a.ndim), (0,))))
               for o, a, deps in zip(prior.num_obs, prior.A, prior.A_dependencies, strict=True)]
        pA = update_A(pA, obs, qs, A_dependencies=prior.A_dependencies)
        if qs_prev is None:
            pD = update_D(pD, qs)
        else:
            action = np.array([rng.integers(u) for u in prior.num_controls])
            pB = update_B(pB, qs, qs_prev, action, B_dependencies=prior.B_dependencies)
        qs_prev = qs
    return prior.replace(A=None, B=None, D=None, pA=pA, pB=pB, pD=pD)


def test_level_evidence_is_the_change_in_log_evidence():
    """F of each level equals ln p(data | full) - ln p(data | pruned model), both written out, on random models
    whose learning visited some states only (so some levels have no evidence); a level with evidence is +inf;
    removing every finite level at once is favoured at least as much as any of them alone."""
    rng = np.random.default_rng(3)
    worst, checked = 0.0, 0
    for _ in range(10):
        nf, nm = (int(x) for x in rng.integers(1, 3, size=2))
        S, O, U = ([int(x) for x in rng.integers(2, 5, size=n)] for n in (nf, nm, nf))
        A_deps = [sorted(rng.choice(nf, size=rng.integers(1, nf + 1), replace=False).tolist()) for _ in range(nm)]
        B_deps = [sorted({f, *rng.choice(nf, size=rng.integers(0, nf), replace=False).tolist()}) for f in range(nf)]
        prior = aif.random_model(rng, S, O, U, A_dependencies=A_deps, B_dependencies=B_deps, dirichlet=True)
        prior = prior.replace(A=None, B=None, D=None)
        visit = [rng.choice(s, size=rng.integers(1, s), replace=False) for s in S]
        posterior = learned(rng, prior, T=6, visit=visit)
        evidence = level_evidence(posterior, prior)
        full = log_evidence(posterior, prior)

        def reduced(kind, i, levels):  # ln p(data | the model without those levels of factor/modality i)
            drop = [levels if j == i else [] for j in range(len(S if kind == "states" else O))]
            return log_evidence(prune_model(posterior, **{kind: drop}), prune_model(prior, **{kind: drop}))

        for kind, sizes in (("states", S), ("outcomes", O)):
            for i, n in enumerate(sizes):
                for level in range(n):
                    F = getattr(evidence, kind)[i][level]
                    if kind == "states" and level in visit[i]:
                        assert F == np.inf
                    if not np.isfinite(F):
                        continue
                    worst = max(worst, abs(F - (full - reduced(kind, i, [level]))))
                    checked += 1
                finite = np.flatnonzero(np.isfinite(getattr(evidence, kind)[i]))
                if 0 < finite.size < n:
                    joint = full - reduced(kind, i, finite.tolist())
                    assert joint <= getattr(evidence, kind)[i][finite].min() + 1e-12
    print(f"level_evidence against the written-out evidence ({checked} levels), max |diff|:", worst)
    assert checked > 25 and worst < BMR_TOL


def test_prune_by_evidence_removes_what_the_world_never_produces():
    """The world has 3 states and 3 outcomes; the model allows a 4th of each. After learning from what happened,
    BMR removes exactly the unused state and outcome (the outcome only once the state is gone: the state's column
    predicts nothing else); with inferred (not one-hot) beliefs the unvisited state collects counts of about
    1e-16 per step from the log guard, which min_count sets aside."""
    A = np.zeros((4, 4))
    A[:3, :3] = np.eye(3)
    A[3] = 1.0  # prior counts: the extra outcome is as likely as the right one ...
    A[:3, 3] = 0.0  # ... and the extra state always shows it
    prior = aif.GenerativeModel(A=None, B=None, pA=[A], pB=[np.ones((4, 4, 1))], pD=[np.ones(4)])
    model, s, qs_prev = prior, 0, None
    for t in range(30):
        qs = aif.infer_states(model, [s], model.D if qs_prev is None else aif.predict(model, qs_prev, np.array([0])))
        pA = update_A(model.pA, [s], qs)
        pB = model.pB if qs_prev is None else update_B(model.pB, qs, qs_prev, np.array([0]))
        pD = update_D(model.pD, qs) if qs_prev is None else model.pD
        model = model.replace(A=None, B=None, D=None, pA=pA, pB=pB, pD=pD)
        qs_prev, s = qs, (s + 1) % 3  # the world cycles through states 0, 1, 2
    assert level_evidence(model, prior).states[0][3] == np.inf  # the log guard's residue counts as evidence
    assert level_evidence(model, prior, min_count=1e-8).outcomes[0][3] == np.inf  # column 3 needs outcome 3
    pruned, evidence = prune_by_evidence(model, prior, min_count=1e-8)
    assert evidence.prunable() == {"states": [[3]], "outcomes": [[3]]}
    assert pruned.num_states == [3] and pruned.num_obs == [3]
    assert np.all(np.isinf(evidence.states[0][:3])) and evidence.states[0][3] < -3
    np.testing.assert_allclose(pruned.A[0], model.pA[0][:3, :3] / model.pA[0][:3, :3].sum(axis=0), rtol=1e-15)
    pruned_prior = prune_model(prior, **evidence.prunable())
    assert [p.shape for p in pruned_prior.pA + pruned_prior.pB] == [p.shape for p in pruned.pA + pruned.pB]
    kept, _ = prune_by_evidence(model, prior, threshold=1e6, min_count=1e-8)
    assert kept.num_states == [4]  # a threshold no evidence reaches prunes nothing


def test_level_evidence_errors():
    rng = np.random.default_rng(5)
    prior = aif.random_model(rng, [3], [2], [2], dirichlet=True)
    with pytest.raises(ModelError, match="model and prior differ in num_obs"):
        level_evidence(prior, aif.random_model(rng, [3], [3], [2], dirichlet=True))
    with pytest.raises(ModelError, match="pA is absent in model but not in prior"):
        level_evidence(prior.replace(pA=None), prior)
    forgotten = prior.replace(pA=[p * 0.5 for p in prior.pA], A=None)
    with pytest.raises(ModelError, match=r"pA\[0\] \(model against prior\): .* removes more counts than the data"):
        level_evidence(forgotten, prior)
    with pytest.raises(aif.ParameterError, match="threshold"):
        level_evidence(prior, prior).prunable(-1.0)


# ----------------------------------------------------------------------------------------------------------
# B from pairwise joint beliefs


# (num_states, num_controls, B_dependencies): one structure (one compilation) for the cases: a factor on itself
# (smoothing's (next, current) joint), an uncontrolled factor, interacting transitions with the factor's own
# state first or not.
JOINT_STRUCTURE = ([3, 2, 4], [2, 1, 3], [[0, 1], [1], [2, 0, 1]])


def random_joint(rng, shape, T):
    """``T`` random joint distributions over ``shape``: ``(T, *shape)``, each summing to 1."""
    x = rng.gamma(0.5, size=(T, *shape)) + 1e-12
    return x / x.reshape(T, -1).sum(axis=1).reshape((T,) + (1,) * len(shape))


def test_update_B_from_joints_matches_pymdp_1():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from pymdp import learning as learning1

    rng = np.random.default_rng(6)
    (S, U, B_deps), T, worst = JOINT_STRUCTURE, 5, 0.0
    cases = []
    for _ in range(30):
        model = aif.random_model(rng, S, [2], U, B_dependencies=B_deps, dirichlet=True)
        joints = [random_joint(rng, model.pB[f].shape[:-1], T - 1) for f in range(len(S))]  # (T-1, S_f, *S_deps)
        actions = np.stack([rng.integers(u, size=T - 1) for u in U], axis=-1)  # (T-1, F)
        cases.append((model.pB, model.B, joints, actions, float(rng.uniform(0.1, 3.0))))

    def one(pB, B, joints, actions, lr):
        return learning1.update_state_transition_dirichlet(pB, B, joints, actions, num_controls=U, lr=lr)[0]

    stacked = [jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack(xs)), *[c[i] for c in cases]) for i in range(5)]
    qB = jax.jit(jax.vmap(one))(*stacked)  # the models stacked: one compilation (op by op costs 6x more)
    for k, (pB, _, joints, actions, lr) in enumerate(cases):
        for t in range(T - 1):  # pymdp 1.0 sums the T - 1 transitions; here one update each
            pB = update_B(pB, None, None, actions[t], lr=lr, B_dependencies=B_deps, mask_zeros=False,
                          joint=[j[t] for j in joints])
        worst = max(worst, max_diff(pB, [np.asarray(q[k]) for q in qB]))
    print("update_B(joint=) against pymdp 1.0's update_state_transition_dirichlet, max |diff|:", worst)
    assert worst < UPDATE_TOL


def test_joint_of_independent_beliefs_is_the_marginal_update():
    """With joint = qs ⊗ qs_prev the update is the marginal one, with the same lr, forgetting, prior, mask_zeros
    and factor selection (bit for bit: the same numbers are added)."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        S, U = [int(x) for x in rng.integers(2, 5, size=2)], [int(x) for x in rng.integers(1, 4, size=2)]
        B_deps = [[0], [1, 0]] if rng.random() < 0.5 else [[0, 1], [1]]
        model = aif.random_model(rng, S, [2], U, B_dependencies=B_deps, dirichlet=True)
        pB = [np.where(rng.random(p.shape) < 0.2, 0.0, p) for p in model.pB]
        for p in pB:
            p[0] += 1.0  # every column keeps a positive count
        qs, qs_prev = ([rng.dirichlet(np.ones(s)) for s in S] for _ in range(2))
        joint = [outer([qs[f], *[qs_prev[g] for g in deps]]) for f, deps in enumerate(B_deps)]
        action = np.array([rng.integers(u) for u in U])
        settings = dict(lr=float(rng.uniform(0.1, 2)), forgetting=float(rng.uniform(0.5, 1)), B_dependencies=B_deps,
                        factors=[int(rng.integers(2))], prior=model.pB, mask_zeros=bool(rng.random() < 0.5))
        by_marginals = update_B(pB, qs, qs_prev, action, **settings)
        by_joint = update_B(pB, None, None, action, joint=joint, **settings)
        for x, y in zip(by_marginals, by_joint, strict=True):
            np.testing.assert_array_equal(x, y)


def test_update_B_joint_errors():
    rng = np.random.default_rng(8)
    model = aif.random_model(rng, [3, 2], [2], [2, 1], B_dependencies=[[0, 1], [1]], dirichlet=True)
    qs = [np.full(3, 1 / 3), np.full(2, 0.5)]
    joint = [np.full((3, 3, 2), 1 / 18), np.full((2, 2), 0.25)]
    action = np.array([1, 0])
    kwargs = dict(B_dependencies=model.B_dependencies)
    with pytest.raises(BeliefError, match="either as qs and qs_prev .* or as joint"):
        update_B(model.pB, qs, qs, action, joint=joint, **kwargs)
    with pytest.raises(BeliefError, match="either as qs and qs_prev"):
        update_B(model.pB, None, None, action, **kwargs)
    with pytest.raises(BeliefError, match=r"joint\[1\] has shape \(2,\), expected \(2, 2\)"):
        update_B(model.pB, None, None, action, joint=[joint[0], np.full(2, 0.5)], **kwargs)
    with pytest.raises(BeliefError, match=r"joint\[0\] \(flattened\) is not a probability vector: it sums to 2"):
        update_B(model.pB, None, None, action, joint=[joint[0] * 2, joint[1]], **kwargs)
    with pytest.raises(BeliefError, match="one array per factor"):
        update_B(model.pB, None, None, action, joint=joint[:1], **kwargs)
