"""Numerical robustness: property tests over random and extreme models.

Models are drawn by hypothesis (derandomised, so the run is the same every time): 1-2 factors, 1-2 modalities,
1-4 states and outcomes, with columns that are smooth, sparse (exact zeros), tiny (entries between 1e-300 and
1e-100) or one-hot, states with zero prior, preferences up to +-1e3 and policy precisions up to 1e4. The
observation is one the model allows (positive probability), either drawn from it or any allowed outcome,
however improbable (down to ~1e-600).

Checked: posteriors and q(pi) are finite and normalised; the KL terms (risk with normalised C, ambiguity,
state information gain) are non-negative; G is finite; and the results match references computed
independently in long double (``np.longdouble``, 80-bit on x86-64) and in log space: the posterior by Bayes'
rule on the joint state space (exactly, and under the log guard the method documents), the EFE terms of
one-step policies from their definitions, and q(pi) by a long-double softmax.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aif
from aif.maths import EPS, LogGuard

LD = np.longdouble
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Tolerances. Posteriors: the softmax of log-probabilities of magnitude up to ~1e3 (log 1e-300 = -691, times
# up to two modalities and a prior) loses about |logit| * eps in relative terms, so 1e-12 relative holds
# with room. EFE terms: sums of p * ln p with ln p down to -2e3 (normalised C of scale 1e3); their rounding
# is about eps times the largest |ln p| that carries mass, so the tolerance scales with it.
POSTERIOR_RTOL = 1e-12
NORM_TOL = 1e-12
EFE_RTOL = 64 * EPS


# ----------------------------------------------------------------------------------------------------------
# Random and extreme models


def columns(rng, shape, kind):
    """Arrays whose columns (axis 0) are distributions of the given kind."""
    x = rng.gamma(0.5, size=shape) + 1e-3
    if kind in ("sparse", "tiny"):
        x[rng.random(shape) < 0.4] = 0.0
    if kind == "tiny":
        tiny = rng.random(shape) < 0.4
        x[tiny] = 10.0 ** rng.uniform(-300, -100, size=shape)[tiny]
        # one outcome (or state) almost impossible everywhere: observing it twice underflows float64
        x[int(rng.integers(shape[0]))] = 10.0 ** rng.uniform(-300, -250, size=shape[1:])
    if kind == "onehot":
        x = (x == x.max(axis=0, keepdims=True)).astype(float)
    first = x[:1]  # (1, *columns), a view: a column with no mass gets it all on its first outcome
    first[x.sum(axis=0, keepdims=True) == 0] = 1.0
    return x / x.sum(axis=0, keepdims=True)


KINDS = ("smooth", "sparse", "tiny", "onehot")


@st.composite
def models(draw, kind, max_factors=2):
    nf = draw(st.integers(1, max_factors))
    nm = draw(st.integers(1, 2))
    S = [draw(st.integers(1, 4)) for _ in range(nf)]
    O = [draw(st.integers(1, 4)) for _ in range(nm)]
    U = [draw(st.integers(1, 3)) for _ in range(nf)]
    A_deps = [sorted(draw(st.sets(st.integers(0, nf - 1), min_size=1))) for _ in range(nm)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    C_scale = draw(st.sampled_from([0.0, 1.0, 30.0, 1e3]))
    zero_prior = draw(st.booleans())
    A = [columns(rng, (o, *[S[f] for f in deps]), kind) for o, deps in zip(O, A_deps, strict=False)]
    B = [columns(rng, (s, s, u), kind) for s, u in zip(S, U, strict=False)]
    D = []
    for s in S:
        d = columns(rng, (s,), "tiny" if kind == "tiny" else "smooth")
        if zero_prior and s > 1:
            d[rng.random(s) < 0.5] = 0.0
            d = d if d.sum() > 0 else np.eye(s)[0]
            d = d / d.sum()
        D.append(d)
    C = [np.clip(rng.normal(scale=C_scale, size=o), -1e3, 1e3) for o in O]
    model = aif.GenerativeModel(A, B, C, D, A_dependencies=A_deps)
    # An observation the model can produce: a state the prior allows, then outcomes from A, either drawn
    # from A ("typical") or any outcome A allows, however improbable ("rare": p(o) may be 1e-600, far
    # below what float64 holds outside log space).
    rare = kind == "tiny" or draw(st.booleans())
    state = [int(rng.choice(np.flatnonzero(d))) if rare else int(rng.choice(s, p=d))
             for s, d in zip(S, D, strict=False)]
    # (rare: any state the prior allows, however improbable)
    obs = []
    for o, A_m, deps in zip(O, A, A_deps, strict=False):
        column = A_m[(slice(None), *[state[f] for f in deps])]
        # rare: the least probable outcome this state allows
        obs.append(int(np.flatnonzero(column)[np.argmin(column[column > 0])]) if rare else int(rng.choice(o, p=column)))
    return model, obs


# ----------------------------------------------------------------------------------------------------------
# Long-double references


def log_ld(x, eps=None):
    """ln x in long double; zeros give -inf, or ln(max(x, eps)) when a guard's eps is given."""
    x = np.asarray(x, dtype=LD)
    if eps is not None:
        x = np.maximum(x, LD(eps))
    with np.errstate(divide="ignore"):
        return np.log(x)


