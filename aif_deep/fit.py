"""Fitting an agent's parameters to observed behaviour, by maximum likelihood or MAP.

Given, for each of ``N`` subjects, ``K`` trials of observations and the actions taken, the likelihood of the
actions under an active-inference agent is

    ln p(actions | theta) = sum_{trials, t} ln p(u_t | o_1..t, u_1..t-1, theta),

where each term runs the agent's cycle on the observed history: infer states from o_t and the prior carried
by the *observed* actions, score the policies, and read the probability of the observed action under
stochastic selection (``action_log_probability``). Every subject has its own parameters; all subjects (and,
for agents that do not learn, all trials) run as one batch, and the summed loss keeps their gradients separate.

Agents that learn during the task (``learning=aif.Learning(...)``) update their Dirichlet counts after every
observation inside the same differentiable step, as ``aif.Agent`` with that ``Learning`` does online: the
posterior is inferred with the current A, then pA (and pB, from the previous posterior and action) take the
update, the policies are scored with the updated model, and the next prior comes from the updated B. With
``Learning(online=False)`` (an agent whose ``learn()`` runs after each trial, as SPM's agents learn at a trial's end)
the counts are updated at the trial's end from the beliefs held, smoothed first with ``smoothing=True`` (B then from
the pairwise beliefs; D from the smoothed first belief, which carries what the whole trial told about the initial
state). Their trials run in order (what was learned in one is carried into the next), so learning rate and
forgetting are fitted too.

``ChoiceLikelihood`` is that likelihood as a function of the parameter values (``values: name -> (N, ...)``),
shared by ``fit`` (point estimates), ``aif_deep.bayes`` (posteriors, evidence) and ``aif_deep.recovery``.

Parameters live unconstrained in ``fit``: ``gamma``, ``alpha`` and ``lr`` through their logarithm (so that Adam's
steps are relative changes, and a precision of 1 converges as fast as one of 16; a softplus makes the large ones
crawl), ``forgetting`` through a logistic, ``A``, ``B``, ``D`` through logits (a softmax over the outcome /
next-state / state axis), ``C`` as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

import aif
from aif.checks import check_choice, check_index, check_positive
from aif.control import enumerate_policies
from aif.efe import DEFAULT_TERMS, EFEOptions, Term
from aif.errors import ObservationError, ParameterError, PolicyError, StrategyError

from . import checks
from .control import action_log_probability, policy_posterior, predict_policies
from .evaluator import evaluate_policies
from .inference import as_obs, infer_states_checked
from .learning import outer
from .model import TabularModel

Tensor = torch.Tensor
ARRAYS = ("A", "B", "C", "D")
SCALARS = ("gamma", "alpha", "lr", "forgetting")
LOGIT_FLOOR = 1e-12  # zero probabilities start at this value, so that their logits are finite


def parse_name(name: str, model: TabularModel) -> tuple[str, list[int]]:
    """'gamma' -> ('gamma', []); 'C' -> ('C', [0, 1, ...]); 'C[1]' -> ('C', [1]); ``ParameterError`` otherwise."""
    match = re.fullmatch(r"(gamma|alpha|lr|forgetting|A|B|C|D)(?:\[(\d+)\])?", name) if isinstance(name, str) else None
    if not match:
        raise ParameterError(f"cannot fit {name!r}: choose from gamma, alpha, lr, forgetting, A, B, C, D, or one "
                             "array as 'C[1]'")
    kind, index = match.group(1), match.group(2)
    if kind in SCALARS:
        if index is not None:
            raise ParameterError(f"{kind} is a scalar; write {kind!r}")
        return kind, []
    size = len(getattr(model, kind))
    if index is not None and int(index) >= size:
        raise ParameterError(f"{name}: {kind} has {size} arrays (0 to {size - 1})")
    return kind, [int(index)] if index is not None else list(range(size))


@dataclass(frozen=True, eq=False)
class FitResult:
    """The fitted parameters.

    Attributes:
        gamma, alpha: ``(N,)`` tensors (the fitted values, or the fixed ones).
        custom: name -> fitted value of each custom parameter.
        model: the ``TabularModel`` with the fitted arrays (batch ``(N,)``).
        log_likelihood: ``(N,)``: ln p(actions) per subject at the fitted values.
        log_prior: ``(N,)``: the summed log prior of the fitted values (0 for maximum likelihood).
        history: ``(steps,)``: the total loss (negative log likelihood minus log prior) after each step.
        learning: ``"lr"`` and ``"forgetting"`` -> ``(N,)`` (fitted or fixed) for a learning agent, else empty.
    """

    gamma: torch.Tensor
    alpha: torch.Tensor
    custom: dict
    model: TabularModel
    log_likelihood: torch.Tensor
    log_prior: torch.Tensor
    history: np.ndarray
    learning: dict = field(default_factory=dict)


def _indices(x, label, error, device):
    """``x`` as a long tensor of indices; non-numbers, fractions and bools are ``error``."""
    x = checks.as_tensor(x, label, error, device)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise error(f"{label} must hold integer indices, got dtype {x.dtype}")
    return x.long()


def _prepare_data(observations, actions, device, M, F):
    obs = _indices(observations, "observations", ObservationError, device)
    act = _indices(actions, "actions", PolicyError, device)
    if obs.ndim == act.ndim == 3:  # (N, T, M): one trial each
        obs, act = obs[:, None], act[:, None]
    if obs.ndim != 4 or act.ndim != 4 or obs.shape[:2] != act.shape[:2] or (obs.shape[-1], act.shape[-1]) != (M, F):
        raise ParameterError(f"observations and actions must be (N, K, T, {M}) and (N, K, T, {F}) (or without K), "
                             f"got {tuple(obs.shape)} and {tuple(act.shape)}")
    T = act.shape[2]
    if obs.shape[2] < T:
        raise ParameterError(f"there are {obs.shape[2]} observations per trial for {T} actions; each action needs "
                             "the observation before it")
    # (K, N, T, .): trials lead, subjects next to the model's batch axis.
    return obs[:, :, :T].transpose(0, 1), act.transpose(0, 1)


def _per_subject(x: Tensor, N: int, nb: int) -> Tensor:
    """``x`` (batch ``()`` or ``(N,)`` in its first ``nb`` axes) as ``(N, ...)``."""
    return x.expand(N, *x.shape[nb:]).clone()


def _rate(x: Any, name: str, N: int, like: Tensor, fraction: bool = False) -> Tensor:
    """A learning rate (>= 0) or forgetting factor (in (0, 1]) per subject: ``(N,)`` on ``like``'s device."""
    checks.as_tensor(x, name, ParameterError)  # numbers, else ParameterError
    # A Python number goes straight to the model's dtype (through float32, 0.8 would become 0.800000011920929).
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    ok = torch.isfinite(x).all() and (x >= 0).all() and (not fraction or ((x > 0) & (x <= 1)).all())
    if not ok or x.ndim > 1 or (x.ndim == 1 and len(x) != N):
        raise ParameterError(f"{name} must be a number or ({N},) numbers " + ("in (0, 1]" if fraction else ">= 0") +
                             f", got {x}")
    return x.expand(N).clone()


