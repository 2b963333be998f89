"""The expected free energy written from its definition, one policy and one step at a time.

This is the yardstick of the EFE contract tests: every engine (``aif``'s prefix tree and sequence scorer,
``aif_deep``'s general tree and ``PolicyEvaluator``) must give these numbers for every term and every
convention. It shares no code with the engines: plain loops, the equations of ``aif.efe``'s docstrings.
"""

from __future__ import annotations

import itertools

import numpy as np

import aif
from aif.efe import EFEOptions, InductiveCost, InfoGain, Novelty, Term, TerminalValue
from aif.maths import LogGuard


def _xlogx(p, guard: LogGuard):
    p = np.asarray(p, dtype=float)
    if guard.kind == "exact":
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return p * (np.log(np.maximum(p, guard.eps)) if guard.kind == "clip" else np.log(p + guard.eps))


def _log_C(C_m, t, options: EFEOptions):
    c = C_m if C_m.ndim == 1 else C_m[:, min(t, C_m.shape[1] - 1)]
    if not options.normalize_C:
        return c
    p = np.exp(c - c.max()) / np.exp(c - c.max()).sum()
    g = options.guards.preference
    if g.kind == "exact":
        return c - c.max() - np.log(np.exp(c - c.max()).sum())
    return np.log(np.maximum(p, g.eps)) if g.kind == "clip" else np.log(p + g.eps)


def _joint(qs, deps):
    """q(s_deps) as an array over the dependencies' states."""
    out = np.ones(())
    for f in deps:
        out = np.multiply.outer(out, qs[f])
    return out


def _wnorm(a, wnorm):
    if not wnorm.exact:
        a = a + wnorm.eps
        return 1.0 / a.sum(0) - 1.0 / a
    from scipy.special import digamma
    a = np.maximum(a, wnorm.eps)
    a0 = np.maximum(a.sum(0), wnorm.eps)
    return -(np.log(a0) - np.log(a) + digamma(a + 1.0) - digamma(a0 + 1.0))


def step(model, qs, qs_prev, qs_root, action, t, terms, options):
    """Every term at one step of one policy: ``qs`` the predicted belief, ``qs_prev`` the one before the
    action, ``qs_root`` the current belief. Returns a dict of floats."""
    g = options.guards
    out = dict(utility=0.0, ambiguity=0.0, entropy=0.0)
    for m, (A_m, deps) in enumerate(zip(model.A, model.A_dependencies, strict=False)):
        q_joint = _joint(qs, deps)
        qo = np.tensordot(A_m, q_joint, axes=q_joint.ndim)
        out["utility"] += float(qo @ _log_C(model.C[m], t, options))
        kept = np.where(q_joint > g.state_floor, q_joint, 0.0) if g.state_floor > 0 else q_joint
        H_A = -_xlogx(A_m, g.likelihood).sum(0)
        out["ambiguity"] += float((kept * H_A).sum())
        qo_kept = np.tensordot(A_m, kept, axes=kept.ndim)
        out["entropy"] += float(-_xlogx(qo_kept, g.outcome).sum())
    if any(isinstance(x, InfoGain) and x.joint for x in terms) and model.num_modalities > 1:
        q_all = _joint(qs, range(model.num_factors))  # the floor applies to the joint of all factors
        q_all = np.where(q_all > g.state_floor, q_all, 0.0) if g.state_floor > 0 else q_all
        qo_joint, ambiguity = np.zeros([*model.num_obs]), 0.0
        for s in itertools.product(*[range(n) for n in model.num_states]):
            p_o = np.ones(())
            for A_m, deps in zip(model.A, model.A_dependencies, strict=False):
                p_o = np.multiply.outer(p_o, A_m[(slice(None), *[s[f] for f in deps])])
            qo_joint += q_all[s] * p_o
            if g.joint_likelihood is not None:  # spm_MDP_G: one guard on p(o_1, ..., o_M | s)
                ambiguity -= q_all[s] * float(_xlogx(p_o, g.joint_likelihood).sum())
        out["entropy"] = float(-_xlogx(qo_joint, g.outcome).sum())
        if g.joint_likelihood is not None:
            out["ambiguity"] = ambiguity
    out["state_info_gain"] = out["entropy"] - out["ambiguity"]
    out["risk"] = -out["utility"] - out["entropy"]
    for term in terms:
        if isinstance(term, Novelty) and term.param == "A":
            value = 0.0
            for m, (pA_m, deps) in enumerate(zip(model.pA, model.A_dependencies, strict=False)):
                q_joint = _joint(qs, deps)
                qo = np.tensordot(model.A[m], q_joint, axes=q_joint.ndim)
                W = np.where(pA_m > 0, _wnorm(pA_m, term.wnorm), 0.0)
                value -= float(qo @ np.tensordot(W, q_joint, axes=q_joint.ndim))
            out[term.key] = value
        elif isinstance(term, Novelty):
            value = 0.0
            for f, (pB_f, deps) in enumerate(zip(model.pB, model.B_dependencies, strict=False)):
                W = np.where(pB_f > 0, _wnorm(pB_f, term.wnorm), 0.0)[..., action[f]]
                q_prev = _joint(qs_prev, deps)
                value -= float(qs[f] @ np.tensordot(W, q_prev, axes=q_prev.ndim))
            out[term.key] = value
        elif isinstance(term, InductiveCost):
            cost = 0.0
            for f, I_f in enumerate(term.I):
                column = np.asarray(I_f)[:, int(np.argmax(qs_root[f]))]
                row = max(int(np.argmax(column)) - 1, 0)
                cost -= min(max(column.sum(), 0.0), 1.0) * float(
                    qs[f] @ ((1.0 - np.asarray(I_f)[row]) * np.log(max(term.epsilon, np.finfo(float).eps))))
            out[term.key] = cost
    return out


