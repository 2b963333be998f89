"""The strategy families an Agent is assembled from, one abstract base each.

An Agent (``aif.Agent``, ``aif_deep.Agent``) is a short shell over three slots, each filled by an object of
one family:

- ``StateInference``: beliefs at one step from an observation and a prior (``FixedPoint``, ``Exact``, an
  amortised encoder); ``SequenceInference``: beliefs over a window of steps (``MarginalMessagePassing``,
  ``VariationalMessagePassing``).
- ``Planner``: scores policies or first actions from the current belief (``PolicyEnumeration``,
  ``SophisticatedInference``, ``SoftQPlanner``, a learned Q-function).
- ``Learner``: updates the model from what the agent saw (``Learning``: Dirichlet counts).

A strategy is a small frozen object of settings; concrete strategies are final (subclass the family, never a
concrete strategy). ``backends`` says which packages can run it: ``"numpy"`` (``aif``) and/or ``"torch"``
(``aif_deep``). ``aif_deep`` runs a NumPy-only tabular strategy on a ``TabularModel`` through its NumPy form,
one agent at a time, and refuses it for neural models. ``require`` checks a strategy when an Agent is built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from .errors import StrategyError

NUMPY = "numpy"
TORCH = "torch"


class Strategy(ABC):
    """Base of every strategy family."""

    family: ClassVar[str] = "strategy"
    backends: ClassVar[frozenset[str]] = frozenset({NUMPY, TORCH})


class StateInference(Strategy):
    """Posterior beliefs at one step: ``q(s) ∝ exp(ln p(o | s) + ln prior)``."""

    family: ClassVar[str] = "state inference"


class SequenceInference(Strategy):
    """Posterior beliefs over a window of past and future steps, per policy (``aif.infer_sequence``)."""

    family: ClassVar[str] = "sequence inference"


class Planner(Strategy):
    """Scores candidate policies (or first actions) from the current belief: ``plan(model, qs) -> Plan``."""

    family: ClassVar[str] = "planner"

    @abstractmethod
    def plan(self, model: Any, qs: Any, rng: Any = None) -> Any:
        """An ``aif.planning.Plan`` for belief ``qs`` (one vector per factor); ``rng`` for planners that sample."""


class Learner(Strategy):
    """Updates the model's parameters from the beliefs, observations and actions of an episode."""

    family: ClassVar[str] = "learner"


S = TypeVar("S", bound=Strategy)


def require(value: object, family: type[S], argument: str, backend: str, optional: bool = False) -> S | None:
    """``value`` if it is a strategy of ``family`` that ``backend`` can run; else a ``StrategyError`` that names
    the argument, what was given and what is expected. ``None`` passes when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, type):
        raise StrategyError(f"{argument} must be an instance, got the class {value.__name__}: write "
                            f"{value.__name__}(...)")
    if not isinstance(value, family):
        raise StrategyError(f"{argument} must be a {family.family} strategy (an instance of "
                            f"aif.strategies.{family.__name__}), got {value!r}")
    if backend not in type(value).backends:
        runs = " and ".join(sorted(type(value).backends))
        raise StrategyError(f"{argument} = {type(value).__name__} runs on {runs} only, not on {backend}")
    return value


__all__ = ["Strategy", "StateInference", "SequenceInference", "Planner", "Learner", "require", "NUMPY", "TORCH"]
