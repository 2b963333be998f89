"""A sampling planner for horizons whose action sequences are too many to enumerate: the cross-entropy method.

The candidate policies are drawn from a product of categorical distributions, one per step and factor,
``p_t,f(u)``. Each iteration draws ``samples`` action sequences, scores the distinct ones by
``aif.expected_free_energy`` (any EFE terms, ``GoalDivergence`` and ``TerminalValue`` included: the prefix tree
shares the prefixes the samples have in common), and refits each ``p_t,f`` to the frequencies of the actions of
the ``elites`` policies with the lowest G (Rubinstein and Kroese 2004; as in the planners of PlaNet, Hafner et al.
2019, over discrete actions). The plan scores every distinct policy it sampled, so the Agent's q(pi) is over those.
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
        samples: action sequences drawn per iteration (duplicates are scored once).
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
        """Sample, score and refit; ``Plan`` over every distinct policy sampled (in lexicographic order), with
        their G and terms, and the first action of the lowest G."""
        check_is_model(model)
        if rng is None:
            rng = np.random.default_rng(self.seed)
        elif not isinstance(rng, np.random.Generator):
            raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        controls = enumerate_policies(model.num_controls, 1, self.control_factors)[:, 0].max(axis=0) + 1  # (F,)
        H, U = self.horizon, int(controls.max())
        p = (np.arange(U) < controls[:, None]) / controls[:, None]  # (F, U): uniform over each factor's controls
        p = np.broadcast_to(p, (H, *p.shape)).copy()  # (H, F, U)
        policies, G, terms = [], [], []
        for it in range(self.iterations + 1):
            # inverse-CDF draws: (samples, H, F) actions
            u = rng.random((self.samples, H, len(controls), 1))
            draws = (u > np.cumsum(p, axis=-1)[None]).sum(axis=-1)
            draws = np.minimum(draws, controls - 1)  # rounding at the top of a CDF
            batch = np.unique(draws, axis=0)
            G_batch, terms_batch = expected_free_energy(model, qs, batch, self.efe_terms, self.options)
            policies.append(batch)
            G.append(G_batch)
            terms.append(terms_batch)
            if it == self.iterations:
                break
            elite = batch[np.argsort(G_batch, kind="stable")[: self.elites]]  # (E, H, F)
            freq = (elite[..., None] == np.arange(U)).mean(axis=0)  # (H, F, U)
            p = self.smoothing * p + (1.0 - self.smoothing) * freq
        every = np.concatenate(policies)
        unique, first = np.unique(every, axis=0, return_index=True)
        G_all = np.concatenate(G)[first]
        terms_all = {k: np.concatenate([t[k] for t in terms])[first] for k in terms[0]}
        return Plan(G_all, unique, terms_all)


__all__ = ["CrossEntropyPlanner"]