def bayes_ld(model, obs, eps=None):
    """Marginals of the joint posterior p(s | o), by enumeration in long double and in log space."""
    nf = model.num_factors
    joint = np.zeros(model.num_states, dtype=LD)
    for A_m, o, deps in zip(model.A, obs, model.A_dependencies, strict=False):
        shape = [1] * nf
        for f in deps:
            shape[f] = model.num_states[f]
        joint = joint + log_ld(A_m[o], eps).reshape(shape)  # deps are sorted, so the axes are in order
    for f, D_f in enumerate(model.D):
        shape = [1] * nf
        shape[f] = model.num_states[f]
        joint = joint + log_ld(D_f, eps).reshape(shape)
    post = np.exp(joint - joint.max())
    post /= post.sum()
    return [post.sum(axis=tuple(g for g in range(nf) if g != f)) for f in range(nf)]


def xlogx_ld(p):
    p = np.asarray(p, dtype=LD)
    return np.where(p > 0, p * log_ld(np.where(p > 0, p, 1)), LD(0))


def one_step_efe_ld(model, qs, action):
    """risk (normalised C), ambiguity and per-modality state information gain of a one-step policy."""
    qs_ld = [np.asarray(q, dtype=LD) for q in qs]
    nxt = [np.einsum("ij,j->i", B_f[..., u].astype(LD), q) for B_f, q, u in zip(model.B, qs_ld, action, strict=False)]
    risk = ambiguity = info_gain = LD(0)
    lp_scale = 0.0  # the largest |ln p(o)| of the normalised preferences: what the rounding of risk scales with
    for A_m, C_m, deps in zip(model.A, model.C, model.A_dependencies, strict=False):
        A_ld = A_m.astype(LD)
        q_deps = nxt[deps[0]]
        for f in deps[1:]:
            q_deps = np.multiply.outer(q_deps, nxt[f])
        qo = np.tensordot(A_ld, q_deps, axes=len(deps))
        C_ld = C_m.astype(LD)
        log_pref = C_ld - (C_ld.max() + np.log(np.exp(C_ld - C_ld.max()).sum()))
        lp_scale = max(lp_scale, float(np.abs(log_pref).max()))
        H_A = -xlogx_ld(A_ld).sum(axis=0)
        amb_m = (H_A * q_deps).sum()
        risk += xlogx_ld(qo).sum() - (qo * log_pref).sum()
        ambiguity += amb_m
        info_gain += -xlogx_ld(qo).sum() - amb_m
    return risk, ambiguity, info_gain, lp_scale


def softmax_ld(logits):
    logits = np.asarray(logits, dtype=LD)
    shifted = logits - logits[np.isfinite(logits)].max()  # -inf stays -inf: exp gives 0
    e = np.exp(shifted)
    return e / e.sum()


# ----------------------------------------------------------------------------------------------------------
# State inference

METHODS = {
    "default": aif.FixedPoint(),
    "parallel": aif.FixedPoint(schedule="parallel"),
    "pymdp_legacy": aif.FixedPoint.pymdp_legacy(),
    "pymdp": aif.FixedPoint.pymdp(),
    "exact": aif.Exact(),
}


