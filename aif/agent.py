"""The Agent: a thin stateful shell over the cycle's pure functions.

One step: ``infer_states`` (posterior from the observation and the carried prior), ``infer_policies``
(EFE of every policy and q(pi)), ``sample_action``, then the prior for the next step is ``predict(qs, u)``.
The Agent holds settings and the current beliefs; every equation lives in ``inference`` and ``control``.

How the cycle runs for the Agent's strategies is chosen once, when it is built: from one belief (``_OneStep``:
its planner, or the EFE of its policies; ``_Learning`` adds the ``Learning`` updates), or, with a
method that infers over time (an ``aif.strategies.SequenceInference``: ``MarginalMessagePassing``,
``VariationalMessagePassing``), on a window (``aif.sequence_control.SequenceCycle``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from . import fast
from .actions import ActionFactors
from .checks import (
    as_numbers,
    check_action,
    check_beliefs,
    check_choice,
    check_finite,
    check_integer,
    check_log_habits,
    check_policies,
    check_policy_weights,
    check_positive,
    check_probability,
)
from .control import (
    draw_action,
    enumerate_policies,
    policy_posterior,
    posterior_of,
    predict_policies,
    prefix_tree_efe,
    selection_probabilities,
)
from .efe import DEFAULT_TERMS, EFEOptions, check_counts, check_efe_size, check_terms
from .errors import CallOrderError, ModelError, ParameterError, PolicyError, StrategyError
from .filtering import free_energy_terms, smooth
from .inference import FixedPoint, log_likelihood
from .learning import Learning
from .model import GenerativeModel
from .sequence import MarginalMessagePassing
from .sequence_control import SequenceCycle, SequenceOptions
from .strategies import NUMPY, Learner, Planner, SequenceInference, StateInference, require


@dataclass(frozen=True)
class Selection:
    """How an action is chosen from q(pi).

    Attributes:
        mode: ``"deterministic"`` (argmax) or ``"stochastic"`` (sample softmax(alpha ln p)).
        sampling: ``"full"`` (choose a policy, take its first action) or ``"marginal"`` (per factor, from
            the marginal over first actions).
    """

    mode: str = "deterministic"
    sampling: str = "full"

    def __post_init__(self):
        check_choice(self.mode, "Selection.mode", ("deterministic", "stochastic"))
        check_choice(self.sampling, "Selection.sampling", ("full", "marginal"))


def preset_settings(name: str, sampling: str, mode: str = "deterministic", policy_sep_prior: bool = False,
                    **kwargs: Any) -> dict:
    """Agent keyword arguments with the settings of pymdp.legacy's (``"pymdp_legacy"``, or with MMP
    ``"pymdp_legacy_mmp"``) or pymdp 1.0's (``"pymdp"``) agent, plus ``kwargs``; shared by ``aif.Agent`` and
    ``aif_deep.Agent``'s presets."""
    inference, efe = {"pymdp_legacy": (FixedPoint.pymdp_legacy(), EFEOptions.pymdp_legacy()),
                      "pymdp": (FixedPoint.pymdp(), EFEOptions.pymdp()),
                      "pymdp_legacy_mmp": (MarginalMessagePassing(legacy_vfe=True), EFEOptions.pymdp_legacy())}[name]
    if name == "pymdp_legacy_mmp":
        kwargs.setdefault("sequence", SequenceOptions.pymdp_legacy(policy_sep_prior))
    precision = 1.0 if name == "pymdp" else 16.0  # pymdp 1.0's Agent: gamma = alpha = 1; legacy's: 16
    kwargs.setdefault("gamma", precision)
    kwargs.setdefault("alpha", precision)
    kwargs.setdefault("inference", inference)  # the preset's, unless the caller names another method
    kwargs.setdefault("efe", efe)
    return dict(selection=Selection(mode, sampling), **kwargs)


