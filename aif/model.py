"""The POMDP generative model: arrays A, B, C, D, E and optional Dirichlet counts pA, pB, pD.

Shapes (``S_f = num_states[f]``, ``O_m = num_obs[m]``, ``U_f = num_controls[f]``):

- ``A[m]``: ``(O_m, *S_f for f in A_dependencies[m])``, p(o_m | s); columns sum to one.
- ``B[f]``: ``(S_f, *S_g for g in B_dependencies[f], U_f)``, p(s_f' | s_deps, u_f); columns sum to one.
  Without dependencies ``B_dependencies[f] == [f]`` and the shape is ``(S_f, S_f, U_f)``. A factor with
  ``U_f == 1`` is uncontrolled.
- ``C[m]``: ``(O_m,)`` or ``(O_m, T)``: log-preferences over outcomes (unnormalised; the EFE options say
  whether they are normalised with a log-softmax before use).
- ``D[f]``: ``(S_f,)``, the initial-state prior.
- ``E``: ``(num_policies,)``, the prior over policies (habits); uniform when absent.
- ``pA``, ``pB``, ``pD``: Dirichlet counts with the shapes of ``A``, ``B``, ``D``. Given counts and no
  array, the array is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from .errors import ModelError

COLUMN_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class GenerativeModel:
    """A discrete POMDP generative model, validated on construction.

    Args:
        A: list of likelihood arrays, one per modality (or ``None`` when ``pA`` is given).
        B: list of transition arrays, one per factor (or ``None`` when ``pB`` is given).
        C: list of log-preference vectors; zeros when absent.
        D: list of initial-state priors; uniform when absent (the mean of ``pD`` when given).
        E: prior over policies; uniform (``None``) when absent.
        pA, pB, pD: optional Dirichlet counts.
        A_dependencies: ``A_dependencies[m]`` lists the factors modality ``m`` depends on (all by default).
        B_dependencies: ``B_dependencies[f]`` lists the factors whose states the transition of factor ``f``
            is conditioned on (``[f]`` by default).

    Raises:
        ModelError: a shape, value or dependency check failed; the message names the array and index.
    """

    A: list
    B: list
    C: list | None = None
    D: list | None = None
    E: np.ndarray | None = None
    pA: list | None = None
    pB: list | None = None
    pD: list | None = None
    A_dependencies: list | None = None
    B_dependencies: list | None = None
    num_states: list = field(init=False, repr=False)
    num_obs: list = field(init=False, repr=False)
    num_controls: list = field(init=False, repr=False)

    def __post_init__(self):
        put = object.__setattr__
        for name in ("pA", "pB", "pD"):
            if getattr(self, name) is not None:
                put(self, name, _as_float_list(getattr(self, name), name))
        A = _as_float_list(self.A, "A") if self.A is not None else _dirichlet_mean(self.pA, "A")
        B = _as_float_list(self.B, "B") if self.B is not None else _dirichlet_mean(self.pB, "B")
        put(self, "A", A)
        put(self, "B", B)
        if not A or not B:
            raise ModelError("A and B must each hold at least one array")
        num_factors = len(B)
        num_states = [b.shape[0] for b in B]
        put(self, "num_states", num_states)
        put(self, "num_obs", [a.shape[0] for a in A])
        put(self, "num_controls", [b.shape[-1] for b in B])
        put(self, "A_dependencies", _deps(self.A_dependencies, len(A), num_factors, "A",
                                         default=lambda m: list(range(num_factors))))
        put(self, "B_dependencies", _deps(self.B_dependencies, num_factors, num_factors, "B",
                                         default=lambda f: [f]))
        if self.C is None:
            put(self, "C", [np.zeros(o) for o in self.num_obs])
        else:
            put(self, "C", _as_float_list(self.C, "C"))
        if self.D is not None:
            put(self, "D", _as_float_list(self.D, "D"))
        elif self.pD is not None:
            put(self, "D", _dirichlet_mean(self.pD, "D"))
        else:
            put(self, "D", [np.full(s, 1.0 / s) for s in num_states])
        if self.E is not None:
            put(self, "E", np.array(self.E, dtype=float))
        check_model(self)

    @property
    def num_factors(self) -> int:
        return len(self.B)

    @property
    def num_modalities(self) -> int:
        return len(self.A)

    def replace(self, **changes) -> "GenerativeModel":
        """A copy with some arrays replaced (validated again)."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        kwargs.update(changes)
        return GenerativeModel(**kwargs)


