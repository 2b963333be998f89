"""The POMDP generative model: arrays A, B, C, D, E and optional Dirichlet counts pA, pB, pD, pE, pC.

Shapes (``S_f = num_states[f]``, ``O_m = num_obs[m]``, ``U_f = num_controls[f]``):

- ``A[m]``: ``(O_m, *S_f for f in A_dependencies[m])``, p(o_m | s); columns sum to one.
- ``B[f]``: ``(S_f, *S_g for g in B_dependencies[f], U_f)``, p(s_f' | s_deps, u_f); columns sum to one.
  Without dependencies ``B_dependencies[f] == [f]`` and the shape is ``(S_f, S_f, U_f)``. A factor with
  ``U_f == 1`` is uncontrolled.
- ``C[m]``: ``(O_m,)`` or ``(O_m, T)``: log-preferences over outcomes (unnormalised; the EFE options say
  whether they are normalised with a log-softmax before use).
- ``D[f]``: ``(S_f,)``, the initial-state prior.
- ``E``: ``(num_policies,)``, the prior over policies (habits); uniform when absent.
- ``pA``, ``pB``, ``pD``: Dirichlet counts with the shapes of ``A``, ``B``, ``D``, non-negative with a positive
  count in every column. Given counts and no array, the array is their mean, the normalised counts; a zero
  count is a structural zero (probability 0; see ``aif.learning``).
- ``pE``: ``(num_policies,)`` Dirichlet counts over policies (habits, SPM's ``MDP.e``); without ``E``, ``E`` is their
  mean ``pE / sum(pE)``.
- ``pC``: ``pC[m]`` of shape ``(O_m,)`` or ``(O_m, T)``, Dirichlet counts over outcomes (SPM's ``MDP.c``); without
  ``C``, ``C`` is SPM's ``ln softmax(psi(pC + 1/32))`` (``preferences_from_counts``; see there why that rule).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.special import digamma

from .checks import (
    as_numbers,
    check_array_list,
    check_count_list,
    check_dependencies,
    check_dirichlet,
    check_integer,
    check_model,
    check_positive,
    check_real,
    check_sequence,
)
from .errors import ModelError, StrategyError
from .maths import LEGACY_EPS


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
        pE: optional Dirichlet counts over policies ``(num_policies,)`` (habits; ``E`` is their mean when absent).
        pC: optional Dirichlet counts over outcomes, one per modality, shaped like ``C`` (``C`` is
            ``preferences_from_counts(pC)`` when absent).

    Raises:
        ModelError: a shape, value or dependency check failed; the message names the array and index.

    A model holds its own copies of the arrays and is not changed after it is built: to change one, build a new
    model with ``replace`` (learning does). Tables derived from it are computed once (``derived``).
    """

    # C, D and the dependencies may be given as None; after __post_init__ they are lists.
    A: list
    B: list
    C: list = None  # type: ignore[assignment]
    D: list = None  # type: ignore[assignment]
    E: np.ndarray | None = None
    pA: list | None = None
    pB: list | None = None
    pD: list | None = None
    A_dependencies: list = None  # type: ignore[assignment]
    B_dependencies: list = None  # type: ignore[assignment]
    pE: np.ndarray | None = None
    pC: list | None = None
    num_states: list = field(init=False, repr=False)
    num_obs: list = field(init=False, repr=False)
    num_controls: list = field(init=False, repr=False)

    def __post_init__(self):
        put = object.__setattr__
        for name in ("pA", "pB", "pD", "pC"):
            if getattr(self, name) is not None:
                put(self, name, check_array_list(getattr(self, name), name))
        A = check_array_list(self.A, "A") if self.A is not None else _dirichlet_mean(self.pA, "A")
        B = check_array_list(self.B, "B") if self.B is not None else _dirichlet_mean(self.pB, "B")
        put(self, "A", A)
        put(self, "B", B)
        if not A or not B:
            raise ModelError("A and B must each hold at least one array")
        for name, arrays, axes in (("A", A, 1), ("B", B, 2)):
            for i, x in enumerate(arrays):
                if x.ndim < axes or x.size == 0:
                    raise ModelError(f"{name}[{i}] has shape {x.shape}: it needs at least {axes} non-empty axes")
        num_factors = len(B)
        num_states = [b.shape[0] for b in B]
        put(self, "num_states", num_states)
        put(self, "num_obs", [a.shape[0] for a in A])
        put(self, "num_controls", [b.shape[-1] for b in B])
        put(self, "A_dependencies", check_dependencies(self.A_dependencies, len(A), num_factors, "A",
                                                       default=lambda m: list(range(num_factors))))
        put(self, "B_dependencies", check_dependencies(self.B_dependencies, num_factors, num_factors, "B",
                                                       default=lambda f: [f]))
        if self.pC is not None:
            _check_preference_counts(self.pC, self.num_obs, self.C)
        put(self, "C", check_array_list(self.C, "C") if self.C is not None else
            [np.zeros(o) for o in self.num_obs] if self.pC is None else preferences_from_counts(self.pC))
        put(self, "D", check_array_list(self.D, "D") if self.D is not None else
            uniform_like(num_states) if self.pD is None else _dirichlet_mean(self.pD, "D"))
        if self.pE is not None:
            pE = as_numbers(self.pE, "pE", ModelError).copy()
            if pE.ndim != 1:
                raise ModelError(f"pE has shape {pE.shape}, expected (num_policies,)")
            check_dirichlet(pE, "pE")
            put(self, "pE", pE)
        if self.E is not None:
            put(self, "E", as_numbers(self.E, "E", ModelError).copy())
        elif self.pE is not None:
            put(self, "E", self.pE / self.pE.sum())
        if self.pE is not None and self.E.shape != self.pE.shape:
            raise ModelError(f"pE has shape {self.pE.shape} but E {self.E.shape}: both are over the same policies")
        check_model(self)
        self._read_only()

    def _read_only(self) -> None:
        """The model owns copies of its arrays, and what is derived from them (``derived``, aif.fast's tables) is
        computed once: an array changed in place would leave those stale, so a write raises instead ("assignment
        destination is read-only"); ``replace`` builds a changed model."""
        for name in ("A", "B", "C", "D", "pA", "pB", "pD", "pC"):
            for x in getattr(self, name) or ():
                x.setflags(write=False)
        for x in (self.E, self.pE):
            if x is not None:
                x.setflags(write=False)

    def __setstate__(self, state: dict) -> None:
        """A copy (``copy.deepcopy``, pickle) keeps its arrays read-only (NumPy's copies are writable)."""
        self.__dict__.update(state)
        self._read_only()

    @property
    def num_factors(self) -> int:
        return len(self.B)

    @property
    def num_modalities(self) -> int:
        return len(self.A)

    def derived(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per model and ``key``: a table the cycle reads at every step (the entropy of
        A's columns, ln C under a convention). A model's arrays are read-only (``replace`` builds a
        changed model, as learning does), so what is derived from them stays valid."""
        tables = self.__dict__.setdefault("_derived", {})
        if key not in tables:
            tables[key] = make()
        return tables[key]

    def replace(self, **changes: Any) -> "GenerativeModel":
        """A copy with some arrays replaced (validated again)."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        kwargs.update(changes)
        return GenerativeModel(**kwargs)


def _dirichlet_mean(counts, name):
    if counts is None:
        raise ModelError(f"{name} is missing: give {name} or its Dirichlet counts p{name}")
    for i, p in enumerate(counts):
        check_dirichlet(p, f"p{name}[{i}]")
    return [p / p.sum(axis=0, keepdims=True) for p in counts]


def _check_preference_counts(pC: list, num_obs: list, C: Any) -> None:
    """``pC``: one count array ``(O_m,)`` or ``(O_m, T)`` per modality, shaped like ``C[m]`` when ``C`` is given."""
    if len(pC) != len(num_obs):
        raise ModelError(f"pC has {len(pC)} arrays but A has {len(num_obs)} modalities")
    for m, p in enumerate(pC):
        if p.ndim not in (1, 2) or p.shape[0] != num_obs[m]:
            raise ModelError(f"pC[{m}] has shape {p.shape}, expected ({num_obs[m]},) or ({num_obs[m]}, T)")
        check_dirichlet(p, f"pC[{m}]")
        if C is not None and m < len(C) and np.shape(C[m]) != p.shape:
            raise ModelError(f"pC[{m}] has shape {p.shape} but C[{m}] {np.shape(C[m])}: give counts shaped like C")


# SPM's spm_MDP_VB_X reads log-preferences from counts c as ln softmax(psi(c + 1/32)) (the 1/32 keeps psi finite)
PREFERENCE_OFFSET = 1.0 / 32.0


def preferences_from_counts(pC: Sequence[Any]) -> list:
    """Log-preferences over outcomes from their Dirichlet counts, as SPM's ``spm_MDP_VB_X`` forms ``C`` from ``c``:
    ``C[m] = ln softmax(psi(pC[m] + 1/32))`` over outcomes (axis 0, per column of time-varying counts), the log
    guarded as SPM's ``spm_log`` (``ln(x + 1e-16)``).

    Why this rule (the model's ``C`` when only ``pC`` is given): it is the expected log-probability
    ``E[ln p(o)] = psi(c) - psi(c0)`` of the Dirichlet, normalised, the one rule with a reference (SPM; pymdp has no
    preference counts). Unlike the log of the counts' mean, it holds back preferences for outcomes seen rarely
    (``psi(c) << ln c`` for small ``c``), so a new outcome is avoided until it is counted.

    Args:
        pC: counts, ``pC[m]`` of shape ``(num_obs[m],)`` or ``(num_obs[m], T)``.

    Returns:
        ``C``, a list shaped like ``pC`` (normalised log-probabilities: no further normalisation changes them).
    """
    pC = check_count_list(pC, "pC")
    out = []
    for c in pC:
        expected = digamma(c + PREFERENCE_OFFSET)
        p = np.exp(expected - expected.max(axis=0))
        out.append(np.log(p / p.sum(axis=0) + LEGACY_EPS))
    return out


def uniform_like(num_states):
    """Uniform beliefs, one vector per factor."""
    return [np.full(s, 1.0 / s) for s in num_states]


def random_model(rng: np.random.Generator, num_states: Sequence[int], num_obs: Sequence[int],
                 num_controls: Sequence[int] | None = None, A_dependencies: Sequence[Sequence[int]] | None = None,
                 B_dependencies: Sequence[Sequence[int]] | None = None, concentration: float = 1.0,
                 C_scale: float = 1.0, dirichlet: bool = False) -> GenerativeModel:
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
    if not isinstance(rng, np.random.Generator):
        raise StrategyError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    num_states, num_obs = ([check_integer(n, f"{name}[{i}]") for i, n in enumerate(check_sequence(x, name, ModelError))]
                           for name, x in (("num_states", num_states), ("num_obs", num_obs)))
    nf = len(num_states)
    num_controls = list(num_states) if num_controls is None else [
        check_integer(n, f"num_controls[{i}]") for i, n in enumerate(check_sequence(num_controls, "num_controls",
                                                                                    ModelError))]
    concentration, C_scale = check_positive(concentration, "concentration"), check_real(C_scale, "C_scale", 0.0)
    A_dependencies = check_dependencies(A_dependencies, len(num_obs), nf, "A", default=lambda m: list(range(nf)))
    B_dependencies = check_dependencies(B_dependencies, nf, nf, "B", default=lambda f: [f])
    if len(num_controls) != nf:
        raise ModelError(f"num_controls has {len(num_controls)} entries but num_states has {nf}")

    def columns(shape):
        x = rng.gamma(concentration, size=shape) + 1e-12
        return x / x.sum(axis=0, keepdims=True)

    A = [columns((o, *[num_states[f] for f in deps])) for o, deps in zip(num_obs, A_dependencies, strict=True)]
    B = [columns((num_states[f], *[num_states[g] for g in deps], num_controls[f]))
         for f, deps in enumerate(B_dependencies)]
    C = [rng.normal(scale=C_scale, size=o) for o in num_obs]
    D = [columns((s,)) for s in num_states]
    extra: dict = {}
    if dirichlet:
        extra = dict(pA=[a * rng.uniform(1, 10) for a in A], pB=[b * rng.uniform(1, 10) for b in B],
                     pD=[d * rng.uniform(1, 10) for d in D])
    return GenerativeModel(A, B, C, D, A_dependencies=A_dependencies, B_dependencies=B_dependencies, **extra)


__all__ = ["GenerativeModel", "uniform_like", "random_model", "preferences_from_counts", "PREFERENCE_OFFSET"]
