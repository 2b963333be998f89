"""aif: active inference in discrete state spaces.

The tabular core: a POMDP generative model (A, B, C, D, E), fixed-point state inference, policies scored by
expected free energy, the policy posterior and action selection, and an ``Agent`` that runs the cycle.
"""

from . import actions, checks, envs, io, labels, maps, planning, strategies, utils  # noqa: I001  (subpackages; aif.plotting on demand: matplotlib)
from .actions import ActionFactors
from .agent import Agent, Learning, Selection
from .checks import check_model
from .control import (action_marginals, action_probabilities, enumerate_policies, expected_free_energy,
                      expected_outcomes, expected_states, policy_posterior, predict, select_action)
from .efe import (DEFAULT_TERMS, Ambiguity, EFEOptions, GoalDivergence, Guards, InductiveCost, InfoGain, Novelty, Risk,
                  Term, TerminalValue, Utility, pA_info_gain, pB_info_gain, pD_info_gain)
from .errors import (AifError, BeliefError, CallOrderError, ModelError, ObservationError, ParameterError, PolicyError,
                     StrategyError)
from .filtering import (Filtered, FreeEnergy, Smoothed, VariationalFiltering, filter_states, forward_backward,
                        free_energy_terms, sequence_free_energy, smooth)
from .hierarchy import Hierarchy, Link, LowerTrial
from .inference import Exact, FixedPoint, infer_states, log_evidence, variational_free_energy
from .io import FormatError, load_agent, load_model, save_agent, save_model
from .labels import LabelledModel, compile_model
from .learning import (WNORM_EXACT, WNORM_LEGACY, WNORM_SPM, WNORM_SPM12_TRIAL, WNorm, LevelEvidence, learn_trial,
                       level_evidence, preferences_from_counts, prune_by_evidence, prune_model, reduce_dirichlet,
                       spm_wnorm, update_A, update_B, update_C, update_D, update_E)
from .model import GenerativeModel, random_model
from .precision import Precision, PrecisionStep, dopamine, update_precision
from .rollout import Carry, Trajectory, default_policy_search, rollout
from .sequence import MarginalMessagePassing, SequenceTrace, VariationalMessagePassing, infer_sequence, infer_trial
from .sequence_control import (SPM_EFE, SPM_TERMS, SequenceOptions, neuronal_responses, policy_average,
                               sequence_expected_free_energy, sequence_policy_posterior)

__version__ = "0.1.0"

__all__ = [
    "AifError", "ModelError", "ObservationError", "ParameterError", "PolicyError", "BeliefError", "StrategyError",
    "CallOrderError", "checks", "strategies",
    "GenerativeModel", "check_model", "random_model",
    "FixedPoint", "Exact", "infer_states", "variational_free_energy", "log_evidence",
    "VariationalFiltering", "filter_states", "Filtered", "forward_backward", "smooth", "Smoothed",
    "sequence_free_energy", "free_energy_terms", "FreeEnergy",
    "EFEOptions", "Guards", "Term", "GoalDivergence", "Utility", "Risk", "Ambiguity", "InfoGain", "Novelty",
    "InductiveCost",
    "TerminalValue", "DEFAULT_TERMS", "enumerate_policies", "expected_free_energy", "policy_posterior", "select_action",
    "action_marginals", "action_probabilities", "predict", "expected_states", "expected_outcomes",
    "Agent", "Learning", "Selection",
    "update_A", "update_B", "update_D", "update_C", "update_E", "learn_trial", "preferences_from_counts",
    "Precision", "PrecisionStep", "update_precision", "dopamine",
    "pA_info_gain", "pB_info_gain", "pD_info_gain", "spm_wnorm", "reduce_dirichlet",
    "WNorm", "WNORM_LEGACY", "WNORM_SPM", "WNORM_EXACT", "WNORM_SPM12_TRIAL",
    "prune_model", "level_evidence", "prune_by_evidence", "LevelEvidence",
    "labels", "compile_model", "LabelledModel", "actions", "ActionFactors",
    "MarginalMessagePassing", "VariationalMessagePassing", "infer_sequence", "infer_trial", "SequenceTrace",
    "neuronal_responses", "SPM_TERMS", "SPM_EFE",
    "SequenceOptions", "sequence_expected_free_energy", "sequence_policy_posterior", "policy_average",
    "rollout", "Trajectory", "Carry", "default_policy_search", "envs", "maps", "planning", "io", "utils",
    "save_model", "load_model", "save_agent", "load_agent", "FormatError",
    "Hierarchy", "Link", "LowerTrial",
]
