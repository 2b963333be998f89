"""aif_deep: active inference in PyTorch, for tabular and neural models.

The same cycle and names as ``aif`` (``infer_states``, ``expected_free_energy``, ``policy_posterior``,
``select_action``, ``predict``, ``Agent``), for a batch of beliefs and of agents at once, differentiable in
the model's parameters, with a policy evaluator that shares the computation of common policy prefixes.
"""

try:
    import torch  # noqa: F401
except ImportError as e:  # say how to get it, instead of failing deep inside a submodule
    raise ImportError('aif_deep needs PyTorch: pip install "aif[deep]". On a machine without a GPU, install '
                      "the CPU build of torch first (pip install torch --index-url "
                      "https://download.pytorch.org/whl/cpu), or pip pulls a CUDA build of several GB.") from e

from aif import __version__  # one distribution, one version
from .control import (action_log_probability, action_marginals, action_probabilities, expected_free_energy,
                      expected_outcomes, expected_states, policy_posterior, predict, select_action)
from .agent import Agent, BatchTrajectory, rollout
from .checkpoint import TrainState, load_agent, load_buffer, load_checkpoint, save_agent, save_buffer, save_checkpoint
from . import efe, goal_q, imitation, learning, rssm, sophisticated, threads
from .evaluator import evaluate_policies
from .full_tree import PolicyEvaluator
from .fit import ChoiceLikelihood, FitResult, choice_likelihood, fit
from .bms import BMSResult, group_bms
from .inference import categorical_modalities, infer_states
from .model import BeliefModel, TabularModel, default_device
from .neural import NeuralModel, unimix
from .actor_critic import ActorCriticRun, EntropyWeight, PolicyDrift, SoftActorCritic
from .shooting import CrossEntropyShooting, ModelLearning, ModelRun, RewardModel, RewardStateModel, sequence_efe
from .online import (Ensemble, EnsembleInfoGain, EpistemicCap, EpsilonGreedy, LearnedQ, ObservedState, OnlineTrick,
                     RealisedInfoGain, RewardRisk, SelectionRule, Softmax, StateVectorModel, TDLearning, TDRun)
from .qfunction import QFunction, QSettings, belief_pool, td_targets, train_qfunction
from .images import NoisyGridImages, NoisyTMazeImages
from .episodes import ReplayBuffer, collect_episodes, collect_random
from .training import (DetachCarriedMessage, EncoderFlip, KLWeight, TrainResult, TrainSettings, Trick, evaluate_vfe,
                       match_classes, sequence_vfe, train, train_best_of)

__all__ = [
    "__version__",
    "BeliefModel", "TabularModel", "default_device",
    "infer_states", "categorical_modalities",
    "evaluate_policies", "PolicyEvaluator", "expected_free_energy", "policy_posterior", "select_action",
    "action_probabilities", "action_marginals", "action_log_probability", "predict", "expected_states",
    "expected_outcomes",
    "Agent", "BatchTrajectory", "rollout", "fit", "FitResult",
    "choice_likelihood", "ChoiceLikelihood", "group_bms", "BMSResult",  # aif_deep.bayes, .recovery: the fit extra
    "NeuralModel", "unimix",  # observation heads: aif_deep.neural.Categorical / Bernoulli / Gaussian
    "ReplayBuffer", "TrainSettings", "TrainResult", "train", "train_best_of", "sequence_vfe", "evaluate_vfe",
    "save_checkpoint", "load_checkpoint", "NoisyGridImages", "NoisyTMazeImages", "collect_random", "collect_episodes",
    "match_classes", "Trick", "KLWeight", "DetachCarriedMessage", "EncoderFlip",
    "QFunction", "QSettings", "train_qfunction", "td_targets", "belief_pool",
    "save_agent", "load_agent", "save_buffer", "load_buffer", "TrainState",
    "StateVectorModel", "ObservedState", "LearnedQ", "TDLearning", "TDRun", "RewardRisk", "EnsembleInfoGain",
    "RealisedInfoGain",
    "SelectionRule", "Softmax", "EpsilonGreedy", "Ensemble", "OnlineTrick", "EpistemicCap",
    "SoftActorCritic", "ActorCriticRun", "EntropyWeight", "PolicyDrift",  # an actor-critic on the EFE
    "CrossEntropyShooting", "ModelLearning", "ModelRun", "RewardModel", "RewardStateModel",  # model-based planning
    "sequence_efe",  # through a learned ensemble and reward model (aif_deep.shooting)
    "imitation",  # behaviour cloning and inverse soft-Q (IQ-Learn) from demonstrations
    "goal_q",  # Q(b, a, g) with hindsight relabelling: goal_q.train_goal_q, goal_q.GoalQPlanner, goal_q.GoalValue
    "rssm",  # a recurrent categorical world model: rssm.RSSM, rssm.RSSMView (a BeliefModel at h), rssm.fit,
    # rssm.OnlineFit (training while acting), rssm.ELBO
    "sophisticated",  # aif.planning.SophisticatedInference for a batch of beliefs: sophisticated.search
    "learning", "efe",  # Dirichlet updates for batches of agents; the EFE terms defined once in torch
    "threads",  # torch's intra-op threads in the hot calls: one for small work (threads_for, SMALL_WORK)
]