def assert_distribution(q, label):
    q = np.asarray(q)
    assert np.isfinite(q).all(), f"{label} is not finite: {q}"
    assert (q >= 0).all(), f"{label} has a negative entry: {q}"
    assert abs(q.sum() - 1.0) <= NORM_TOL, f"{label} sums to {q.sum()!r}"


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data())
def test_posteriors_are_finite_and_normalised(kind, data):
    model, obs = data.draw(models(kind))
    for name, method in METHODS.items():
        qs = aif.infer_states(model, obs, method=method)
        for f, q in enumerate(qs):
            assert_distribution(q, f"{name} qs[{f}]")
        # the next prior too, under every action
        for u in np.ndindex(*model.num_controls):
            for f, q in enumerate(aif.predict(model, qs, np.array(u))):
                assert_distribution(q, f"predict qs[{f}] under {u}")


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data())
def test_exact_posterior_matches_bayes_in_long_double(kind, data):
    """Exact(): Bayes' rule under the CLIP guard it documents (ln max(x, eps)); with an eps of 0 (no guard),
    exact Bayes, including exact zeros for states with zero prior or zero likelihood."""
    model, obs = data.draw(models(kind))
    for eps in (EPS, 0.0):
        with np.errstate(divide="ignore"):
            qs = aif.infer_states(model, obs, method=aif.Exact(guard=LogGuard("clip", eps)))
        ref = bayes_ld(model, obs, eps=eps if eps > 0 else None)
        for f, (q, r) in enumerate(zip(qs, ref, strict=False)):
            np.testing.assert_allclose(q, r.astype(float), rtol=POSTERIOR_RTOL, atol=0,
                                       err_msg=f"factor {f}, guard eps {eps}")
            if eps == 0.0:
                assert (q[r == 0] == 0).all()
                assert (q[model.D[f] == 0] == 0).all()


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data())
def test_single_factor_fixed_point_is_bayes(kind, data):
    """One factor: every fixed-point preset is Bayes' rule in one step, under its own log guard, and exact Bayes
    without one."""
    model, obs = data.draw(models(kind, max_factors=1))
    # without a guard (eps = 0: ln 0 = -inf) the single-factor update is exact Bayes in log space, which
    # a softmax that does not shift by the maximum would lose to underflow (1e-300 * 1e-300)
    methods = dict(METHODS, unguarded=aif.FixedPoint(guard=LogGuard("clip", 0.0)))
    for name, method in methods.items():
        with np.errstate(divide="ignore"):
            (q,) = aif.infer_states(model, obs, method=method)
        if method.guard.kind == "clip":
            (ref,) = bayes_ld(model, obs, eps=method.guard.eps or None)
        else:  # pymdp.legacy: ln(x + 1e-16)
            lp = log_ld(model.D[0] + method.guard.eps)
            for A_m, o in zip(model.A, obs, strict=False):
                lp = lp + log_ld(A_m[o] + method.guard.eps)
            ref = softmax_ld(lp)
        np.testing.assert_allclose(q, ref.astype(float), rtol=POSTERIOR_RTOL, atol=0, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data())
def test_sequential_fixed_point_never_raises_the_free_energy(kind, data):
    model, obs = data.draw(models(kind))
    trace = []
    aif.infer_states(model, obs, method=aif.FixedPoint(tol=None), trace=trace)
    F = np.array(trace)
    assert np.isfinite(F).all()
    rises = np.diff(F)
    assert (rises <= 1e-9 * (1 + np.abs(F[1:]))).all(), F


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data())
def test_free_energy_bounds_the_surprise(kind, data):
    """F[q] >= -ln p(o) for every mean-field q, with equality at the exact posterior of one factor."""
    model, obs = data.draw(models(kind))
    with np.errstate(divide="ignore"):
        surprise = -aif.log_evidence(model, obs)
    assert np.isfinite(surprise)
    tol = 1e-9 * (1 + abs(surprise))
    for name, method in METHODS.items():
        qs = aif.infer_states(model, obs, method=method)
        F = aif.variational_free_energy(model, obs, qs)
        assert not np.isnan(F), name
        if np.isfinite(F):  # +inf when a guarded q puts ~eps mass where the exact posterior has none
            assert F >= surprise - tol, name
    if model.num_factors == 1:
        with np.errstate(divide="ignore"):
            qs = aif.infer_states(model, obs, method=aif.Exact(guard=LogGuard("clip", 0.0)))
        assert aif.variational_free_energy(model, obs, qs) == pytest.approx(surprise, rel=1e-9, abs=1e-9)