def atomic(method: Callable) -> Callable:
    """Make an Agent's public call all-or-nothing: when it raises, the attributes of ``agent.parts()`` (lists
    copied, so appends are undone) and the state of their random generators are put back as they were, so a
    retry does not count an observation twice."""

    @functools.wraps(method)
    def call(agent: Any, *args: Any, **kwargs: Any) -> Any:
        if vars(agent).get("_in_call"):  # inside step: step's snapshot covers this call
            return method(agent, *args, **kwargs)
        saved = [(part, {k: list(v) if isinstance(v, list) else v for k, v in vars(part).items()}, _rng_state(part))
                 for part in agent.parts()]
        vars(agent)["_in_call"] = True
        try:
            return method(agent, *args, **kwargs)
        except BaseException:
            for part, attributes, rng in saved:
                vars(part).clear()
                vars(part).update(attributes)
                if rng is not None:
                    _set_rng_state(part.rng, rng)
            raise
        finally:
            vars(agent).pop("_in_call", None)

    return call


def _rng_state(part: Any) -> Any:
    rng = vars(part).get("rng")
    if rng is None:
        return None
    return rng.bit_generator.state if isinstance(rng, np.random.Generator) else rng.get_state()


def _set_rng_state(rng: Any, state: Any) -> None:
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)


def check_settings(agent: Any, rng_type: type, rng_name: str) -> None:
    """The settings ``aif.Agent`` and ``aif_deep.Agent`` share, checked by the same rules and messages: the
    settings objects, the EFE terms, the generator (a ``rng_type``, called ``rng_name``), the window of
    inference over time and the observation preprocessor."""
    for name, kind in (("selection", Selection), ("efe", EFEOptions), ("sequence", SequenceOptions)):
        if not isinstance(getattr(agent, name), kind):
            raise StrategyError(f"{name} must be an aif.{kind.__name__}, got {getattr(agent, name)!r}")
    agent.efe_terms = check_terms(agent.efe_terms)
    if agent.rng is not None and not isinstance(agent.rng, rng_type):
        raise StrategyError(f"rng must be a {rng_name}, got {type(agent.rng).__name__}")
    agent.inference_horizon = check_integer(agent.inference_horizon, "inference_horizon")
    agent.trial_length = check_integer(agent.trial_length, "trial_length", optional=True)
    if not isinstance(agent.inference, SequenceInference) and (agent.inference_horizon != 1 or agent.trial_length):
        raise ParameterError(f"inference_horizon = {agent.inference_horizon} and trial_length = {agent.trial_length} "
                             f"need an inference method over time (MarginalMessagePassing, VariationalMessagePassing), "
                             f"got {type(agent.inference).__name__}")
    if agent.selection.mode == "stochastic" and agent.rng is None:
        raise ParameterError(f"stochastic selection needs rng (a {rng_name})")
    if agent.preprocess is not None and not callable(agent.preprocess):
        raise StrategyError(f"preprocess must be a function of the observation, got {agent.preprocess!r}")


def action_factor_policies(agent: Any) -> np.ndarray | None:
    """The policies an Agent was given, or, with ``agent.actions`` (an ``aif.ActionFactors``) and none given, its
    policies (``None``: enumerate them). Shared by both Agents; checks that ``actions`` is the model's flattening
    and that actions are chosen from the full posterior (per-factor marginals could disagree about a shared action
    factor)."""
    actions = agent.actions
    if actions is None:
        return agent.policies
    if not isinstance(actions, ActionFactors):
        raise StrategyError(f"actions must be an aif.ActionFactors, got {actions!r}")
    if list(agent.model.num_controls) != actions.factor_controls:
        raise ModelError(f"the model's num_controls {list(agent.model.num_controls)} are not the flattened action "
                         f"axes {actions.factor_controls} of actions (build B with actions.flatten_B)")
    if getattr(agent.selection, "sampling", "full") != "full":
        raise ParameterError("with action factors, actions are chosen from the full posterior: "
                             "Selection(sampling='full') (per-factor marginals can disagree about a shared action)")
    if agent.policies is not None:
        return agent.policies
    return actions.policies(agent.policy_horizon, agent.control_factors)


