"""The terms of ``aif.efe`` in PyTorch, each written once for one predicted belief.

Every function takes beliefs ``qs[f]`` of shape ``(*lead, S_f)`` (``lead`` broadcasting with the model's batch
shape, see ``model.py``) and returns ``(*lead,)``. The engines (``evaluate_policies``'s prefix tree and
``PolicyEvaluator``'s lanes) only schedule these definitions: they call them per node, or fold the linear ones
into matrices by evaluating them on the one-hot basis of joint states. ``guarded_log``/``xlogx`` are the only
readers (with ``log_softmax``) of ``LogGuard.kind`` in ``aif_deep``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from aif.efe import (
    EFEOptions,
    GoalDivergence,
    InductiveCost,
    InfoGain,
    Novelty,
    Term,
    TerminalValue,
    check_counts,
    check_goal,
    check_terms,
)
from aif.errors import ParameterError, StrategyError
from aif.maths import EXACT, LogGuard

from .learning import novelty_weights

Tensor = torch.Tensor
BASE = ("utility", "ambiguity", "entropy")  # what the outcome terms give; every term is linear in these + extras
TERMINAL = (TerminalValue, GoalDivergence)  # terms of the beliefs at the horizon only, added at the leaves


def guarded_log(x: Tensor, guard: LogGuard) -> Tensor:
    """``aif.maths.LogGuard`` in torch: ln x (``exact``), ln max(x, eps) (``clip``) or ln(x + eps) (``add``)."""
    if guard.kind == "clip":
        return torch.log(x.clamp_min(guard.eps))
    if guard.kind == "add":
        return torch.log(x + guard.eps)
    return torch.log(x)


def log_softmax(C: Tensor, guard: LogGuard) -> Tensor:
    """ln softmax(C) along the last axis under ``guard`` (``exact``: the log-softmax itself)."""
    return torch.log_softmax(C, -1) if guard.kind == "exact" else guarded_log(torch.softmax(C, -1), guard)


def xlogx(p: Tensor, guard: LogGuard, inplace: bool = False) -> Tensor:
    """``p ln p`` elementwise under ``guard``; ``exact``: 0 ln 0 = 0 with a zero gradient there (xlogy's
    derivative at 0 is ln 0 = -inf, a NaN in the gradient of models whose outcomes have exact zeros).
    ``inplace`` (no gradient): written into ``p``, for ``exact`` in one kernel."""
    if inplace:
        return p.xlogy_(p) if guard.kind == "exact" else p.copy_(p * guarded_log(p, guard))
    if guard.kind == "exact":
        return p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))
    return p * guarded_log(p, guard)


def joint(qs: Sequence[Tensor]) -> Tensor:
    """The outer product of beliefs ``(*lead, S_i)``: ``(*lead, prod S_i)``, first factor slowest."""
    out = qs[0]
    for q in qs[1:]:
        out = (out.unsqueeze(-1) * q.unsqueeze(-2)).flatten(-2)
    return out


def flat(T: Tensor, k: int) -> Tensor:
    """``T`` with its last ``k`` (state) axes flattened into one."""
    return T.reshape(*T.shape[: T.ndim - k], -1)


def log_preferences(C_m: Tensor, t: int, batch_ndim: int, options: EFEOptions) -> Tensor:
    """ln p(o_m) at step ``t`` from ``C_m`` ``(*batch, O)`` or ``(*batch, O, T)``: normalised (a log-softmax under
    ``options.guards.preference``) when ``options.normalize_C``."""
    if C_m.ndim - batch_ndim == 2:
        C_m = C_m[..., min(t, C_m.shape[-1] - 1)]
    return log_softmax(C_m, options.guards.preference) if options.normalize_C else C_m


def modality_terms(A_m: Tensor, qs_deps: Sequence[Tensor], ln_C: Tensor | None, options: EFEOptions) -> dict:
    """One modality: ``qo`` (q(o_m), ``(*lead, O)``), ``utility`` E_q(o)[ln p(o)], ``ambiguity``
    E_q(s) H[p(o | s)] and ``entropy`` H[q(o)], the last two over the joint states above ``state_floor``."""
    g, k = options.guards, len(qs_deps)
    q = joint(qs_deps)
    A = flat(A_m, k)  # (*batch, O, J)
    qo = torch.einsum("...oj,...j->...o", A, q)
    out = {"qo": qo, "utility": (qo * ln_C).sum(-1) if ln_C is not None else torch.zeros_like(qo[..., 0])}
    if g.state_floor > 0:
        q = torch.where(q > g.state_floor, q, torch.zeros_like(q))
        qo = torch.einsum("...oj,...j->...o", A, q)
    out["ambiguity"] = (q * flat(-xlogx(A_m, g.likelihood).sum(-1 - k), k)).sum(-1)  # H[p(o|s)] per joint state
    out["entropy"] = -xlogx(qo, g.outcome).sum(-1)
    return out


def outcome_terms(model: Any, qs: Sequence[Tensor], t: int, options: EFEOptions, joint_info_gain: bool) -> dict:
    """Utility, ambiguity and outcome entropy of beliefs ``qs`` at step ``t``, summed over modalities, for a
    model with tables ``A``/``C``; ``joint_info_gain``: the entropy of the joint outcome of all modalities."""
    nb = len(model.batch_shape)
    out: dict = dict.fromkeys(BASE, 0.0)
    for m, (A_m, deps) in enumerate(zip(model.A, model.A_dependencies, strict=True)):
        ln_C = log_preferences(model.C[m], t, nb, options)
        terms = modality_terms(A_m, [qs[f] for f in deps], ln_C, options)
        for k in BASE:
            out[k] = out[k] + terms[k]
    if joint_info_gain and len(model.A) > 1:
        out["entropy"] = joint_outcome_entropy(model, qs, options)
        if options.guards.joint_likelihood is not None:
            out["ambiguity"] = joint_ambiguity(model, qs, options.guards.joint_likelihood, options.guards.state_floor)
    return out


def joint_ambiguity(model: Any, qs: Sequence[Tensor], guard: LogGuard, state_floor: float) -> Tensor:
    """E_q(s) H[p(o_1, ..., o_M | s)] with ``guard`` on the joint likelihood (``Guards.joint_likelihood``, as
    ``spm_MDP_G``), over the joint states of all factors above ``state_floor``, ``(*lead,)``."""
    nf, nb = len(qs), len(model.batch_shape)
    letters = "abcdefghijklm"
    fl, ol = letters[:nf], letters[nf: nf + len(model.A)].upper()
    subs = ["..." + ol[m] + "".join(fl[f] for f in deps) for m, deps in enumerate(model.A_dependencies)]
    ones = [torch.ones(q.shape[-1], dtype=q.dtype, device=q.device) for q in qs]  # factors no modality reads
    p_o = torch.einsum(",".join([*subs, *fl]) + "->..." + ol + fl, *model.A, *ones)  # (*batch, O_1.., S_1..)
    H = flat(-xlogx(p_o, guard), nf).sum(tuple(range(nb, nb + len(model.A))))  # (*batch, prod S)
    q = joint(qs)
    if state_floor > 0:
        q = torch.where(q > state_floor, q, torch.zeros_like(q))
    return (q * H).sum(-1)


def joint_outcome_entropy(model: Any, qs: Sequence[Tensor], options: EFEOptions) -> Tensor:
    """H[q(o_1, ..., o_M)] of the joint outcome of all modalities (SPM's exact term), ``(*lead,)``."""
    g, nf = options.guards, len(qs)
    q = joint(qs)
    if g.state_floor > 0:
        q = torch.where(q > g.state_floor, q, torch.zeros_like(q))
    q = q.reshape(*q.shape[:-1], *[x.shape[-1] for x in qs])
    letters = "abcdefghijklm"
    fl, ol = letters[:nf], letters[nf: nf + len(model.A)].upper()
    subs = ["..." + fl] + ["..." + ol[m] + "".join(fl[f] for f in deps) for m, deps in enumerate(model.A_dependencies)]
    qo = torch.einsum(",".join(subs) + "->..." + ol, q, *model.A)
    return -xlogx(flat(qo, len(model.A)), g.outcome).sum(-1)


def novelty_A(model: Any, W_A: Sequence[Tensor], qs: Sequence[Tensor]) -> Tensor:
    """-sum_m q(o_m) . (W_A[m] q(s)): the novelty of A at one predicted belief (q(o) from the model's A)."""
    gain: Any = 0.0
    for A_m, W, deps in zip(model.A, W_A, model.A_dependencies, strict=True):
        q, k = joint([qs[f] for f in deps]), len(deps)
        qo = torch.einsum("...oj,...j->...o", flat(A_m, k), q)
        gain = gain - (qo * torch.einsum("...oj,...j->...o", flat(W, k), q)).sum(-1)
    return gain


def novelty_B(qs: Sequence[Tensor], W_prev: Sequence[Tensor]) -> Tensor:
    """-sum_f q(s_f') . W_prev[f]: the novelty of B, with ``W_prev[f]`` the novelty weights of ``pB[f]`` for the
    action taken, contracted with the belief before it (``TabularModel.predict_all`` with ``B=pB`` weights)."""
    out: Any = 0.0
    for q, w in zip(qs, W_prev, strict=True):
        out = out - (q * w).sum(-1)
    return out


def inductive_vectors(I: Sequence[Any], epsilon: float, qs_root: Sequence[Tensor]) -> list:
    """Per factor the vector ``c_f`` ``(*lead, S_f)`` with inductive cost sum_f q(s_f) . c_f, from the current
    beliefs ``qs_root`` (the goal-reachability row of ``I`` that the current most likely state selects)."""
    out = []
    log_eps = float(np.log(max(epsilon, np.finfo(float).eps)))
    for f, I_f in enumerate(I):
        q = qs_root[f]
        I_f = (I_f if isinstance(I_f, Tensor) else torch.as_tensor(np.asarray(I_f, float))).to(q)
        column = I_f[:, q.argmax(-1)].movedim(0, -1)  # (*lead, n_levels)
        row = (column.argmax(-1) - 1).clamp_min(0)
        weight = column.sum(-1).clamp(0.0, 1.0)
        out.append(-weight[..., None] * (1.0 - I_f[row]) * log_eps)
    return out


def goal_divergence(qs: Sequence[Tensor], log_goal: Tensor) -> Tensor:
    """KL[q(s) || p_g] for mean-field beliefs ``qs[f]`` ``(*lead, S_f)`` and ``log_goal`` ``(prod S,)`` (ln p_g over
    the joint state, first factor slowest): ``sum_f sum_s q_f ln q_f - sum_s q(s) ln p_g(s)``, ``(*lead,)``."""
    neg_entropy = sum(xlogx(q, EXACT).sum(-1) for q in qs)
    return neg_entropy - (joint(qs) * log_goal).sum(-1)


def terminal_terms(terms: Sequence[Term], horizon: int, like: Tensor) -> list:
    """``(key, fn)`` for each terminal term: ``fn`` maps the beliefs at the horizon ``(*lead, S_f)`` to the term as
    it enters G, ``(*lead,)`` (``discount^H V`` for ``TerminalValue``, ``weight KL`` for ``GoalDivergence``, whose
    ``ln p_g`` is put on ``like``'s device and dtype here, once)."""
    out: list[tuple[str, Callable[[Sequence[Tensor]], Tensor]]] = []
    for t in terms:
        if isinstance(t, TerminalValue):
            out.append((t.key, functools.partial(_discounted, t.value, t.discount ** horizon)))  # type: ignore[arg-type]
        elif isinstance(t, GoalDivergence):
            ln_p = torch.tensor(np.asarray(t.log_goal)).reshape(-1).to(like)  # a copy: log_goal is read-only
            out.append((t.key, functools.partial(_weighted_divergence, t.weight, ln_p)))
    return out


def _discounted(value: Callable, weight: float, qs: Sequence[Tensor]) -> Tensor:
    return weight * value(qs)


def _weighted_divergence(weight: float, log_goal: Tensor, qs: Sequence[Tensor]) -> Tensor:
    return weight * goal_divergence(qs, log_goal)


def parameter_weights(model: Any, terms: Sequence[Term]) -> dict:
    """The novelty weights ``{"pA": [W_m], "pB": [W_f]}`` the ``Novelty`` terms need, once per model."""
    out = {}
    for term in (t for t in terms if isinstance(t, Novelty)):
        counts = getattr(model, "p" + term.param, None)
        if counts is None:
            raise ParameterError(f"the term {term!r} needs Dirichlet counts, but the model has no p{term.param} "
                                 f"(give TabularModel p{term.param}=..., or build it from an aif model with them)")
        deps, extra = (model.A_dependencies, 1) if term.param == "A" else (model.B_dependencies, 2)
        out["p" + term.param] = [novelty_weights(p, p.ndim - len(d) - extra, term.wnorm)
                                 for p, d in zip(counts, deps, strict=True)]
    return out


def prepare(model: Any, terms: Sequence[Term], qs_root: Sequence[Tensor]) -> dict:
    """What the terms need once per call: ``parameter_weights`` and the ``"inductive"`` vectors."""
    out = parameter_weights(model, terms)
    for t in terms:
        if isinstance(t, InductiveCost):
            out["inductive"] = inductive_vectors(t.I, t.epsilon, qs_root)
    return out


def needs(terms: Sequence[Term], model: Any, options: EFEOptions) -> tuple[bool, bool]:
    """``(joint information gain over several modalities, per-node entropy and ambiguity)``."""
    joint_ig = any(isinstance(t, InfoGain) and t.joint for t in terms) and len(model.num_obs) > 1
    return joint_ig, joint_ig or options.guards.state_floor > 0


def prepare_terms(model: Any, terms: Sequence[Term], tabular: bool) -> tuple[Term, ...]:
    """``check_terms`` plus what this model needs for them: Dirichlet counts for ``Novelty``; a tabular model
    for ``Novelty``, ``InductiveCost`` and the joint information gain (a ``StrategyError`` otherwise)."""
    terms = check_terms(terms)
    for t in terms:
        if not tabular and (isinstance(t, (Novelty, InductiveCost)) or needs([t], model, EFEOptions())[0]):
            raise StrategyError(f"the term {t!r} needs a tabular model (a TabularModel), got "
                                f"{type(model).__name__}")
    for t in terms:
        if isinstance(t, GoalDivergence):
            check_goal(t, model.num_states)
        if isinstance(t, Novelty) and t.param == "D":
            raise StrategyError("Novelty('D') is scored by SPM's trial mode only (aif.SequenceOptions.spm(), run by "
                                "aif.Agent or aif_deep's NumPy route); the torch evaluator scores A and B novelty")
    if tabular:
        parameter_weights(model, terms)
    check_counts(model, [t for t in terms if isinstance(t, InfoGain)])  # the joint outcome space's size
    return terms


def step_terms(model: Any, qs: Sequence[Tensor], t: int, terms: Sequence[Term], options: EFEOptions, prep: dict,
               W_prev: Sequence[Tensor] | None = None, base: bool = True, tabular: bool = True) -> dict:
    """Every term at one predicted belief ``qs`` (step ``t``): ``utility``, ``ambiguity``, ``entropy`` (with
    ``base``) and the extra terms' keys, ``(*lead,)`` each. ``prep``: ``parameter_weights`` plus ``"inductive"``
    (``inductive_vectors``); ``W_prev``: the pB novelty weights predicted from the belief before the action.
    A model without tables (``tabular=False``) gives the outcome terms itself (``BeliefModel.outcome_terms``)."""
    out: dict = {}
    if base:
        joint_ig = needs(terms, model, options)[0]
        out = outcome_terms(model, qs, t, options, joint_ig) if tabular else model.outcome_terms(qs, t, options)
    for term in terms:
        if isinstance(term, Novelty) and term.param == "A":
            out[term.key] = novelty_A(model, prep["pA"], qs)
        elif isinstance(term, Novelty):
            assert W_prev is not None, "the novelty of B needs W_prev"
            out[term.key] = novelty_B(qs, W_prev)
        elif isinstance(term, InductiveCost):
            out[term.key] = sum((q * c).sum(-1) for q, c in zip(qs, prep["inductive"], strict=True))
    return out


def term_weights(terms: Sequence[Term], columns: Sequence[str]) -> list:
    """G's weight on each named column (``utility``, ``ambiguity``, ``entropy``, extra term keys): risk =
    -utility - entropy, information gain = entropy - ambiguity, the others their own column."""
    forms = {"risk": {"utility": -1.0, "entropy": -1.0}, "state_info_gain": {"entropy": 1.0, "ambiguity": -1.0}}
    w = dict.fromkeys(columns, 0.0)
    for t in (t for t in terms if not isinstance(t, TERMINAL)):
        for col, c in forms.get(t.key, {t.key: 1.0}).items():
            w[col] += t.sign * c
    return [w[c] for c in columns]


def named_terms(columns: dict, terms: Sequence[Term]) -> dict:
    """The returned dict: risk, ambiguity, utility, state_info_gain, and the extra terms' keys."""
    u, a, e = columns["utility"], columns["ambiguity"], columns["entropy"]
    out = {"risk": -u - e, "ambiguity": a, "utility": u, "state_info_gain": e - a}
    for t in terms:
        if t.key not in out:
            out[t.key] = columns[t.key]
    return out
