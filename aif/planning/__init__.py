"""Planners beside expected free energy: control as inference (soft value iteration) and inductive inference."""

from .base import Plan, Planner, PolicyEnumeration
from .cem import CrossEntropyPlanner
from .goals import goal_from_tables, log_desired_distribution, log_optimal_visitation, model_goal
from .inductive import inductive_matrix
from .inverse import (IRLResult, IRLSettings, decision_counts, fit_preferences, likelihood_and_gradient, maxent_policy,
                      outcome_features, sample_demonstrations)
from .mcts import MCTS
from .soft_value import (SoftQPlanner, SoftValues, forward_messages, joint_rewards, joint_transitions,
                         optimal_state_marginals, soft_value_iteration, state_marginals)
from .sophisticated import SearchTree, SophisticatedInference

__all__ = [
    "SoftValues", "soft_value_iteration", "state_marginals", "forward_messages", "optimal_state_marginals",
    "SoftQPlanner", "joint_transitions", "joint_rewards",
    "inductive_matrix",
    "goal_from_tables", "log_desired_distribution", "log_optimal_visitation", "model_goal", "CrossEntropyPlanner",
    "IRLSettings", "IRLResult", "fit_preferences", "likelihood_and_gradient", "decision_counts", "maxent_policy",
    "outcome_features", "sample_demonstrations",
    "Plan", "Planner", "PolicyEnumeration", "SophisticatedInference", "SearchTree", "MCTS",
]