# ----------------------------------------------------------------------------------------------------------
# Expected free energy and the policy posterior

EFE_OPTIONS = {  # name: (options, terms)
    "exact": (aif.EFEOptions(), aif.DEFAULT_TERMS),
    "exact-joint": (aif.EFEOptions(), (aif.Utility(), aif.InfoGain(joint=True))),
    "pymdp": (aif.EFEOptions.pymdp(), aif.DEFAULT_TERMS),
    "pymdp_legacy": (aif.EFEOptions.pymdp_legacy(), aif.DEFAULT_TERMS),
}


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data(), st.integers(1, 2))
def test_efe_terms_are_finite_and_the_kl_terms_non_negative(kind, data, horizon):
    model, obs = data.draw(models(kind))
    qs = aif.infer_states(model, obs)
    policies = aif.enumerate_policies(model.num_controls, horizon)
    # |ln softmax(C_m)| <= ptp(C_m) + ln(O_m): the size of the numbers whose rounding the risk accumulates
    scale = 1 + horizon * sum(np.ptp(C) + np.log(len(C)) for C in model.C)
    for name, (options, efe_terms) in EFE_OPTIONS.items():
        G, terms = aif.expected_free_energy(model, qs, policies, efe_terms, options=options)
        assert np.isfinite(G).all(), name
        for term, values in terms.items():
            assert np.isfinite(values).all(), f"{name} {term}"
        if options.guards != aif.Guards.exact():
            continue  # guarded logarithms are not exact KL divergences; only finiteness is promised
        assert (terms["ambiguity"] >= 0).all(), name
        assert (terms["state_info_gain"] >= -EFE_RTOL * horizon).all(), name
        assert (terms["risk"] >= -EFE_RTOL * scale).all(), name
        joint = tuple(t for t in efe_terms if isinstance(t, aif.InfoGain) and t.joint)  # risk uses its H[q(o)]
        G2, _ = aif.expected_free_energy(model, qs, policies, (aif.Risk(), aif.Ambiguity(), *joint), options=options)
        G2 = G2 + (terms["state_info_gain"] if joint else 0.0)
        np.testing.assert_allclose(G2, G, rtol=0, atol=EFE_RTOL * scale)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data())
def test_one_step_efe_terms_match_their_definitions_in_long_double(kind, data):
    """risk = sum_m KL[q(o_m) || softmax(C_m)], ambiguity = sum_m E_q H[A_m], info gain = sum_m H[q(o_m)] -
    E_q H[A_m], for every one-step policy, against the long-double definitions."""
    model, obs = data.draw(models(kind))
    qs = aif.infer_states(model, obs)
    policies = aif.enumerate_policies(model.num_controls, 1)
    _, terms = aif.expected_free_energy(model, qs, policies)
    for p, policy in enumerate(policies):
        risk, ambiguity, info_gain, lp_scale = one_step_efe_ld(model, qs, policy[0])
        tol = EFE_RTOL * (1 + lp_scale) * model.num_modalities
        assert abs(terms["risk"][p] - float(risk)) <= tol, (p, terms["risk"][p], float(risk))
        assert abs(terms["ambiguity"][p] - float(ambiguity)) <= EFE_RTOL * model.num_modalities
        assert abs(terms["state_info_gain"][p] - float(info_gain)) <= EFE_RTOL * model.num_modalities


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data(), st.sampled_from([1e-3, 1.0, 16.0, 1e2, 1e4]), st.booleans())
def test_policy_posterior_matches_a_long_double_softmax(kind, data, gamma, with_E):
    model, obs = data.draw(models(kind))
    qs = aif.infer_states(model, obs)
    policies = aif.enumerate_policies(model.num_controls, 2)
    G, _ = aif.expected_free_energy(model, qs, policies)
    E = None
    if with_E:
        E = np.random.default_rng(len(G)).dirichlet(np.ones(len(G)))
        E[::3] = 0.0  # policies ruled out by the prior
        E = E / E.sum() if E.sum() > 0 else np.full(len(G), 1 / len(G))
    q_pi = aif.policy_posterior(G, E, gamma)
    assert_distribution(q_pi, "q_pi")
    with np.errstate(divide="ignore"):
        logits = -LD(gamma) * G.astype(LD) + (log_ld(E) if E is not None else LD(0))
    ref = softmax_ld(logits)
    # -gamma G is rounded once in float64: an absolute error of eps |gamma G| in each logit
    rtol = 8 * EPS * (1 + gamma * np.abs(G).max())
    normal = ref > 1e-290  # below, float64 holds only subnormals
    np.testing.assert_allclose(q_pi[normal], ref[normal].astype(float), rtol=rtol, atol=0)
    assert (np.abs(q_pi[~normal]) <= 1e-290).all()
    if E is not None:
        assert (q_pi[E == 0] == 0).all()
    for mode in ("deterministic", "stochastic"):
        for sampling in ("full", "marginal"):
            probs = aif.action_probabilities(q_pi, policies, mode, alpha=gamma, sampling=sampling)
            for f, p in enumerate(probs if sampling == "marginal" else [probs]):
                assert_distribution(p, f"action probabilities {mode}/{sampling}[{f}]")


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(st.data(), st.sampled_from([1.0, 16.0, 1e4]))
def test_agent_steps_stay_finite(kind, data, gamma):
    """A few agent steps on an extreme model, each preset: beliefs, G and q(pi) finite and normalised."""
    model, obs = data.draw(models(kind))
    for make in (aif.Agent, aif.Agent.pymdp_legacy, aif.Agent.pymdp):
        agent = make(model, gamma=gamma)
        for _ in range(3):
            action = agent.step(obs)
            assert np.isfinite(agent.G).all()
            assert_distribution(agent.q_pi, "q_pi")
            for f, q in enumerate(agent.prior):
                assert_distribution(q, f"prior[{f}]")
            assert action.shape == (model.num_factors,)


