"""A sampling planner for horizons whose action sequences are too many to enumerate: the cross-entropy method.

The candidate policies are drawn from a product of categorical distributions, one per step and factor,
``p_t,f(u)``. Each iteration draws ``samples`` action sequences, scores the distinct ones by
``aif.expected_free_energy`` (any EFE terms, ``GoalDivergence`` and ``TerminalValue`` included: the prefix tree
shares the prefixes the samples have in common), and refits each ``p_t,f`` to the frequencies of the actions of
the ``elites`` policies with the lowest G (Rubinstein and Kroese 2004; as in the planners of PlaNet, Hafner et al.
2019, over discrete actions). The plan scores first actions, each by its best sampled continuation, so the Agent's
q(pi) is over first actions (the same set at every step, as ``SophisticatedInference``'s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..checks import check_fraction, check_index, check_integer, check_is_model
from ..control import enumerate_policies, expected_free_energy
from ..efe import DEFAULT_TERMS, EFEOptions
from ..errors import ParameterError, PolicyError
from ..model import GenerativeModel
from ..strategies import NUMPY, Planner
from .base import Plan, check_options


@dataclass(frozen=True)
class CrossEntropyPlanner(Planner):
    """Policies of ``horizon`` sampled and refined by the cross-entropy method, scored by their EFE.

    Attributes:
        horizon: policy length H >= 1.
        samples: action sequences drawn per iteration (duplicates are scored once); at least the number of joint
            first actions, each of which is drawn once per iteration.
        elites: the number of lowest-G distinct policies each refit uses (<= samples).
        iterations: refits; the last iteration's draws are scored and not refitted to.
        smoothing: in [0, 1), the weight of the previous distribution in each refit (0: the elites' frequencies).
        efe_terms, options: the EFE terms and conventions, as ``PolicyEnumeration``.
        control_factors: the factors whose actions vary (the others take action 0); all by default.
        seed: seeds the draws when ``plan`` is given no ``rng`` (the aif_deep Agent's NumPy route gives none).
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    horizon: int = 4
    samples: int = 256
    elites: int = 32
    iterations: int = 4
    smoothing: float = 0.0
    efe_terms: tuple = DEFAULT_TERMS
    options: EFEOptions = field(default_factory=EFEOptions)
    control_factors: tuple | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("horizon", "samples", "elites", "iterations"):
            check_integer(getattr(self, name), f"CrossEntropyPlanner.{name}", error=PolicyError)
        if self.elites > self.samples:
            raise PolicyError(f"CrossEntropyPlanner.elites = {self.elites} is more than samples = {self.samples}")
        check_fraction(self.smoothing, "CrossEntropyPlanner.smoothing", "[0, 1)")
        check_index(self.seed, "CrossEntropyPlanner.seed")
        check_options(self.options, "CrossEntropyPlanner.options")

    def plan(self, model: GenerativeModel, qs: list, rng: np.random.Generator | None = None) -> Plan:
        """Sample, score and refit. Returns a ``Plan`` over the joint first actions
        (``enumerate_policies(num_controls, 1, control_factors)``'s rows): the G (and terms) of a first action are
        those of the lowest-G sampled policy that begins with it (each iteration draws every first action at least
        once, so each has one), as a tree search scores first actions by their best continuation."""
        check_is_model(model)
        if rng is None:
            rng = np.random.default_rng(self.seed)
        elif not isinstance(rng, np.random.Generator):
            raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        firsts = enumerate_policies(model.num_controls, 1, self.control_factors)  # (K, 1, F)
        K = len(firsts)
        if self.samples < K:
            raise PolicyError(f"CrossEntropyPlanner.samples = {self.samples} is below the {K} joint first actions "
                              "it must draw at least once")
        controls = firsts[:, 0].max(axis=0) + 1  # (F,): 1 for a factor without a choice
        H, U = self.horizon, int(controls.max())
        p = (np.arange(U) < controls[:, None]) / controls[:, None]  # (F, U): uniform over each factor's controls
        p = np.broadcast_to(p, (H, *p.shape)).copy()  # (H, F, U)
        best_G = np.full(K, np.inf)
        best_terms: dict[str, np.ndarray] = {}
        for it in range(self.iterations + 1):
            u = rng.random((self.samples, H, len(controls), 1))
            draws = np.minimum((u > np.cumsum(p, axis=-1)[None]).sum(axis=-1), controls - 1)  # (samples, H, F)
            draws[:K, 0] = firsts[:, 0]  # every first action at least once
            batch = np.unique(draws, axis=0)
            G, terms = expected_free_energy(model, qs, batch, self.efe_terms, self.options)
            # the lowest G per first action, this iteration and before
            first = np.ravel_multi_index(tuple(batch[:, 0].T), tuple(controls))  # (n,) rows of firsts
            order = np.lexsort((G, first))
            lead = order[np.r_[True, first[order][1:] != first[order][:-1]]]  # the best row of each first action
            better = G[lead] < best_G[first[lead]]
            for key, value in terms.items():
                best_terms.setdefault(key, np.zeros(K))[first[lead[better]]] = value[lead[better]]
            best_G[first[lead[better]]] = G[lead[better]]
            if it == self.iterations:
                break
            elite = batch[np.argsort(G, kind="stable")[: self.elites]]  # (E, H, F)
            freq = (elite[..., None] == np.arange(U)).mean(axis=0)  # (H, F, U)
            p = self.smoothing * p + (1.0 - self.smoothing) * freq
        return Plan(best_G, firsts, best_terms)


__all__ = ["CrossEntropyPlanner"]