def predict(model, qs, action):
    """q(s_f') = sum_deps B_f[s_f', deps, u_f] q(deps), the mean-field prediction."""
    out = []
    for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=False)):
        q_deps = _joint(qs, deps)
        out.append(np.tensordot(B_f[..., action[f]], q_deps, axes=q_deps.ndim))
    return out


def expected_free_energy(model, qs, policies, terms: tuple[Term, ...], options: EFEOptions):
    """``(G, terms)`` of every policy by a loop over policies and steps; the same contract as the engines."""
    policies = np.asarray(policies)
    keys = ["risk", "ambiguity", "utility", "state_info_gain"] + [t.key for t in terms]
    out = {k: np.zeros(len(policies)) for k in dict.fromkeys(keys)}
    G = np.zeros(len(policies))
    for p, policy in enumerate(policies):
        q = [np.asarray(x, dtype=float) for x in qs]
        for t, action in enumerate(policy):
            q_next = predict(model, q, action)
            values = step(model, q_next, q, qs, action, t, terms, options)
            for k in out:
                if k in values:
                    out[k][p] += values[k]
            q = q_next
        for term in terms:
            if isinstance(term, TerminalValue):
                v = float(np.asarray(term.value([x[None] for x in q]))[0]) * term.discount ** len(policy)
                out[term.key][p] = v
        G[p] = sum(term.sign * out[term.key][p] for term in terms)
    return G, out


def random_case(seed: int, dirichlet: bool = True):
    """A random model (1-3 factors and modalities, sparse dependencies), a belief and enumerated policies of
    horizon 1-4 (few enough policies for the loop above)."""
    rng = np.random.default_rng(seed)
    nf, nm = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    S = [int(rng.integers(2, 4)) for _ in range(nf)]
    O = [int(rng.integers(2, 4)) for _ in range(nm)]
    U = [int(rng.integers(1, 3)) for _ in range(nf)]
    U[0] = max(U[0], 2)
    A_deps = [sorted(rng.choice(nf, size=int(rng.integers(1, nf + 1)), replace=False).tolist()) for _ in range(nm)]
    B_deps = [sorted({f, *rng.choice(nf, size=int(rng.integers(0, nf)), replace=False).tolist()}) for f in range(nf)]
    model = aif.random_model(rng, S, O, U, A_deps, B_deps, concentration=0.5, dirichlet=dirichlet)
    qs = [rng.dirichlet(np.ones(s)) for s in S]
    horizon = int(rng.integers(1, 5))
    while np.prod(U) ** horizon > 256:
        horizon -= 1
    return model, qs, aif.enumerate_policies(U, horizon)