def _max_deviations():
    """The largest deviations from the long-double references over the examples the tests draw (for reports):
    ``python tests/test_properties.py``."""
    worst = {}

    def record(key, value):
        worst[key] = max(worst.get(key, 0.0), float(value))

    def rel(q, r):
        r = r.astype(float)
        m = r > 1e-290
        return np.max(np.abs(q[m] - r[m]) / r[m]) if m.any() else 0.0

    @SETTINGS
    @given(st.data())
    def collect(kind, data):
        model, obs = data.draw(models(kind))
        for eps in (EPS, 0.0):
            with np.errstate(divide="ignore"):
                qs = aif.infer_states(model, obs, method=aif.Exact(guard=LogGuard("clip", eps)))
            for q, r in zip(qs, bayes_ld(model, obs, eps=eps or None), strict=False):
                record(f"posterior, Exact, guard eps {eps:.3g}: relative", rel(q, r))
        qs = aif.infer_states(model, obs)
        policies = aif.enumerate_policies(model.num_controls, 1)
        _, terms = aif.expected_free_energy(model, qs, policies)
        for p, policy in enumerate(policies):
            risk, ambiguity, info_gain, lp_scale = one_step_efe_ld(model, qs, policy[0])
            record("risk: absolute", abs(terms["risk"][p] - float(risk)))
            record("risk: absolute / (1 + max |ln p(o)|)", abs(terms["risk"][p] - float(risk)) / (1 + lp_scale))
            record("ambiguity: absolute", abs(terms["ambiguity"][p] - float(ambiguity)))
            record("state_info_gain: absolute", abs(terms["state_info_gain"][p] - float(info_gain)))
        record("most negative risk", -min(0.0, terms["risk"].min()))
        record("most negative state_info_gain", -min(0.0, terms["state_info_gain"].min()))
        G, _ = aif.expected_free_energy(model, qs, aif.enumerate_policies(model.num_controls, 2))
        for gamma in (1e-3, 16.0, 1e4):
            r = softmax_ld(-LD(gamma) * G.astype(LD))
            dev = rel(aif.policy_posterior(G, None, gamma), r)
            record(f"q_pi, gamma {gamma:g}: relative", dev)
            record(f"q_pi, gamma {gamma:g}: relative / (eps (1 + gamma max|G|))",
                   dev / (EPS * (1 + gamma * np.abs(G).max())))

    for kind in KINDS:
        collect(kind)
    return worst


if __name__ == "__main__":
    for key, value in _max_deviations().items():
        print(f"{key}: {value:.3g}")
