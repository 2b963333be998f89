"""Policies in PyTorch: expected free energy, the policy posterior, action selection and prediction.

Same names, arguments and meaning as ``aif.control``; every function takes a leading batch of beliefs (and
of agents, through the model's ``batch_shape``) and is differentiable in the model's arrays, ``gamma`` and
``alpha``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aif.checks import check_choice
from aif.efe import DEFAULT_TERMS, EFEOptions, Term
from aif.errors import ModelError, ParameterError, PolicyError
from aif.maths import EPS

from . import checks
from .evaluator import evaluate_policies
from .model import BeliefModel, TabularModel, sum_against, sum_leading


def expected_free_energy(model: BeliefModel, qs: list, policies: object, terms: tuple[Term, ...] = DEFAULT_TERMS,
                         options: EFEOptions | None = None,
                         memory_budget: int | None = None) -> tuple[torch.Tensor, dict]:
    """Expected free energy of every policy, with its terms (``aif.expected_free_energy`` batched).

    Args:
        model: a ``TabularModel`` (or any ``BeliefModel``).
        qs: beliefs, one tensor ``(*batch, S_f)`` per factor.
        policies: int array ``(num_policies, horizon, num_factors)``.
        terms, options: as in ``aif.expected_free_energy``.
        memory_budget: see ``evaluate_policies``.

    Returns:
        ``(G, terms)``: ``G`` of shape ``(*batch, num_policies)``, lower is better; ``terms`` a dict of
        tensors of that shape (``risk``, ``ambiguity``, ``utility``, ``state_info_gain`` and the extra terms).
    """
    return evaluate_policies(model, qs, policies=policies, terms=terms, options=options, memory_budget=memory_budget)


def _as_param(x, name, like):
    """A precision as a tensor that broadcasts against ``(*batch, P)``: ``(*batch, 1)`` or scalar; gamma positive,
    alpha non-negative (0: uniform stochastic selection)."""
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    sign = "non-negative" if name == "alpha" else "positive"
    if not torch.isfinite(x).all() or ((x < 0) if name == "alpha" else (x <= 0)).any():
        raise ParameterError(f"{name} must be {sign} and finite, got {x.detach().cpu().numpy()}")
    return x[..., None] if x.ndim else x


def policy_posterior(G: torch.Tensor, E: object = None, gamma: object = 16.0) -> torch.Tensor:
    """q(pi) = softmax(-gamma G + ln E) over the last axis.

    Args:
        G: ``(*batch, num_policies)``.
        E: prior over policies ``(*batch, num_policies)`` or ``(num_policies,)``; uniform when absent.
        gamma: policy precision: a number or a tensor ``(*batch,)``.
    """
    if not torch.isfinite(G).all():
        raise ParameterError("G has a non-finite entry")
    ln_E = None if E is None else torch.log(checks.policy_prior(E, G.shape[-1]).to(G))
    if ln_E is not None and ln_E.shape != G.shape:
        try:
            ln_E = ln_E.expand_as(G)
        except RuntimeError:
            raise PolicyError(f"E has shape {tuple(ln_E.shape)}, which does not fit G's {tuple(G.shape)}") from None
    return posterior_of(G, ln_E, _as_param(gamma, "gamma", G))


def posterior_of(G: torch.Tensor, ln_E: torch.Tensor | None, gamma: float | torch.Tensor) -> torch.Tensor:
    """``policy_posterior`` on checked inputs: finite ``G`` ``(*batch, P)``, ``ln_E`` of G's shape or ``None``
    (uniform), ``gamma`` a positive number or tensor that broadcasts against G (``(*batch, 1)`` or a scalar)."""
    # As aif.policy_posterior: G shifted by its lowest allowed value first, so gamma x G never overflows.
    if ln_E is None:  # every policy allowed, ln E = 0
        return torch.softmax(-gamma * (G - G.amin(-1, keepdim=True)), -1)
    allowed = torch.isfinite(ln_E)
    low = torch.where(allowed, G, torch.inf).amin(-1, keepdim=True)
    logits = -gamma * (G - low) + ln_E
    return torch.softmax(torch.where(allowed, logits, -torch.inf), -1)


def _first_actions(policies, device):
    return torch.as_tensor(np.asarray(policies)[:, 0, :], device=device, dtype=torch.long)  # (P, F)


def action_marginals(q_pi: torch.Tensor, policies: Any, num_controls: Any) -> list:
    """p(u_f) = sum of q(pi) over the policies whose first action for factor f is u: ``(*batch, U_f)``."""
    return _marginals(q_pi, _first_actions(policies, q_pi.device), num_controls)


def _marginals(q_pi, first, num_controls):
    return [q_pi @ torch.nn.functional.one_hot(first[:, f], int(u)).to(q_pi.dtype)
            for f, u in enumerate(num_controls)]


def _sharpen_log(p, alpha):
    # pymdp's stochastic selection: softmax(alpha * ln p), with ln guarded at float64's machine epsilon; alpha
    # as _as_param returns it.
    return torch.log_softmax(alpha * torch.log(p.clamp_min(EPS)), -1)


def action_probabilities(q_pi: torch.Tensor, policies: Any, mode: str = "deterministic", alpha: Any = 16.0,
                         sampling: str = "full", num_controls: Any = None) -> Any:
    """The distribution ``select_action`` draws from (as ``aif.action_probabilities``).

    Returns:
        ``sampling="full"``: ``(*batch, num_policies)``; ``"marginal"``: one ``(*batch, U_f)`` per factor.
    """
    check_choice(mode, "mode", ("deterministic", "stochastic"))
    check_choice(sampling, "sampling", ("full", "marginal"))
    policies = checks.policies(None, policies)
    if not isinstance(q_pi, torch.Tensor):
        raise PolicyError(f"q_pi must be a tensor (*batch, num_policies), got {type(q_pi).__name__}")
    checks.policy_prior(q_pi, len(policies), "q_pi")  # aif's rule: a distribution over the policies
    if num_controls is None:
        num_controls = policies[:, 0, :].max(axis=0) + 1
    alpha = _as_param(alpha, "alpha", q_pi) if mode == "stochastic" else alpha  # read by stochastic selection only
    return selection_probabilities(q_pi, _first_actions(policies, q_pi.device), mode, alpha, sampling,
                                   num_controls)


def selection_probabilities(q_pi: torch.Tensor, first_actions: torch.Tensor, mode: str, alpha: Any, sampling: str,
                            num_controls: Any) -> Any:
    """``action_probabilities`` on checked inputs: ``first_actions`` int ``(P, F)`` (each policy's first action),
    ``alpha`` (read in ``"stochastic"`` mode) a tensor that broadcasts against ``q_pi`` (``(*batch, 1)`` or a
    scalar)."""
    if sampling == "full":
        return q_pi if mode == "deterministic" else _sharpen_log(q_pi, alpha).exp()
    marginals = _marginals(q_pi, first_actions, num_controls)
    return marginals if mode == "deterministic" else [_sharpen_log(p, alpha).exp() for p in marginals]


def action_log_probability(q_pi: torch.Tensor, policies: Any, action: Any, alpha: Any = 16.0, sampling: str = "full",
                           num_controls: Any = None) -> torch.Tensor:
    """ln p(action) under stochastic selection: ``(*batch,)``; differentiable in ``q_pi`` and ``alpha``.

    Args:
        q_pi: ``(*batch, num_policies)``.
        policies: ``(num_policies, horizon, num_factors)``.
        action: int ``(*batch, num_factors)``, the action taken.
        sampling: ``"full"`` (a policy is drawn from softmax(alpha ln q(pi)); the action is its first step,
            so its probability sums over the policies that start with it) or ``"marginal"``.
    """
    check_choice(sampling, "sampling", ("full", "marginal"))
    policies = checks.policies(None, policies)
    action = torch.as_tensor(action, device=q_pi.device).long()
    first = _first_actions(policies, q_pi.device)  # (P, F)
    alpha = _as_param(alpha, "alpha", q_pi)
    if sampling == "full":
        log_p = _sharpen_log(q_pi, alpha)
        match = (first == action[..., None, :]).all(-1)  # (*batch, P)
        return torch.logsumexp(log_p.masked_fill(~match, -torch.inf), -1)
    if num_controls is None:
        num_controls = policies[:, 0, :].max(axis=0) + 1
    marginals = action_marginals(q_pi, policies, num_controls)
    return sum(_sharpen_log(p, alpha).gather(-1, action[..., f:f + 1])[..., 0] for f, p in enumerate(marginals))


def select_action(q_pi: torch.Tensor, policies: Any, mode: str = "deterministic", rng: torch.Generator | None = None,
                  alpha: Any = 16.0, sampling: str = "full") -> torch.Tensor:
    """Choose the next action vector for each belief in the batch.

    Args:
        q_pi: ``(*batch, num_policies)``.
        policies: ``(num_policies, horizon, num_factors)``.
        mode: ``"deterministic"`` (argmax, the first of exact ties) or ``"stochastic"`` (sample
            ``softmax(alpha ln p)``; needs ``rng``).
        rng: ``torch.Generator`` on ``q_pi``'s device, required for stochastic selection.
        alpha: action precision (a number or ``(*batch,)``).
        sampling: ``"full"`` or ``"marginal"``, as in ``aif.select_action``.

    Returns:
        int tensor ``(*batch, num_factors)``.
    """
    if check_choice(mode, "mode", ("deterministic", "stochastic")) == "stochastic" and rng is None:
        raise ParameterError("stochastic action selection needs rng (a torch.Generator)")
    policies = checks.policies(None, policies)
    probs = action_probabilities(q_pi, policies, mode, alpha, sampling)
    return draw_action(probs, _first_actions(policies, q_pi.device), mode, rng, sampling)


def draw_action(probs: Any, first_actions: torch.Tensor, mode: str, rng: torch.Generator | None,
                sampling: str) -> torch.Tensor:
    """The action ``(*batch, num_factors)`` drawn (``"stochastic"``) or taken (``"deterministic"``) from
    ``action_probabilities``' output ``probs``; ``first_actions`` int ``(P, F)``: each policy's first action."""
    if sampling == "full":
        return first_actions[_choose(probs, mode, rng)]
    return torch.stack([_choose(p, mode, rng) for p in probs], -1)


def _choose(p, mode, rng):
    if mode == "deterministic":
        return p.argmax(-1)  # the first maximal index, as np.argmax
    flat = p.reshape(-1, p.shape[-1])
    return torch.multinomial(flat.detach(), 1, generator=rng)[:, 0].reshape(p.shape[:-1])


def predict(model: BeliefModel, qs: Any, action: Any) -> list:
    """The prior for the next step, q(s_f') = E_q[B_f(u_f)]: ``qs[f]`` (*batch, S_f), ``action`` (*batch, F)."""
    ref = model.prior()[0]
    action = checks.action(model, action).to(ref.device)
    return predict_policies(model, [torch.as_tensor(q, device=ref.device, dtype=ref.dtype) for q in qs], action)


def predict_policies(model: BeliefModel, qs: list, action: torch.Tensor) -> list:
    """``predict`` on checked inputs: beliefs on the model's device and dtype, ``action`` a long tensor
    ``(*batch, F)`` of controls in range."""
    if isinstance(model, TabularModel) and not model.batch_shape and action.ndim == 2 \
            and all(q.shape[:-1] == action.shape[:-1] for q in qs):
        return _predict_rows(model, qs, action)
    out = []
    for f, q_all in enumerate(model.predict_all(qs)):  # (U_f, *lead, S_f)
        lead = np.broadcast_shapes(q_all.shape[1:-1], action.shape[:-1])
        q_all = q_all.expand(q_all.shape[0], *lead, q_all.shape[-1])
        u = action[..., f].expand(lead)
        out.append(q_all.gather(0, u[None, ..., None].expand(1, *q_all.shape[1:]))[0])
    return out


def _predict_rows(model: TabularModel, qs: list, action: torch.Tensor) -> list:
    """``predict_policies`` for one model and a batch of ``N`` beliefs ``(N, S_f)`` with their actions ``(N, F)``: the
    chosen column of each B_f only, batch last (``model.sum_leading``'s layout): ``B_f[..., u]``
    ``(S_f, *S_deps, N)`` summed against the parents' beliefs, rather than every control's prediction and a
    gather."""
    last = [q.T for q in qs]  # (S_g, N) views
    # B_f[..., u] of each belief's control u, (S_f, *S_deps, N); a factor with one control broadcasts its only
    # column (B_f[..., :1]) instead (the same products, one operation fewer).
    return [sum_leading(B_f[..., :1] if B_f.shape[-1] == 1 else B_f.index_select(-1, u), [None, *deps], last,
                        keep=None).T.contiguous()
            for B_f, deps, u in zip(model.B, model.B_dependencies, action.unbind(-1), strict=True)]


def expected_states(model: BeliefModel, qs: list, policies: Any) -> list:
    """Predicted states q(s_t | pi) after each step t = 1..H of every policy (as ``aif.expected_states``).

    Args:
        qs: beliefs, one tensor ``(*batch, S_f)`` per factor.
        policies: int array ``(P, H, num_factors)``.

    Returns:
        one tensor ``(*batch, P, H, S_f)`` per factor.
    """
    qs = checks.beliefs(model, qs, "qs")
    batch = checks.belief_batch(model, qs)
    return [q.movedim((1, 0), (-3, -2)) for q in _expected_states(model, qs, checks.policies(model, policies), batch)]


def _expected_states(model, qs, policies, batch):
    """``(H, P, *batch, S_f)`` per factor: the node axes in front, where ``predict_all`` broadcasts them."""
    P, H, _ = policies.shape
    nodes = [q.expand(*batch, q.shape[-1])[None] for q in qs]  # (1, *batch, S_f): the root
    actions = torch.as_tensor(policies, device=nodes[0].device)  # (P, H, F)
    rows = torch.zeros(P, dtype=torch.long, device=nodes[0].device)  # each policy's node at the previous step
    steps = []
    for t in range(H):
        nodes = [x[actions[:, t, f], rows] for f, x in enumerate(model.predict_all(nodes))]  # (P, *batch, S_f)
        rows = torch.arange(P, device=rows.device)
        steps.append(nodes)
    return [torch.stack(q_f) for q_f in zip(*steps, strict=True)]


def expected_outcomes(model: TabularModel, qs: list, policies: Any) -> list:
    """Predicted outcomes q(o_t | pi) = E_q(s_t | pi)[A] after each step of every policy (as
    ``aif.expected_outcomes``), for a model with tables ``A``.

    Args:
        qs: beliefs, one tensor ``(*batch, S_f)`` per factor.
        policies: int array ``(P, H, num_factors)``.

    Returns:
        one tensor ``(*batch, P, H, O_m)`` per modality.
    """
    if not isinstance(model, TabularModel):
        raise ModelError(f"expected_outcomes needs a TabularModel (tables A), got {type(model).__name__}")
    qs = checks.beliefs(model, qs, "qs")
    batch = checks.belief_batch(model, qs)
    qs_pi = _expected_states(model, qs, checks.policies(model, policies), batch)  # (H, P, *batch, S_f)
    return [sum_against(A_m, [qs_pi[f] for f in deps], keep=1).movedim((1, 0), (-3, -2))
            for A_m, deps in zip(model.A, model.A_dependencies, strict=True)]
