"""aif_deep: active inference in PyTorch, for tabular and (next) neural models.

The same cycle and names as ``aif`` (``infer_states``, ``expected_free_energy``, ``policy_posterior``,
``select_action``, ``predict``, ``Agent``), for a batch of beliefs and of agents at once, differentiable in
the model's parameters, with a policy evaluator that shares the computation of common policy prefixes.
"""

from .control import (action_log_probability, action_marginals, action_probabilities, expected_free_energy,
                      policy_posterior, predict, select_action)
from .agent import Agent, BatchTrajectory, rollout
from .evaluator import evaluate_policies
from .fit import FitResult, fit
from .inference import Exact, FixedPoint, infer_states
from .model import BeliefModel, TabularModel, default_device

__all__ = [
    "BeliefModel", "TabularModel", "default_device",
    "FixedPoint", "Exact", "infer_states",
    "evaluate_policies", "expected_free_energy", "policy_posterior", "select_action", "action_probabilities",
    "action_marginals", "action_log_probability", "predict",
    "Agent", "BatchTrajectory", "rollout", "fit", "FitResult",
]