def _as_float_list(arrays, name):
    if isinstance(arrays, np.ndarray):
        raise ModelError(f"{name} must be a list of arrays, one per modality or factor, got a single array; "
                         f"wrap it as [{name}]")
    out = []
    for i, a in enumerate(arrays):
        try:
            out.append(np.array(a, dtype=float))
        except (TypeError, ValueError) as err:
            raise ModelError(f"{name}[{i}] is not a numeric array: {err}") from None
    return out


def _dirichlet_mean(counts, name):
    if counts is None:
        raise ModelError(f"{name} is missing: give {name} or its Dirichlet counts p{name}")
    for i, p in enumerate(counts):
        _check_counts(p, f"p{name}[{i}]")
    return [p / p.sum(axis=0, keepdims=True) for p in counts]


def _deps(deps, n, num_factors, name, default):
    if deps is None:
        return [default(i) for i in range(n)]
    if len(deps) != n:
        raise ModelError(f"{name}_dependencies has {len(deps)} entries but {name} has {n} arrays")
    out = []
    for i, d in enumerate(deps):
        d = [int(f) for f in d]
        bad = [f for f in d if not 0 <= f < num_factors]
        if bad:
            raise ModelError(f"{name}_dependencies[{i}] names factor {bad[0]}, but the model has "
                             f"{num_factors} factors (0 to {num_factors - 1})")
        if len(set(d)) != len(d):
            raise ModelError(f"{name}_dependencies[{i}] = {d} repeats a factor")
        out.append(d)
    return out


def _check_finite_nonneg(x, label):
    bad = ~np.isfinite(x)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelError(f"{label} has a non-finite entry {x[idx]} at index {idx}")
    neg = x < 0
    if neg.any():
        idx = tuple(int(i) for i in np.argwhere(neg)[0])
        raise ModelError(f"{label} has a negative entry {x[idx]} at index {idx}")


def _check_columns(x, label, what="state"):
    sums = x.sum(axis=0)
    off = np.abs(sums - 1.0) > COLUMN_TOL
    if off.any():
        idx = tuple(int(i) for i in np.argwhere(off)[0])
        raise ModelError(f"columns of {label} sum to {sums[idx]:.6g} at {what} {idx} "
                         f"(off by {sums[idx] - 1:+.3g}; they must sum to 1 within {COLUMN_TOL})")


def _check_counts(p, label):
    _check_finite_nonneg(p, label)
    nonpos = p <= 0
    if nonpos.any():
        idx = tuple(int(i) for i in np.argwhere(nonpos)[0])
        raise ModelError(f"Dirichlet counts {label} must be positive; found {p[idx]} at index {idx}")


def _check_shape(x, expected, label, explain):
    if x.shape != tuple(expected):
        raise ModelError(f"{label} has shape {x.shape}, expected {tuple(expected)} ({explain})")


