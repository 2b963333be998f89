"""Planners beside expected free energy: control as inference (soft value iteration) and inductive inference."""

from .base import Plan, Planner, PolicyEnumeration
from .inductive import inductive_matrix
from .mcts import MCTS
from .soft_value import (SoftQPlanner, SoftValues, forward_messages, joint_rewards, joint_transitions,
                         optimal_state_marginals, soft_value_iteration, state_marginals)
from .sophisticated import SearchTree, SophisticatedInference

__all__ = [
    "SoftValues", "soft_value_iteration", "state_marginals", "forward_messages", "optimal_state_marginals",
    "SoftQPlanner", "joint_transitions", "joint_rewards",
    "inductive_matrix",
    "Plan", "Planner", "PolicyEnumeration", "SophisticatedInference", "SearchTree", "MCTS",
]
