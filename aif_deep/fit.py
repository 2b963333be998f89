"""Fitting an agent's parameters to observed behaviour, by maximum likelihood or MAP.

Given, for each of ``N`` subjects, ``K`` trials of observations and the actions taken, the likelihood of the
actions under an active-inference agent is

    ln p(actions | theta) = sum_{trials, t} ln p(u_t | o_1..t, u_1..t-1, theta),

where each term runs the agent's cycle on the observed history: infer states from o_t and the prior carried
by the *observed* actions, score the policies, and read the probability of the observed action under
stochastic selection (``action_log_probability``). Every subject has its own parameters; all subjects and
trials run as one batch, and the summed loss keeps their gradients separate.

Parameters live unconstrained: ``gamma`` and ``alpha`` through their logarithm (so that Adam's steps are
relative changes, and a precision of 1 converges as fast as one of 16; a softplus makes the large ones crawl),
``A``, ``B``, ``D`` through logits (a softmax over the outcome / next-state / state axis), ``C`` as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
from .control import action_log_probability, policy_posterior, predict
from .evaluator import evaluate_policies
from .inference import infer_states
from .model import TabularModel

ARRAYS = ("A", "B", "C", "D")
SCALARS = ("gamma", "alpha")
LOGIT_FLOOR = 1e-12  # zero probabilities start at this value, so that their logits are finite


def _parse(name, model):
    """'gamma' -> ('gamma', None); 'C' -> ('C', [all]); 'C[1]' -> ('C', [1])."""
    match = re.fullmatch(r"(gamma|alpha|A|B|C|D)(?:\[(\d+)\])?", name)
    if not match:
        raise ParameterError(f"cannot fit {name!r}: choose from gamma, alpha, A, B, C, D, or one array as 'C[1]'")
    kind, index = match.group(1), match.group(2)
    if kind in SCALARS:
        if index is not None:
            raise ParameterError(f"{kind} is a scalar; write {kind!r}")
        return kind, None
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
    """

    gamma: torch.Tensor
    alpha: torch.Tensor
    custom: dict
    model: TabularModel
    log_likelihood: torch.Tensor
    log_prior: torch.Tensor
    history: np.ndarray


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


def action_log_likelihood(model: TabularModel, observations: torch.Tensor, actions: torch.Tensor,
                          policies: Any, gamma: torch.Tensor | float, alpha: torch.Tensor | float,
                          inference: Any, efe: EFEOptions, efe_terms: Sequence[Term], sampling: str) -> torch.Tensor:
    """ln p(actions) per trial and subject, ``(K, N)``, for data already shaped ``(K, N, T, .)``."""
    K, N, T, _ = actions.shape
    prior = [p.expand(K, N, p.shape[-1]) for p in model.prior()]
    E = model.E
    total: torch.Tensor | float = 0.0
    for t in range(T):
        u = actions[:, :, t]
        valid = (u >= 0).all(-1) & (observations[:, :, t] >= 0).all(-1)  # ended episodes are padded with -1
        u = u.clamp_min(0)
        qs = infer_states(model, observations[:, :, t].clamp_min(0), prior, inference)
        G, _ = evaluate_policies(model, qs, policies=policies, terms=tuple(efe_terms), options=efe,
                                 with_terms=False)
        q_pi = policy_posterior(G, E, gamma)
        total = total + torch.where(valid, action_log_probability(q_pi, policies, u, alpha, sampling), 0.0)
        prior = predict(model, qs, u)
    return torch.as_tensor(total)