def _one_hot(index: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """``(N,)`` indices -> ``(N, n)`` one-hot vectors of ``dtype``."""
    return torch.nn.functional.one_hot(index, n).to(dtype)


def _modalities(obs: Tensor) -> list:
    """Outcome indices ``(*lead, M)`` (checked) -> one ``(*lead,)`` tensor per modality; ``-1`` (padding) as 0."""
    return list(obs.clamp_min(0).unbind(-1))


def _normalise(p: Tensor) -> Tensor:
    """Dirichlet counts ``(N, O, ...)`` -> their mean, columns along axis 1 (``aif.model``'s rule for A = None)."""
    return p / p.sum(1, keepdim=True)


def _dirichlet_step(p: Tensor, vectors: list | Tensor, lr: Tensor, forgetting: Tensor, prior: Tensor | None,
                    mask_zeros: bool, valid: Tensor) -> Tensor:
    """One online Dirichlet update with per-subject rates, ``(N, ...)``; steps that are not ``valid`` keep ``p``.

        p' = forgetting * p + (1 - forgetting) * prior + lr * v0 ⊗ v1 ⊗ ...      (prior = 0 when None)

    ``vectors``: the vectors ``(N, n_i)`` of the outer product, or the evidence itself, shaped as ``p``.

    ``aif.learning.update_A`` / ``update_B``'s formula (and ``aif_deep.learning``'s), written here for rates that
    are tensors ``(N,)`` inside an optimiser, which those functions (checked numbers) do not take.
    """
    shape = (-1,) + (1,) * (p.ndim - 1)
    f, rate = forgetting.reshape(shape), lr.reshape(shape)
    evidence = vectors if isinstance(vectors, Tensor) else outer(vectors)
    new = f * p + (0.0 if prior is None else (1.0 - f) * prior) + rate * evidence
    if mask_zeros:
        new = torch.where(p > 0, new, torch.zeros_like(new))
    return torch.where(valid.reshape(shape), new, p)


def _one_index(index: list[int]) -> int:
    """The one array index of a parsed ``'X[i]'`` name."""
    assert len(index) == 1
    return index[0]


@dataclass(frozen=True, eq=False)
class ChoiceLikelihood:
    """ln p(actions | values) of ``N`` subjects' recorded choices: a function of the fitted parameter values.

    Build it with ``choice_likelihood`` (which checks the data and settings). Call it with ``values``: name ->
    constrained value per subject, names as ``fit``'s (``"gamma"``, ``"alpha"``: ``(N,)``, positive; ``"lr"``:
    ``(N,)``, >= 0; ``"forgetting"``: ``(N,)`` in (0, 1]; ``"C[m]"``: ``(N, O_m)``; ``"D[f]"``: ``(N, S_f)`` on the
    simplex; ``"A[m]"``, ``"B[f]"``: ``(N, *A[m].shape)`` with normalised columns; a custom name: its ``apply``'s
    input) -> ``(N,)`` log likelihoods. Names not given keep the fixed values.

    Attributes:
        model: ``TabularModel``, batch ``(N,)``: the fixed arrays (and the counts a learning agent starts from).
        observations: int ``(K, N, T, M)``; actions: int ``(K, N, T, F)`` (``-1`` after an episode ended).
        policies: ``(P, H, F)``.
        fixed: ``"gamma"``, ``"alpha"``, ``"lr"``, ``"forgetting"`` -> ``(N,)``: the values not fitted.
        inference, efe, efe_terms, sampling: the agents' settings (as ``aif_deep.Agent``'s).
        learning: ``aif.Learning`` (online, or offline at each trial's end) for agents that learn during the task,
            else ``None``.
        custom: name -> ``apply(value, model) -> model`` for parameters of your own.
    """

    model: TabularModel
    observations: Tensor
    actions: Tensor
    policies: np.ndarray
    fixed: dict
    inference: Any
    efe: EFEOptions
    efe_terms: tuple
    sampling: str
    learning: aif.Learning | None = None
    custom: dict = field(default_factory=dict)

    @property
    def num_subjects(self) -> int:
        return int(self.actions.shape[1])

    def subjects(self, index: Sequence[int]) -> ChoiceLikelihood:
        """The likelihood of the subjects ``index`` alone (their data, arrays and fixed values; the same settings),
        so that groups of subjects can be fitted apart (on Ray workers, say)."""
        idx = torch.as_tensor(list(index), dtype=torch.long)
        N = self.num_subjects
        if idx.ndim != 1 or len(idx) == 0 or ((idx < 0) | (idx >= N)).any():
            raise ParameterError(f"index must list subjects in [0, {N}), got {list(index)!r:.200}")
        arrays = {k: None if getattr(self.model, k) is None else [x[idx] for x in getattr(self.model, k)]
                  for k in ("A", "B", "C", "D", "pA", "pB", "pD")}
        E = None if self.model.E is None else self.model.E[idx]
        model = self.model.replace(**arrays, E=E, batch_shape=(len(idx),))
        return replace(self, model=model, observations=self.observations[:, idx], actions=self.actions[:, idx],
                       fixed={k: v[idx] for k, v in self.fixed.items()})

    def check_names(self, names: Sequence[str]) -> None:
        """Every name is one this likelihood takes (``ParameterError`` naming the first that is not)."""
        for name in names:
            if name in self.custom:
                continue
            kind, index = parse_name(name, self.model)
            if kind in ARRAYS and (len(index) != 1 or f"{kind}[{index[0]}]" != name):
                raise ParameterError(f"name one array per value, as '{kind}[0]', got {name!r}")
            if kind in ("lr", "forgetting") and self.learning is None:
                raise ParameterError(f"{name} is a learning parameter: give learning=aif.Learning(...)")

    def build(self, values: dict) -> tuple[TabularModel, dict]:
        """The model (batch ``(N,)``) and the scalars (``gamma``, ``alpha``, ``lr``, ``forgetting``: ``(N,)``)
        with ``values`` built in: arrays first, then the custom parameters in the order given."""
        scalars = {k: values.get(k, v) for k, v in self.fixed.items()}
        arrays = {k: list(getattr(self.model, k)) for k in ARRAYS}
        for name, value in values.items():
            if name in self.custom or name in SCALARS:
                continue
            kind, index = parse_name(name, self.model)
            arrays[kind][_one_index(index)] = value
        model = self.model.replace(**arrays)
        for name, apply in self.custom.items():
            if name in values:
                model = apply(values[name], model)
        return model, scalars

    def __call__(self, values: dict) -> Tensor:
        """``(N,)``: ln p(actions) per subject under ``values`` (summed over trials)."""
        model, s = self.build(values)
        if self.learning is None:
            return self._fixed(model, s["gamma"], s["alpha"]).sum(0)
        return self._learning(model, s)

    def _choice(self, model: TabularModel, qs: list, u: Tensor, gamma: Tensor, alpha: Tensor) -> Tensor:
        """ln p(u) of the agents' stochastic selection from the posterior ``qs`` (``(*batch,)``)."""
        G, _ = evaluate_policies(model, qs, policies=self.policies, terms=self.efe_terms, options=self.efe,
                                 with_terms=False)
        return action_log_probability(policy_posterior(G, model.E, gamma), self.policies, u, alpha, self.sampling)

    def _fixed(self, model: TabularModel, gamma: Tensor, alpha: Tensor) -> Tensor:
        """``(K, N)``: every trial at once, the model's batch ``(N,)`` broadcast over the trials."""
        obs, act = self.observations, self.actions
        K, N, T, _ = act.shape
        prior = [p.expand(K, N, p.shape[-1]) for p in model.prior()]
        total = torch.zeros(K, N, dtype=model.dtype, device=model.device)
        for t in range(T):
            u = act[:, :, t]
            valid = (u >= 0).all(-1) & (obs[:, :, t] >= 0).all(-1)  # ended episodes are padded with -1
            u = u.clamp_min(0)
            qs = infer_states_checked(model, _modalities(obs[:, :, t]), prior, self.inference)
            total = total + torch.where(valid, self._choice(model, qs, u, gamma, alpha), 0.0)
            if t + 1 < T:
                prior = predict_policies(model, qs, u)
        return total

    def _learning(self, model: TabularModel, s: dict) -> Tensor:
        """``(N,)``: the trials in order, the counts updated as ``aif.Agent`` with this ``Learning`` updates them:
        online, after every observation (A and B at each step, D from the trial's first posterior at the next
        reset); offline (``online=False``, the agent's ``learn()`` after each trial), at the trial's end from the
        beliefs it held, smoothed first with ``smoothing`` (B then from the pairwise beliefs), D from the first."""
        L = self.learning
        assert L is not None
        obs, act = self.observations, self.actions
        K, N, T, _ = act.shape
        update = _Updates(model, L, s["lr"], s["forgetting"])
        total = torch.zeros(N, dtype=model.dtype, device=model.device)
        for k in range(K):
            prior = model.prior()
            steps: list[tuple] = []  # (o, qs, u, valid) per step
            for t in range(T):
                o, u = obs[k, :, t], act[k, :, t]
                valid = (u >= 0).all(-1) & (o >= 0).all(-1)
                o, u = o.clamp_min(0), u.clamp_min(0)
                qs = infer_states_checked(model, _modalities(o), prior, self.inference)
                if L.online:
                    previous = (steps[-1][1], steps[-1][2]) if steps else None
                    model = update.step(model, o, qs, previous, valid)
                total = total + torch.where(valid, self._choice(model, qs, u, s["gamma"], s["alpha"]), 0.0)
                prior = predict_policies(model, qs, u)
                steps.append((o, qs, u, valid))
            beliefs = [q for _, q, _, _ in steps]
            if not L.online:
                joints: list = [None] * len(steps)
                if L.smoothing and len(steps) > 1:
                    beliefs, joints = _smooth(model, beliefs, [u for _, _, u, _ in steps],
                                              [v for _, _, _, v in steps])
                for t, (o, _, _, valid) in enumerate(steps):
                    previous = (beliefs[t - 1], steps[t - 1][2]) if t else None
                    model = update.step(model, o, beliefs[t], previous, valid, joints[t])
            if beliefs:
                model = update.initial(model, beliefs[0])
        return total


class _Updates:
    """The Dirichlet updates of a learning agent with per-subject rates (``_dirichlet_step``): ``Learning``'s
    modalities and factors, its rates, and the counts forgetting decays towards (the model's own at the start with
    ``forget_to_prior``)."""

    def __init__(self, model: TabularModel, L: aif.Learning, lr: Tensor, forgetting: Tensor) -> None:
        self.L, self.forgetting = L, forgetting
        self.rates = {k: lr if getattr(L, f"lr_{k}") is None else torch.full_like(lr, getattr(L, f"lr_{k}"))
                      for k in "ABD"}
        self.chosen = {k: range(len(getattr(model, k))) if L.chosen(k) is None else cast(Sequence[int], L.chosen(k))
                       for k in "ABD"}
        self.towards: dict[str, Any] = {k: getattr(model, f"p{k}") if L.forget_to_prior else None for k in "ABD"}

    def _prior(self, kind: str, i: int) -> Tensor | None:
        return None if self.towards[kind] is None else self.towards[kind][i]

    def step(self, model: TabularModel, o: Tensor, qs: list, previous: tuple | None, valid: Tensor,
             joint: list | None = None) -> TabularModel:
        """The update after one observation ``o`` ``(N, M)`` with the belief ``qs``: pA from ``o`` and ``qs``; pB
        from ``previous = (qs_prev, u_prev)``, or from the pairwise beliefs ``joint[f]`` ``(N, S_f, S_f)`` (next
        state first) that smoothing gives."""
        L = self.L
        changes: dict[str, Any] = {}
        if L.learn_A:
            pA = list(cast(list, model.pA))
            for m in self.chosen["A"]:
                one_hot = _one_hot(o[:, m], model.num_obs[m], model.dtype)
                pA[m] = _dirichlet_step(pA[m], [one_hot, *[qs[g] for g in model.A_dependencies[m]]],
                                        self.rates["A"], self.forgetting, self._prior("A", m), L.mask_zeros, valid)
            changes.update(pA=pA, A=[_normalise(p) for p in pA])
        if L.learn_B and previous is not None:
            qs_prev, u_prev = previous
            pB = list(cast(list, model.pB))
            for f in self.chosen["B"]:
                one_hot = _one_hot(u_prev[:, f], model.num_controls[f], model.dtype)
                vectors = (joint[f][..., None] * one_hot[:, None, None, :] if joint is not None else
                           [qs[f], *[qs_prev[g] for g in model.B_dependencies[f]], one_hot])
                pB[f] = _dirichlet_step(pB[f], vectors, self.rates["B"], self.forgetting, self._prior("B", f),
                                        L.mask_zeros, valid)
            changes.update(pB=pB, B=[_normalise(p) for p in pB])
        return model.replace(**changes) if changes else model

    def initial(self, model: TabularModel, first: list) -> TabularModel:
        """The D update from a trial's first belief (every subject's first step is a real one)."""
        if not self.L.learn_D:
            return model
        pD = list(cast(list, model.pD))
        always = torch.ones(first[0].shape[0], dtype=torch.bool, device=model.device)
        for f in self.chosen["D"]:
            pD[f] = _dirichlet_step(pD[f], [first[f]], self.rates["D"], self.forgetting, self._prior("D", f),
                                    self.L.mask_zeros, always)
        return model.replace(pD=pD, D=[_normalise(p) for p in pD])


def _smooth(model: TabularModel, filtered: list, actions: list, valid: list) -> tuple[list, list]:
    """``aif.filtering.smooth`` for a batch of subjects: the beliefs ``filtered[t][f]`` ``(N, S_f)`` of one trial
    smoothed backwards through each factor's own transitions under the actions taken, and the pairwise beliefs
    ``joint[t][f]`` ``(N, S_f, S_f)`` of (s_t, s_t-1) (``None`` at t = 0). A subject's steps after its episode
    ended (not ``valid``) leave its last real belief as it was filtered.

        q(s_t | s_t+1) = B(s_t+1 | s_t, u_t) q_t(s_t) / sum_s B(s_t+1 | s, u_t) q_t(s)
        q(s_t+1, s_t) = q(s_t | s_t+1) q(s_t+1),   q(s_t) = sum_s_t+1 q(s_t+1, s_t)
    """
    T, F = len(filtered), len(filtered[0])
    for f, deps in enumerate(model.B_dependencies):
        if list(deps) != [f]:
            raise StrategyError(f"Learning.smoothing passes backwards through each factor's own transitions, but "
                                f"B_dependencies[{f}] = {list(deps)}")
    smoothed = [list(q) for q in filtered]
    joints: list = [None] * T
    for t in range(T - 2, -1, -1):
        joints[t + 1] = [None] * F
        live = valid[t + 1][:, None]
        for f in range(F):
            B = model.B[f][torch.arange(actions[t].shape[0]), ..., actions[t][:, f]]  # (N, S', S)
            pair = B * filtered[t][f][:, None, :]  # (N, S', S): B(s' | s) q_t(s)
            predicted = pair.sum(-1, keepdim=True)
            conditional = torch.where(predicted > 0, pair / predicted.clamp_min(1e-300), torch.zeros_like(pair))
            joint = conditional * smoothed[t + 1][f][..., None]
            joints[t + 1][f] = joint
            smoothed[t][f] = torch.where(live, joint.sum(1), filtered[t][f])
    return smoothed, joints


def choice_likelihood(model: TabularModel, observations: ArrayLike, actions: ArrayLike, *, policy_horizon: int = 1,
                      policies: ArrayLike | None = None, gamma: ArrayLike = 16.0, alpha: ArrayLike = 16.0,
                      inference: Any = None, efe: EFEOptions | None = None,
                      efe_terms: Sequence[Term] = DEFAULT_TERMS, sampling: str = "full",
                      learning: aif.Learning | None = None, lr: ArrayLike | None = None,
                      forgetting: ArrayLike | None = None,
                      custom: dict[str, Callable[[Tensor, TabularModel], TabularModel]] | None = None
                      ) -> ChoiceLikelihood:
    """``ChoiceLikelihood`` of ``N`` subjects' observations and actions, after checking them.

    Args:
        model: ``TabularModel`` of the fixed values (unbatched, or batch ``(N,)``); a learning agent's model needs
            the counts it learns (``pA``, ``pB``, ``pD``) and starts from ``model.A``/``B``/``D`` as ``aif.Agent``.
        observations: int ``(N, K, T', M)`` (``T' >= T``; the observation before each action), or
            ``(N, T', M)`` for one trial each. ``-1`` marks the steps after an episode ended.
        actions: int ``(N, K, T, F)`` (or ``(N, T, F)``): the actions taken.
        policy_horizon, policies: the agents' policies (enumerated for ``policy_horizon`` when absent).
        gamma, alpha: the fixed values (numbers or ``(N,)``) where not fitted.
        inference, efe, efe_terms: the agents' state inference and EFE settings.
        sampling: how the agents chose actions (stochastic ``"full"`` or ``"marginal"`` selection).
        learning: ``aif.Learning`` for agents that learn during the task (``None``: they do not), online or at
            each trial's end (``online=False``, with ``smoothing`` or not: the module docstring). Its ``lr`` and
            ``forgetting`` are the fixed values unless ``lr`` / ``forgetting`` are given.
        lr, forgetting: fixed learning rate and forgetting (numbers or ``(N,)``), overriding ``learning``'s.
        custom: name -> ``apply(value, model) -> model`` (batch ``(N,)``) for parameters of your own, e.g. a
            preference strength ``r`` with ``C[1] = r * [0, 1, -1]``.
    """
    if not isinstance(model, TabularModel):
        raise StrategyError(f"model must be an aif_deep.TabularModel, got {type(model).__name__}")
    check_choice(sampling, "sampling", ("full", "marginal"))
    device = model.device
    obs, act = _prepare_data(observations, actions, device, len(model.num_obs), len(model.num_controls))
    N = obs.shape[1]
    nb = len(model.batch_shape)
    # Checked once here, so that the likelihood's steps run the unchecked internals (the padding -1 aside).
    as_obs(model, obs.clamp_min(0), device)
    checks.action(model, act.clamp_min(0))
    if tuple(model.batch_shape) not in ((), (N,)):
        raise ParameterError(f"the model's batch shape {model.batch_shape} does not match {N} subjects")
    fixed = {}
    for name, x in (("gamma", gamma), ("alpha", alpha)):  # a positive number, or (N,)
        x = checks.as_tensor(x, name, ParameterError, device) if isinstance(x, (list, tuple, np.ndarray)) else x
        checks.precision(x, name, obs, (N,))
        fixed[name] = torch.as_tensor(x, dtype=model.dtype, device=device).expand(N).clone()
    if learning is not None:
        if not isinstance(learning, aif.Learning):
            raise StrategyError(f"learning must be an aif.Learning, got {learning!r}")
        for kind in "ABD":
            if getattr(learning, f"learn_{kind}") and getattr(model, f"p{kind}") is None:
                raise ParameterError(f"Learning.learn_{kind} needs Dirichlet counts: the model has no p{kind}")
        learning.check_model(model.num_modalities, model.num_factors)
    settings = aif.Learning() if learning is None else learning  # lr = forgetting = 1 when nothing is learned
    fixed["lr"] = _rate(settings.lr if lr is None else lr, "lr", N, model.A[0])
    fixed["forgetting"] = _rate(settings.forgetting if forgetting is None else forgetting, "forgetting", N,
                                model.A[0], fraction=True)
    policies = enumerate_policies(model.num_controls, policy_horizon) if policies is None else policies
    policies = checks.policies(model, policies)
    per = {k: None if getattr(model, k) is None else [_per_subject(x, N, nb) for x in getattr(model, k)]
           for k in ("A", "B", "C", "D", "pA", "pB", "pD")}
    E = None if model.E is None else _per_subject(model.E, N, nb)
    batched = model.replace(**per, E=E, batch_shape=(N,))
    custom = dict(custom or {})
    for name, apply in custom.items():
        if not callable(apply):
            raise ParameterError(f"custom parameter {name!r} needs a function apply(value, model) -> model")
    return ChoiceLikelihood(batched, obs, act, policies, fixed, aif.FixedPoint() if inference is None else inference,
                            EFEOptions() if efe is None else efe, tuple(efe_terms), sampling, learning, custom)


def fit(model: TabularModel, observations: ArrayLike, actions: ArrayLike, params: Sequence[str] = ("gamma",), *,
        policy_horizon: int = 1, policies: ArrayLike | None = None, gamma: ArrayLike = 16.0, alpha: ArrayLike = 16.0,
        inference: Any = None, efe: EFEOptions | None = None, efe_terms: Sequence[Term] = DEFAULT_TERMS,
        sampling: str = "full", learning: aif.Learning | None = None, custom: dict | None = None,
        priors: dict | None = None, steps: int = 300, lr: float = 0.05, progress: bool = True) -> FitResult:
    """Estimate chosen parameters of ``N`` agents from their observations and actions.

    Args:
        model: ``TabularModel`` whose arrays are the fixed values and the starting point of the fitted ones
            (unbatched, or batch ``(N,)``).
        observations: int ``(N, K, T', M)`` (``T' >= T``; the observation before each action), or
            ``(N, T', M)`` for one trial each. ``-1`` marks the steps after an episode ended.
        actions: int ``(N, K, T, F)`` (or ``(N, T, F)``): the actions taken.
        params: what to fit: ``"gamma"``, ``"alpha"``, ``"A"``, ``"B"``, ``"C"``, ``"D"``, or one array such as
            ``"C[1]"``; with ``learning``, also ``"lr"`` and ``"forgetting"``; the rest stays fixed.
        policy_horizon, policies: the agents' policies (enumerated for ``policy_horizon`` when absent).
        gamma, alpha: fixed values, or starting values when fitted (numbers or ``(N,)``).
        inference, efe, efe_terms: the agents' state inference and EFE settings.
        sampling: how the agents chose actions (stochastic ``"full"`` or ``"marginal"`` selection).
        learning: ``aif.Learning`` (online or offline) for agents that learn during the task; its ``lr`` and
            ``forgetting`` are the fixed values, or the starting values of fitted ones (see ``choice_likelihood``).
        custom: parameters of your own: name -> ``(initial, apply)`` with ``initial`` a tensor ``(N, ...)`` and
            ``apply(value, model) -> model`` returning the (batch ``(N,)``) model with the value built in, e.g.
            a preference strength ``r`` with ``C[1] = r * [0, 1, -1]``. Applied after ``params``; fitted as is
            (unconstrained).
        priors: MAP priors: name in ``params`` or ``custom`` -> a ``torch.distributions.Distribution`` (or a
            callable giving the log density) over the constrained value (``gamma``: ``(N,)``; ``C[1]``:
            ``(N, O_1)``); the log densities are summed over all but the subject axis. Without priors: maximum
            likelihood.
        steps, lr: Adam steps and learning rate.
        progress: show a tqdm progress bar.

    Returns:
        ``FitResult``.
    """
    if not isinstance(params, (list, tuple)) or not all(isinstance(name, str) for name in params):
        raise ParameterError(f"params must be a list of names such as ('gamma', 'C[1]'), got {params!r:.200}")
    check_positive(lr, "lr")
    steps = check_index(steps, "steps")
    custom = dict(custom or {})
    like = choice_likelihood(model, observations, actions, policy_horizon=policy_horizon, policies=policies,
                             gamma=gamma, alpha=alpha, inference=inference, efe=efe, efe_terms=efe_terms,
                             sampling=sampling, learning=learning, custom={k: v[1] for k, v in custom.items()})
    N, base = like.num_subjects, like.model
    device, dtype = base.device, base.dtype
    priors = dict(priors or {})
    unknown = [k for k in priors if k not in params and k not in custom]
    if unknown:
        raise ParameterError(f"priors name {unknown[0]!r}, which is not among the fitted params {tuple(params)}")

    # Unconstrained leaves, one per fitted name (arrays: one per index).
    leaves: dict[str, Any] = {}
    spec = {}
    for name in params:
        kind, index = parse_name(name, base)
        spec[name] = (kind, index)
        if kind in ("lr", "forgetting") and learning is None:
            raise ParameterError(f"{name} is a learning parameter: give learning=aif.Learning(...)")
        if kind == "forgetting":
            leaves[name] = torch.logit(like.fixed[kind].clamp(1e-6, 1 - 1e-6)).requires_grad_()
        elif kind in SCALARS:
            leaves[name] = torch.log(like.fixed[kind].clamp_min(1e-6)).requires_grad_()
        elif kind == "C":
            leaves[name] = [base.C[i].clone().requires_grad_() for i in index]
        else:
            leaves[name] = [torch.log(getattr(base, kind)[i].clamp_min(LOGIT_FLOOR)).requires_grad_() for i in index]
    for name, (initial, _) in custom.items():
        leaves[name] = torch.as_tensor(initial, dtype=dtype, device=device).clone().requires_grad_()
        if leaves[name].shape[:1] != (N,):
            raise ParameterError(f"custom parameter {name!r} must start with the subject axis ({N}), got shape "
                                 f"{tuple(leaves[name].shape)}")

    def constrained() -> tuple[dict, dict]:
        """(values for the likelihood, one name each; the fitted values by the caller's names)."""
        values: dict[str, Any] = {}
        named: dict[str, Any] = {}
        for name, (kind, index) in spec.items():
            if kind == "forgetting":
                values[kind] = named[name] = torch.sigmoid(leaves[name])
                continue
            if kind in SCALARS:
                values[kind] = named[name] = torch.exp(leaves[name])
                continue
            arrays = []
            for i, x in zip(index, leaves[name], strict=True):
                # Softmax over the outcome (A), next-state (B) or state (D) axis, right after the subject axis.
                values[f"{kind}[{i}]"] = x if kind == "C" else torch.softmax(x, 1)
                arrays.append(values[f"{kind}[{i}]"])
            named[name] = arrays[0] if len(arrays) == 1 else arrays
        for name in custom:
            values[name] = named[name] = leaves[name]
        return values, named

    def log_prior(named: dict) -> torch.Tensor:
        total = torch.zeros(N, dtype=dtype, device=device)
        for name, prior in priors.items():
            values = named[name] if isinstance(named[name], list) else [named[name]]
            for v in values:
                lp = prior.log_prob(v) if isinstance(prior, torch.distributions.Distribution) else prior(v)
                total = total + lp.reshape(N, -1).sum(-1)
        return total

    def objective() -> tuple:
        values, named = constrained()
        ll = like(values)
        lp = log_prior(named)
        return -(ll + lp).sum(), ll, lp, values

    flat = [x for v in leaves.values() for x in (v if isinstance(v, list) else [v])]
    if not flat:
        raise ParameterError("params must name at least one parameter to fit")
    optimiser = torch.optim.Adam(flat, lr=lr)
    history = []
    bar = tqdm(range(steps), disable=not progress, desc="fit", unit="step", leave=False)
    for _ in bar:
        optimiser.zero_grad()
        loss = objective()[0]
        loss.backward()
        optimiser.step()
        history.append(float(loss.detach()))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    with torch.no_grad():
        _, ll, lp, values = objective()
        fitted, scalars = like.build(values)
    detach = {k: None if getattr(fitted, k) is None else [x.detach() for x in getattr(fitted, k)]
              for k in ("A", "B", "C", "D")}
    rates = {k: scalars[k].detach() for k in ("lr", "forgetting")} if learning is not None else {}
    return FitResult(gamma=scalars["gamma"].detach(), alpha=scalars["alpha"].detach(),
                     custom={k: leaves[k].detach().clone() for k in custom}, model=fitted.replace(**detach),
                     log_likelihood=ll.detach(), log_prior=lp.detach(), history=np.array(history), learning=rates)