def check_model(model: GenerativeModel) -> GenerativeModel:
    """Check a model's shapes, values and dependencies; return it unchanged or raise ``ModelError``.

    Checks: every array finite and non-negative; columns of A and B (and D, E) sum to one within 1e-6;
    A[m] and B[f] shapes match ``num_states`` through the dependencies; C, D, pA, pB, pD shapes match;
    Dirichlet counts positive.
    """
    S, O = model.num_states, model.num_obs
    for f, B_f in enumerate(model.B):
        deps = model.B_dependencies[f]
        if B_f.ndim != len(deps) + 2:
            raise ModelError(f"B[{f}] has {B_f.ndim} axes, expected {len(deps) + 2}: "
                             f"(next state, one axis per factor in B_dependencies[{f}] = {deps}, control)")
        _check_shape(B_f, (S[f], *[S[g] for g in deps], B_f.shape[-1]), f"B[{f}]",
                     f"next state, states of factors {deps}, controls")
        _check_finite_nonneg(B_f, f"B[{f}]")
        _check_columns(B_f, f"B[{f}]", "(previous state..., control)")
    for m, A_m in enumerate(model.A):
        deps = model.A_dependencies[m]
        _check_shape(A_m, (A_m.shape[0], *[S[f] for f in deps]), f"A[{m}]",
                     f"outcomes, then states of factors {deps}")
        _check_finite_nonneg(A_m, f"A[{m}]")
        _check_columns(A_m, f"A[{m}]")
    if len(model.C) != len(model.A):
        raise ModelError(f"C has {len(model.C)} arrays but A has {len(model.A)} modalities")
    for m, C_m in enumerate(model.C):
        if C_m.ndim not in (1, 2) or C_m.shape[0] != O[m]:
            raise ModelError(f"C[{m}] has shape {C_m.shape}, expected ({O[m]},) or ({O[m]}, T)")
        if not np.isfinite(C_m).all():
            idx = tuple(int(i) for i in np.argwhere(~np.isfinite(C_m))[0])
            raise ModelError(f"C[{m}] has a non-finite entry {C_m[idx]} at index {idx}")
    if len(model.D) != len(model.B):
        raise ModelError(f"D has {len(model.D)} arrays but B has {len(model.B)} factors")
    for f, D_f in enumerate(model.D):
        _check_shape(D_f, (S[f],), f"D[{f}]", "states of the factor")
        _check_finite_nonneg(D_f, f"D[{f}]")
        _check_columns(D_f, f"D[{f}]", "index")
    if model.E is not None:
        if model.E.ndim != 1:
            raise ModelError(f"E has shape {model.E.shape}, expected (num_policies,)")
        _check_finite_nonneg(model.E, "E")
        if abs(model.E.sum() - 1.0) > COLUMN_TOL:
            raise ModelError(f"E sums to {model.E.sum():.6g}; it must sum to 1 within {COLUMN_TOL}")
    for name, ref in (("pA", model.A), ("pB", model.B), ("pD", model.D)):
        counts = getattr(model, name)
        if counts is None:
            continue
        if len(counts) != len(ref):
            raise ModelError(f"{name} has {len(counts)} arrays but {name[1:]} has {len(ref)}")
        for i, (p, x) in enumerate(zip(counts, ref)):
            _check_shape(p, x.shape, f"{name}[{i}]", f"the shape of {name[1:]}[{i}]")
            _check_counts(p, f"{name}[{i}]")
    return model


def uniform_like(num_states):
    """Uniform beliefs, one vector per factor."""
    return [np.full(s, 1.0 / s) for s in num_states]


def random_model(rng, num_states, num_obs, num_controls=None, A_dependencies=None, B_dependencies=None,
                 concentration=1.0, C_scale=1.0, dirichlet=False) -> GenerativeModel:
    """A random model for tests and demos: columns of A and B drawn from a Dirichlet.

    Args:
        rng: ``np.random.Generator``.
        num_states, num_obs: sizes of the factors and modalities.
        num_controls: controls per factor (1 = uncontrolled); ``num_states`` when absent.
        A_dependencies, B_dependencies: as in ``GenerativeModel``.
        concentration: Dirichlet concentration of the columns (small = near-deterministic).
        C_scale: standard deviation of the normal log-preferences.
        dirichlet: also attach random counts pA, pB (and pD) whose means are the arrays.
    """
    nf = len(num_states)
    num_controls = list(num_states) if num_controls is None else list(num_controls)
    A_dependencies = _deps(A_dependencies, len(num_obs), nf, "A", default=lambda m: list(range(nf)))
    B_dependencies = _deps(B_dependencies, nf, nf, "B", default=lambda f: [f])

    def columns(shape):
        x = rng.gamma(concentration, size=shape) + 1e-12
        return x / x.sum(axis=0, keepdims=True)

    A = [columns((o, *[num_states[f] for f in deps])) for o, deps in zip(num_obs, A_dependencies)]
    B = [columns((num_states[f], *[num_states[g] for g in deps], num_controls[f]))
         for f, deps in enumerate(B_dependencies)]
    C = [rng.normal(scale=C_scale, size=o) for o in num_obs]
    D = [columns((s,)) for s in num_states]
    extra = {}
    if dirichlet:
        extra = dict(pA=[a * rng.uniform(1, 10) for a in A], pB=[b * rng.uniform(1, 10) for b in B],
                     pD=[d * rng.uniform(1, 10) for d in D])
    return GenerativeModel(A, B, C, D, A_dependencies=A_dependencies, B_dependencies=B_dependencies, **extra)


__all__ = ["GenerativeModel", "check_model", "uniform_like", "random_model"]