def fit(model: TabularModel, observations: ArrayLike, actions: ArrayLike, params: Sequence[str] = ("gamma",), *,
        policy_horizon: int = 1, policies: ArrayLike | None = None, gamma: ArrayLike = 16.0, alpha: ArrayLike = 16.0,
        inference: Any = None, efe: EFEOptions | None = None, efe_terms: Sequence[Term] = DEFAULT_TERMS,
        sampling: str = "full", custom: dict | None = None, priors: dict | None = None, steps: int = 300,
        lr: float = 0.05, progress: bool = True) -> FitResult:
    """Estimate chosen parameters of ``N`` agents from their observations and actions.

    Args:
        model: ``TabularModel`` whose arrays are the fixed values and the starting point of the fitted ones
            (unbatched, or batch ``(N,)``).
        observations: int ``(N, K, T', M)`` (``T' >= T``; the observation before each action), or
            ``(N, T', M)`` for one trial each. ``-1`` marks the steps after an episode ended.
        actions: int ``(N, K, T, F)`` (or ``(N, T, F)``): the actions taken.
        params: what to fit: ``"gamma"``, ``"alpha"``, ``"A"``, ``"B"``, ``"C"``, ``"D"``, or one array such as
            ``"C[1]"``; the rest stays fixed.
        policy_horizon, policies: the agents' policies (enumerated for ``policy_horizon`` when absent).
        gamma, alpha: fixed values, or starting values when fitted (numbers or ``(N,)``).
        inference, efe, efe_terms: the agents' state inference and EFE settings.
        sampling: how the agents chose actions (stochastic ``"full"`` or ``"marginal"`` selection).
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
    if not isinstance(model, TabularModel):
        raise StrategyError(f"model must be an aif_deep.TabularModel, got {type(model).__name__}")
    if not isinstance(params, (list, tuple)) or not all(isinstance(name, str) for name in params):
        raise ParameterError(f"params must be a list of names such as ('gamma', 'C[1]'), got {params!r:.200}")
    check_positive(lr, "lr")
    check_choice(sampling, "sampling", ("full", "marginal"))
    steps = check_index(steps, "steps")
    device, dtype = model.device, model.dtype
    obs, act = _prepare_data(observations, actions, device, len(model.num_obs), len(model.num_controls))
    N = obs.shape[1]
    if tuple(model.batch_shape) not in ((), (N,)):
        raise ParameterError(f"the model's batch shape {model.batch_shape} does not match {N} subjects")
    for name, x in (("gamma", gamma), ("alpha", alpha)):  # a positive number, or (N,)
        checks.precision(checks.as_tensor(x, name, ParameterError, device) if isinstance(x, (list, tuple, np.ndarray))
                         else x, name, obs, (N,))
    policies = enumerate_policies(model.num_controls, policy_horizon) if policies is None else policies
    policies = checks.policies(model, policies)
    inference = aif.FixedPoint() if inference is None else inference
    efe = EFEOptions() if efe is None else efe
    priors = dict(priors or {})
    custom = dict(custom or {})
    unknown = [k for k in priors if k not in params and k not in custom]
    if unknown:
        raise ParameterError(f"priors name {unknown[0]!r}, which is not among the fitted params {tuple(params)}")

    def per_subject(x: torch.Tensor) -> torch.Tensor:
        return x.expand(N, *x.shape[len(model.batch_shape):]).clone()

    base: dict[str, Any] = {"gamma": torch.as_tensor(gamma, dtype=dtype, device=device).expand(N).clone(),
            "alpha": torch.as_tensor(alpha, dtype=dtype, device=device).expand(N).clone()}
    for kind in ARRAYS:
        base[kind] = [per_subject(x) for x in getattr(model, kind)]

    # Unconstrained leaves, one per fitted name.
    leaves: dict[str, Any] = {}
    spec = {}
    for name in params:
        kind, index = _parse(name, model)
        spec[name] = (kind, index)
        if kind in SCALARS:
            leaves[name] = torch.log(base[kind]).requires_grad_()
        elif kind == "C":
            leaves[name] = [base["C"][i].clone().requires_grad_() for i in index]
        else:
            leaves[name] = [torch.log(base[kind][i].clamp_min(LOGIT_FLOOR)).requires_grad_() for i in index]
    for name, (initial, _) in custom.items():
        leaves[name] = torch.as_tensor(initial, dtype=dtype, device=device).clone().requires_grad_()
        if leaves[name].shape[:1] != (N,):
            raise ParameterError(f"custom parameter {name!r} must start with the subject axis ({N}), got shape "
                                 f"{tuple(leaves[name].shape)}")

    def build() -> tuple:
        values = {"gamma": base["gamma"], "alpha": base["alpha"], **{k: list(base[k]) for k in ARRAYS}}
        constrained: dict[str, Any] = {}
        for name, (kind, index) in spec.items():
            if kind in SCALARS:
                values[kind] = constrained[name] = torch.exp(leaves[name])
                continue
            arrays = []
            for i, x in zip(index, leaves[name], strict=True):
                # Softmax over the outcome (A), next-state (B) or state (D) axis, right after the subject axis.
                values[kind][i] = x if kind == "C" else torch.softmax(x, 1)
                arrays.append(values[kind][i])
            constrained[name] = arrays[0] if len(arrays) == 1 else arrays
        fixed = {k: None if getattr(model, k) is None else [per_subject(x) for x in getattr(model, k)]
                 for k in ("pA", "pB", "pD")}  # Dirichlet counts, per subject like the arrays
        E = None if model.E is None else per_subject(model.E)
        fitted = model.replace(A=values["A"], B=values["B"], C=values["C"], D=values["D"], E=E, **fixed,
                               batch_shape=(N,))
        for name, (_, apply) in custom.items():
            fitted = apply(leaves[name], fitted)
            constrained[name] = leaves[name]
        return fitted, values["gamma"], values["alpha"], constrained

    def log_prior(constrained: dict) -> torch.Tensor:
        total = torch.zeros(N, dtype=dtype, device=device)
        for name, prior in priors.items():
            values = constrained[name] if isinstance(constrained[name], list) else [constrained[name]]
            for v in values:
                lp = prior.log_prob(v) if isinstance(prior, torch.distributions.Distribution) else prior(v)
                total = total + lp.reshape(N, -1).sum(-1)
        return total

    def objective() -> tuple:
        fitted, g, a, constrained = build()
        ll = action_log_likelihood(fitted, obs, act, policies, g, a, inference, efe, efe_terms, sampling).sum(0)
        lp = log_prior(constrained)
        return -(ll + lp).sum(), ll, lp, fitted, g, a

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
        _, ll, lp, fitted, g, a = objective()
    return FitResult(gamma=g.detach(), alpha=a.detach(), custom={k: leaves[k].detach().clone() for k in custom},
                     model=fitted.replace(A=[x.detach() for x in fitted.A], B=[x.detach() for x in fitted.B],
                                          C=[x.detach() for x in fitted.C], D=[x.detach() for x in fitted.D]),
                     log_likelihood=ll.detach(), log_prior=lp.detach(), history=np.array(history))