PolicySearch = Callable[[Any, list, Any], tuple[Any, Any, dict]]
"""``search(agent, qs, rng) -> (q_pi, G, info)``: replaces an Agent's planning (``Agent.infer_policies``)."""


def search_parts(found: Any, where: str) -> tuple[Any, Any, dict]:
    """A policy search's return (``where`` names it in errors) split into ``(q_pi, G, info)``, after checking
    that it is such a tuple with ``info`` a dict keyed by names; shared by both Agents, which check the values."""
    if not (isinstance(found, tuple) and len(found) == 3):
        raise StrategyError(f"{where} returned {type(found).__name__}"
                            f"{f' of length {len(found)}' if isinstance(found, tuple) else ''}; "
                            "expected a tuple (q_pi, G or None, info)")
    q_pi, G, info = found
    if not (isinstance(info, dict) and all(isinstance(name, str) for name in info)):
        raise StrategyError(f"{where} returned info of type {type(info).__name__}; expected a dict of name -> array")
    return q_pi, G, info


def checked_search(found: Any, policies: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """What a policy search returned (``where`` names it in errors), checked and copied: ``(q_pi (P,), G (P,) or
    None, info)``, ``info`` a dict of name -> array."""
    q_pi, G, info = search_parts(found, where)
    try:
        q_pi = check_policy_weights(q_pi, policies).copy()
        check_probability(q_pi, "q_pi", PolicyError)
        if G is not None:
            G = as_numbers(G, "G", PolicyError).copy()
            if G.shape != q_pi.shape:
                raise PolicyError(f"G has shape {G.shape}, expected {q_pi.shape} (one value per policy)")
            check_finite(G, "G", nonneg=False, error=PolicyError)
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None
    info = {name: as_numbers(v, f"{where}: info[{name!r}]", ParameterError, None).copy() for name, v in info.items()}
    return q_pi, G, info


@dataclass
class Agent:
    """An active-inference agent for a ``GenerativeModel``.

    Args:
        model: the generative model.
        policy_horizon: length of the enumerated policies (ignored when ``policies`` is given).
        gamma: policy precision in q(pi) = softmax(-gamma G + ln E).
        alpha: action precision for stochastic selection.
        inference: state-inference method (``FixedPoint()`` by default).
        efe: ``EFEOptions`` (conventions for the EFE terms).
        efe_terms: the ``aif.efe`` term objects that make up G (see ``expected_free_energy``).
        selection: ``Selection`` (deterministic / stochastic, full / marginal).
        policies: explicit policies ``(P, H, num_factors)``; enumerated when absent.
        control_factors: factors whose actions the enumerated policies vary (all by default).
        rng: ``np.random.Generator`` for stochastic selection.
        learning: ``Learning`` settings; the model's Dirichlet counts are updated and its A/B/D are their
            means. ``None``: the model is fixed.
        planner: an ``aif.planning`` planner (``plan(model, qs) -> Plan``) used instead of enumerating
            ``policies``; q(pi) is then formed over the plan's policies or first actions.
        inference_horizon: with a method that infers over time, the number ``W`` of observations in the
            backward window (the present and ``W - 1`` before it); 1 for one-step methods.
        trial_length: with a method that infers over time, the number ``T`` of observations in a trial:
            at step ``t`` the policies are cut to the ``T - 1 - t`` steps left (none at the last step, as
            SPM). ``None``: an open-ended episode, every policy at its full horizon (pymdp.legacy).
        sequence: ``SequenceOptions`` (the prior of a moved window, the sign of F in q(pi), C's clock).
        preprocess: a function applied to every observation before inference (pymdp 1.0's ``preprocess_fn``):
            e.g. an environment's raw observation to one outcome index or probability vector per modality. What
            it returns is checked as an observation, and recorded for learning.
        actions: ``aif.ActionFactors`` of a model whose B it flattened (pymdp 1.0's ``B_action_dependencies``):
            the policies are its policies (when not given), actions are chosen from the full posterior, and
            ``multi_action`` holds each action as one action per action factor (``actions.decode``).

    Attributes (after a step): ``qs`` (posterior), ``prior`` (the prior used for the next observation),
    ``q_pi``, ``G``, ``terms`` (dict of EFE terms per policy), ``action``, ``multi_action`` (with ``actions``),
    ``t`` (steps taken). With a
    method that infers over time, also ``qs_seq`` (``qs_seq[f]`` of shape ``(P, W + H, S_f)``, each policy's
    beliefs over the window and its future; the present is step ``present``) and ``F`` (``(P,)``, the
    free energy of each policy's window); ``qs`` is then the present belief averaged over policies with
    q(pi) (the Bayesian model average; after ``infer_states`` alone, with q(pi) from ``F`` and ``E`` only),
    and ``prior`` is the prior over the next window's first state (one ``(S_f,)`` or ``(P, S_f)`` per factor).
    """

    model: GenerativeModel
    policy_horizon: int = 1
    gamma: float = 16.0
    alpha: float = 16.0
    inference: StateInference | SequenceInference = field(default_factory=FixedPoint)
    efe: EFEOptions = field(default_factory=EFEOptions)
    efe_terms: tuple = DEFAULT_TERMS
    selection: Selection = field(default_factory=Selection)
    policies: np.ndarray = None  # type: ignore[assignment]  # enumerated when None
    control_factors: list | None = None
    rng: np.random.Generator | None = None
    learning: Learning | None = None
    planner: Planner | None = None
    inference_horizon: int = 1
    trial_length: int | None = None
    sequence: SequenceOptions = field(default_factory=SequenceOptions)
    preprocess: Callable[[Any], Any] | None = None
    actions: ActionFactors | None = None


    def __post_init__(self):
        over_time = isinstance(self.inference, SequenceInference)
        require(self.inference, SequenceInference if over_time else StateInference, "inference", NUMPY)
        require(self.planner, Planner, "planner", NUMPY, optional=True)
        require(self.learning, Learner, "learning", NUMPY, optional=True)
        check_settings(self, np.random.Generator, "np.random.Generator")
        if not isinstance(self.model, GenerativeModel):
            raise StrategyError(f"model must be an aif.GenerativeModel, got {type(self.model).__name__}")
        self.gamma = check_positive(self.gamma, "gamma")
        self.alpha = check_positive(self.alpha, "alpha", zero=True)  # 0: uniform stochastic selection (pymdp)
        self.policies = action_factor_policies(self)  # type: ignore[assignment]
        if self.policies is None:
            H = self.policy_horizon
            cf = self.control_factors
            if self.planner is None and not over_time and isinstance(H, int) and 0 < H < 64 and (
                    cf is None or isinstance(cf, (list, tuple))):  # refused before the policies are built
                count = math.prod(u for f, u in enumerate(self.model.num_controls) if cf is None or f in cf)
                check_efe_size(self.model, count**H, H, self.efe_terms, self.efe)
            self.policies = enumerate_policies(self.model.num_controls, self.policy_horizon, self.control_factors)
        self.policies = check_policies(self.model, self.policies)
        self.policy_horizon = self.policies.shape[1]
        if self.model.E is not None and self.model.E.shape != (len(self.policies),):
            raise ParameterError(f"model.E has {self.model.E.shape[0]} entries but the agent has "
                                 f"{len(self.policies)} policies")
        # The counts the agent started with: forgetting decays learned counts back towards them.
        self.initial_counts = {name: getattr(self.model, name) for name in ("pA", "pB", "pD", "pE", "pC")}
        # How the cycle runs for these strategies, chosen once: over a window, or from one belief (learning or not).
        cycle = SequenceCycle(self) if over_time else _OneStep(self)
        self._cycle = cycle if self.learning is None else _Learning(self, cycle)
        self._fast = fast.for_agent(self)  # the compiled step, if its kernel is ready now (aif.fast)
        self.reset()

    @classmethod
    def pymdp_legacy(cls, model: GenerativeModel, policy_horizon: int = 1, sampling: str = "marginal",
                     **kwargs: Any) -> "Agent":
        """The settings of pymdp.legacy's ``Agent`` (its FPI, its EFE guards, marginal action selection)."""
        return cls(model, policy_horizon, **preset_settings("pymdp_legacy", sampling, **kwargs))

    @classmethod
    def pymdp(cls, model: GenerativeModel, policy_horizon: int = 1, sampling: str = "full", **kwargs: Any) -> "Agent":
        """The defaults of pymdp 1.0's ``Agent``: its FPI (16 iterations), raw C, gamma = alpha = 1,
        deterministic selection from the full posterior."""
        return cls(model, policy_horizon, **preset_settings("pymdp", sampling, **kwargs))

    @classmethod
    def pymdp_legacy_mmp(cls, model: GenerativeModel, policy_horizon: int = 1, inference_horizon: int = 2,
                         policy_sep_prior: bool = False, sampling: str = "marginal", **kwargs: Any) -> "Agent":
        """The settings of pymdp.legacy's ``Agent(inference_algo="MMP")``: 10 gradient iterations of MMP
        with tau 1/4 and legacy's F, its EFE guards, ``q(pi) = softmax(-gamma G + F + ln E)``, an open-ended
        episode, and the prior of a moved window per policy (``policy_sep_prior=True``) or averaged over
        policies (its default, ``use_BMA=True``).

        The message passing is legacy's ``run_mmp`` (SPM's scheme). Legacy's Agent itself calls
        ``run_mmp_factorized``, which halves the backward messages and multiplies the modalities' expected
        likelihoods (SPM takes the expectation of their product): its beliefs, G and at times its actions
        differ. Legacy's ``inference_horizon`` must be at least 2 (with 1 it passes every past action).
        """
        return cls(model, policy_horizon, inference_horizon=inference_horizon,
                   **preset_settings("pymdp_legacy_mmp", sampling, policy_sep_prior=policy_sep_prior, **kwargs))

    def parts(self) -> list:
        """The objects whose state a step changes (``atomic`` restores them when a call fails): the agent."""
        return [self]

    @atomic
    def reset(self, prior: list | None = None) -> None:
        """Start an episode: the prior is ``model.D`` (or ``prior``); forget the last step.

        With online learning of D, the finished episode's first posterior updates pD first.
        """
        self._cycle.reset()
        self.history: list = []  # (obs, qs, (qs_prev, action) or None) per step, for learning
        self.q_pi_history: list = []  # q(pi) of each step whose action was chosen, for habits learned offline
        self.prior = [d.copy() for d in self.model.D] if prior is None else check_beliefs(self.model, prior)
        self.qs: Any = None
        self.q_pi = self.G = self.terms = self.action = self.plan = self.multi_action = cast(Any, None)
        self.search_info: dict | None = None
        self.t = 0

    @atomic
    def infer_states(self, obs: Any, return_info: bool = False) -> Any:
        """Posterior over states from ``obs`` and the carried prior.

        With ``return_info``, returns ``(qs, info)``: ``info`` is an ``aif.FreeEnergy``, the VFE of the posterior
        and its terms under the model and prior it was inferred from (the method's log guard and soft-observation
        rule; pymdp 1.0's ``infer_states(..., return_info=True)``). One-step methods only: a method over time
        keeps each policy's free energy in ``agent.F``.
        """
        if return_info and isinstance(self.inference, SequenceInference):
            raise ParameterError(f"return_info is for one-step inference methods; with {type(self.inference).__name__} "
                                 "each policy's free energy of its window is agent.F")
        if self.preprocess is not None:
            obs = self.preprocess(obs)
        model, prior = self.model, self.prior  # (online learning replaces the model while inferring)
        self.qs = self._cycle.infer_states(obs)
        if not return_info:
            return self.qs
        method = cast(FixedPoint, self.inference)
        return self.qs, free_energy_terms(model, obs, self.qs, prior, guard=method.guard, soft_obs=method.soft_obs)

    @atomic
    def infer_policies(self, search: PolicySearch | None = None) -> tuple[np.ndarray, np.ndarray]:
        """EFE of every policy and the policy posterior, from the current posterior. Returns ``(q_pi, G)``.

        ``search``: a function ``search(agent, qs, rng) -> (q_pi, G, info)`` that replaces the agent's planning
        for this call (pymdp 1.0's ``policy_search``; ``aif.default_policy_search`` is the agent's own). It
        returns ``q_pi`` ``(P,)``, a distribution over the agent's policies (or over its planner's plan, when it
        called ``agent.infer_policies()``), ``G`` ``(P,)`` or ``None``, and ``info``, a dict of arrays kept as
        ``agent.search_info``; ``agent.terms`` is then empty (return terms in ``info``). With a method over time
        the present belief is averaged over the policies with the search's q(pi).
        """
        if self.qs is None:
            raise CallOrderError("infer_policies needs a posterior: call infer_states(obs) first")
        if search is None:
            self.q_pi, self.G, self.terms = self._cycle.infer_policies()
            self.search_info = None
            return self.q_pi, self.G
        if not callable(search):
            raise StrategyError(f"search must be a function (agent, qs, rng) -> (q_pi, G, info), got {search!r}")
        self.q_pi = self.G = self.plan = cast(Any, None)  # nothing of an earlier planning survives the search
        self.terms = {}
        found = search(self, self.qs, self.rng)
        policies = self.policies if self.plan is None else self.plan.policies
        self.q_pi, self.G, self.search_info = checked_search(found, policies, f"policy_search at step {self.t}")
        self.terms = {}
        self._cycle.adopt(self.q_pi)
        return self.q_pi, cast(np.ndarray, self.G)

    @atomic
    def sample_action(self) -> np.ndarray:
        """Choose an action vector ``(num_factors,)`` and carry the prior forward."""
        if self.q_pi is None:
            raise CallOrderError("sample_action needs q_pi: call infer_policies() first")
        policies = self._cycle.choices() if self.plan is None else self.plan.policies
        mode, sampling = self.selection.mode, self.selection.sampling
        probs = selection_probabilities(self.q_pi, policies, mode, self.alpha, sampling)
        return self._act(draw_action(probs, policies, mode, self.rng, sampling))

    @atomic
    def take_action(self, action: Any) -> np.ndarray:
        """Take ``action`` ``(num_factors,)`` instead of choosing one (a replay of observed choices, an
        experimenter's instruction, SPM's fixed ``MDP.u``) and carry the prior forward as ``sample_action`` does;
        ``q_pi`` is kept (e.g. to read the probability the agent gave that action)."""
        if self.q_pi is None:
            raise CallOrderError("take_action needs q_pi: call infer_policies() first")
        return self._act(check_action(self.model, action))

    def _act(self, action: np.ndarray) -> np.ndarray:
        self.action = action
        self.multi_action = None if self.actions is None else self.actions.decode(self.action)
        self.prior = self._cycle.next_prior()
        self.t += 1
        return self.action

    def step(self, obs: Any) -> np.ndarray:
        """``infer_states(obs)``, ``infer_policies()``, ``sample_action()``; returns the action.

        An agent built after ``aif.fast.compile()`` runs the whole step in one compiled call where ``aif.fast`` covers
        its settings (the same results to rounding); ``AIF_FAST=0`` in the environment keeps the NumPy path.
        """
        if self._fast is not None:
            action = self._fast.step(self, obs)
            if action is not None:
                return action
        return self._step(obs)

    @atomic
    def _step(self, obs: Any) -> np.ndarray:
        self.infer_states(obs)
        self.infer_policies()
        return self.sample_action()

    @atomic
    def learn(self) -> GenerativeModel:
        """Offline learning: update the counts from the episode recorded since ``reset`` and return the model.

        Applies, in order, each step's A and B updates (as online learning would, but with the beliefs the
        agent held during the episode), then D from the first posterior. The record is then cleared.
        """
        return self._cycle.learn()


class _OneStep:
    """The cycle from one current belief, on inputs the Agent checked when it was built (and on the beliefs it
    computed): the inference strategy on ``ln A[o]`` and ``ln prior``, ``G`` of the agent's policies
    (``prefix_tree_efe``) or the planner's ``Plan``, q(pi), and one step of ``B`` for the next prior."""

    trial = False  # one belief, not SPM's policies over a trial (SequenceCycle.trial)

    def __init__(self, agent: Agent) -> None:
        a = self.agent = agent
        check_counts(a.model, a.efe_terms)
        if a.planner is None:
            check_efe_size(a.model, a.policies.shape[0], a.policies.shape[1], a.efe_terms, a.efe)
        self.score = self.enumeration if a.planner is None else self.planned

    def reset(self) -> None:
        pass

    def infer_states(self, obs: Any) -> list:
        a, method = self.agent, cast(FixedPoint, self.agent.inference)
        log_lik = log_likelihood(a.model, obs, method.guard, method.soft_obs)
        return method(log_lik, [method.guard(p) for p in a.prior], a.model.A_dependencies)

    def enumeration(self) -> tuple[np.ndarray, dict, np.ndarray | None]:
        a = self.agent
        return (*prefix_tree_efe(a.model, a.qs, a.policies, a.efe_terms, a.efe), a.model.E)

    def planned(self) -> tuple[np.ndarray, dict, np.ndarray | None]:
        a = self.agent
        a.plan = plan = cast(Planner, a.planner).plan(a.model, a.qs, a.rng)
        return plan.G, plan.terms, a.model.E if a.model.E is not None and len(a.model.E) == len(plan.G) else None

    def infer_policies(self) -> tuple[np.ndarray, np.ndarray, dict]:
        G, terms, E = self.score()
        if self.agent.planner is not None:  # a planner's G is checked as a caller's would be
            return policy_posterior(G, E, self.agent.gamma), G, terms
        ln_E = 0.0 if E is None else self.agent.model.derived("ln E", lambda: check_log_habits(E, len(E)))
        return posterior_of(G, ln_E, self.agent.gamma), G, terms

    def adopt(self, q_pi: np.ndarray) -> None:
        """A search's q(pi) replaced the agent's: nothing to redo from one belief."""

    def choices(self) -> np.ndarray:
        """The policies' actions from now on (their first is what each would do now): the agent's policies."""
        return self.agent.policies

    def next_prior(self) -> list:
        a = self.agent
        return [q[0] for q in predict_policies(a.model, [q[None] for q in a.qs], a.action[None])]

    def final_beliefs(self, recorded: list) -> list:
        """The beliefs to learn from, one list per recorded step: the ones the agent held."""
        return recorded

    def learn(self) -> GenerativeModel:
        raise ParameterError("learn() needs Learning settings: Agent(..., learning=aif.Learning(...))")


class _Learning:
    """The cycle of an Agent with ``Learning``, around its inference cycle (``_OneStep`` or ``SequenceCycle``).

    Each step is recorded in ``agent.history`` as ``(obs, qs, previous)``, ``previous = (qs_prev, action)`` the
    belief and action before it (``None`` at the first step). Online learning updates A and B at once and keeps
    only the first and last steps; offline learning replays the episode at ``learn()`` from the beliefs the
    inference cycle holds at the end (``final_beliefs``: over a window, its policy-averaged beliefs about the
    steps it covers), smoothed first with ``Learning.smoothing``. D is learned from the episode's first belief.
    """

    def __init__(self, agent: Agent, inner: Any) -> None:
        self.agent, self.inner = agent, inner
        L = cast(Learning, agent.learning)
        for name in ("A", "B", "D", "E", "C"):
            if getattr(L, f"learn_{name}") and getattr(agent.model, f"p{name}") is None:
                raise ParameterError(f"Learning.learn_{name} needs Dirichlet counts: the model has no p{name}")
        L.check_model(agent.model.num_modalities, agent.model.num_factors)
        if L.learn_E and agent.planner is not None:
            raise ParameterError("Learning.learn_E learns habits over the agent's policies; a planner's plans change "
                                 "from step to step")
        if (L.learn_E or L.learn_C) and L.online and inner.trial:
            raise ParameterError("with policies over the trial, habits and preferences are learned at the trial's end "
                                 "(SPM's spm_MDP_VB_X): Learning(online=False, ...) and learn() after the last step")
        if L.smoothing and isinstance(inner, SequenceCycle):
            raise ParameterError(f"Learning.smoothing is for one-step inference methods: "
                                 f"{type(agent.inference).__name__} already smooths over its window")
        agent.history = []

    def reset(self) -> None:
        a = self.agent
        if a.history and cast(Learning, a.learning).online:
            a.model = cast(Learning, a.learning).update_initial(a.model, a.history[0][1], a.initial_counts)
        self.inner.reset()

    def infer_states(self, obs: Any) -> list:
        a, L = self.agent, cast(Learning, self.agent.learning)
        qs = self.inner.infer_states(obs)
        previous = (a.history[-1][1], a.action) if a.history else None
        a.history.append((obs, qs, previous))
        if L.online:
            a.model = L.update(a.model, obs, qs, previous, a.initial_counts, t=a.t)
            self.refresh_terms()
            del a.history[1:-1]  # online learning needs only the first posterior (D) and the last (B)
        return qs

    def refresh_terms(self) -> None:
        """After B was learned, the EFE terms made from B are made again from the learned model (``Term.for_model``:
        ``InductiveCost.from_goals``'s I, as pymdp 1.0's ``infer_parameters`` does)."""
        a = self.agent
        if cast(Learning, a.learning).learn_B:
            a.efe_terms = tuple(t.for_model(a.model) for t in a.efe_terms)

    def infer_policies(self) -> tuple[np.ndarray, np.ndarray, dict]:
        return self.inner.infer_policies()

    def adopt(self, q_pi: np.ndarray) -> None:
        self.inner.adopt(q_pi)

    def choices(self) -> np.ndarray:
        return self.inner.choices()

    def next_prior(self) -> list:
        a, L = self.agent, cast(Learning, self.agent.learning)
        if L.learn_E and not self.inner.trial:  # habits: the q(pi) the action was chosen from
            if L.online:
                a.model = L.update_habits(a.model, a.q_pi, a.initial_counts)
            else:
                a.q_pi_history.append(a.q_pi)
        return self.inner.next_prior()

    def learn(self) -> GenerativeModel:
        a, L = self.agent, cast(Learning, self.agent.learning)
        if self.inner.trial:  # policies over the trial: SPM's learning at its end
            a.model = self.inner.learn_trial([obs for obs, _, _ in a.history], a.initial_counts)
            a.history = []
            return a.model
        steps = self.inner.final_beliefs([qs for _, qs, _ in a.history])
        joints: list = [None] * len(steps)
        if L.smoothing and len(steps) > 1:
            actions = np.array([previous[1] for _, _, previous in a.history[1:]])
            smoothed = smooth(a.model, [np.stack(q) for q in zip(*steps, strict=True)], actions)
            steps = [[q[t] for q in smoothed.qs] for t in range(len(steps))]
            joints = [None] + [[j[t - 1] for j in smoothed.joints] for t in range(1, len(steps))]
        for t, ((obs, _, previous), qs, joint) in enumerate(zip(a.history, steps, joints, strict=True)):
            previous = None if previous is None else (steps[t - 1], previous[1])
            a.model = L.update(a.model, obs, qs, previous, a.initial_counts, joint, t=t)
        a.model = L.update_initial(a.model, steps[0] if steps else None, a.initial_counts)
        for q_pi in a.q_pi_history:
            a.model = L.update_habits(a.model, q_pi, a.initial_counts)
        self.refresh_terms()
        a.history, a.q_pi_history = [], []
        return a.model
