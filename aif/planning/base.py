"""The planner interface: given a belief and a model, score policies (or first actions) and choose one.

Every planner returns a ``Plan``: ``G`` over the rows of ``Plan.policies`` (lower is better), the terms it
was made of, and the planner's own choice of action. The Agent turns ``G`` into a posterior,
q(pi) = softmax(-gamma G + ln E) over ``Plan.policies``, and selects its action from that, so a planner
only has to say how good each candidate is:

- ``PolicyEnumeration``: every action sequence of a horizon, scored by ``aif.expected_free_energy``
  (the core's behaviour).
- ``SophisticatedInference`` (``sophisticated.py``): first actions scored by a recursive EFE over the
  beliefs each outcome would lead to.
- ``SoftQPlanner`` (``soft_value.py``): joint first actions scored by belief-weighted soft Q-values.

Every planner subclasses ``aif.strategies.Planner`` (``aif.planning.Planner``) and runs on NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..checks import as_numbers, check_integer, check_is_model
from ..control import enumerate_policies, expected_free_energy
from ..efe import DEFAULT_TERMS, EFEOptions
from ..errors import ParameterError, PolicyError, StrategyError
from ..model import GenerativeModel
from ..strategies import NUMPY, Planner


@dataclass(frozen=True)
class Plan:
    """What a planner returns.

    Attributes:
        G: ``(P,)`` expected free energy (or the planner's stand-in for it) of each row of ``policies``;
            lower is better.
        policies: int ``(P, H, num_factors)``, the policies ``G`` scores; ``H = 1`` for planners that
            score first actions only.
        terms: dict of ``(P,)`` arrays, the parts ``G`` was made of (may be empty).
        action: int ``(num_factors,)``, the planner's own choice: the first action of the policy with the
            lowest ``G`` (the first of ties), i.e. the argmax of ``-G``.
    """

    G: np.ndarray
    policies: np.ndarray
    terms: dict = field(default_factory=dict)
    action: np.ndarray | None = None

    def __post_init__(self):
        G = as_numbers(self.G, "Plan.G", PolicyError)
        policies = as_numbers(self.policies, "Plan.policies", PolicyError, None)
        if G.ndim != 1 or policies.ndim != 3 or policies.shape[0] != G.shape[0]:
            raise PolicyError(f"Plan.G has shape {G.shape} and Plan.policies {policies.shape}; expected (P,) "
                              "and (P, horizon, num_factors)")
        if not np.issubdtype(policies.dtype, np.integer):
            raise PolicyError(f"Plan.policies must hold integer actions, got dtype {policies.dtype}")
        for name, value in self.terms.items():
            if np.shape(value) != G.shape:
                raise ParameterError(f"Plan.terms[{name!r}] has shape {np.shape(value)}, expected {G.shape}")
        if G.size == 0 or not np.isfinite(G).all():
            raise PolicyError(f"Plan.G must be finite with at least one policy, got {G}")
        action = policies[int(np.argmin(G)), 0] if self.action is None else as_numbers(self.action, "Plan.action",
                                                                                         PolicyError, None)
        if action.shape != policies.shape[2:] or not np.issubdtype(action.dtype, np.integer):
            raise PolicyError(f"Plan.action has shape {action.shape}, expected ({policies.shape[2]},)")
        object.__setattr__(self, "G", G)
        object.__setattr__(self, "policies", policies)
        object.__setattr__(self, "action", action.astype(int))


def check_options(options: object, name: str) -> None:
    """A ``StrategyError`` unless ``options`` is an ``aif.EFEOptions``."""
    if not isinstance(options, EFEOptions):
        raise StrategyError(f"{name} must be an aif.EFEOptions, got {options!r}")


@dataclass(frozen=True)
class PolicyEnumeration(Planner):
    """Score every policy of a horizon by its expected free energy (the core's planner).

    Attributes:
        horizon: policy length (ignored when ``policies`` is given).
        efe_terms: names of the EFE terms that make up G (see ``aif.expected_free_energy``).
        options: ``EFEOptions``.
        control_factors: factors whose actions the enumerated policies vary (all by default).
        policies: explicit policies ``(P, H, num_factors)``; enumerated from the model when absent.
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    horizon: int = 1
    efe_terms: tuple = DEFAULT_TERMS
    options: EFEOptions = field(default_factory=EFEOptions)
    control_factors: tuple | None = None
    policies: np.ndarray | None = None

    def __post_init__(self):
        if self.policies is None:
            check_integer(self.horizon, "PolicyEnumeration.horizon", error=PolicyError)
        check_options(self.options, "PolicyEnumeration.options")

    def plan(self, model: GenerativeModel, qs: list, rng: np.random.Generator | None = None) -> Plan:
        """``G`` and the EFE terms of every policy; ``Plan.action`` is the first action of the lowest G."""
        check_is_model(model)
        policies = (enumerate_policies(model.num_controls, self.horizon, self.control_factors)
                    if self.policies is None else self.policies)
        G, terms = expected_free_energy(model, qs, policies, self.efe_terms, self.options)  # checks the policies
        return Plan(G, policies, terms)

