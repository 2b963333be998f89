"""Sophisticated inference in torch: ``aif.planning.SophisticatedInference``'s search for a batch of beliefs at once.

The recursion, the pruning rules and the order of the passes are those of the NumPy planner (its module docstring
states them; pymdp 1.0's ``si_policy_search``): breadth first, one level per depth; expanding a belief node b at
depth d computes G_1(b, u) for every first action, q_1(u | b) = softmax(-gamma G_1) and creates the action nodes
with q_1 > policy_prune_threshold; below each, the outcome combinations (product of the per-modality marginals,
``topk_outcomes`` and ``max_branching`` as there) with probability > observation_prune_threshold, each with its
posterior; after each level a backward pass from the deepest expanded level up,
``G(b, u) = G_1(b, u) + sum_o p(o) G(b_o)`` (``prune_penalty`` for a missing action), q(u | b) = softmax over the
slots (empty ones included with ``max_branching``), ``G(b) = sum_u q(u | b) G(b, u)``, and the actions whose
q(u | b) < policy_prune_threshold are cut with their subtrees; the entropy stop, per belief of the batch.

What differs is the layout. The nodes of one depth, of *every* belief of the batch, are rows of one set of tensors
(``Level``: each row knows its batch element and its parent action slot), so each step is one batched call over all
of them: one ``aif_deep.evaluate_policies`` for G_1 of every (node, action), one prediction and one outcome
contraction for every created action node, one enumeration of the outcome combinations for all of them, and one
``infer_states`` for every kept outcome; the backward pass is a scatter-add over the parents. There is no Python
loop over beliefs, nodes, actions or outcomes: only over depths. The only host synchronisations are the
``nonzero`` calls that size the next level. Gradients flow from G to the model's arrays and the beliefs (the
thresholds and cuts are decisions: no gradient through them).

``search`` agrees with ``SophisticatedInference.search`` to rounding (tests/deep/test_sophisticated_torch.py: 1e-10
in float64 on random models and on the T-maze), for a batch of beliefs and, with a batched ``TabularModel``, a
batch of agents each with its own model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import cast

import torch

from aif import Exact, FixedPoint
from aif.control import enumerate_policies
from aif.errors import ModelError, PolicyError, StrategyError
from aif.maths import CLIP
from aif.planning import SophisticatedInference

from . import checks
from .control import predict_policies
from .efe import guarded_log
from .evaluator import evaluate_policies
from .inference import infer_states_checked
from .model import TabularModel, sum_against
from .threads import threads_for

Tensor = torch.Tensor


@dataclass(frozen=True)
class Level:
    """The belief nodes at one depth, for every belief of the batch, and the action slots below them.

    ``N`` rows, ``U`` first actions; action slot ``(n, u)`` is numbered ``n * U + u``.

    Attributes:
        qs: beliefs, ``(N, S_f)`` per factor.
        batch: long ``(N,)``, the batch element each node belongs to.
        parent: long ``(N,)``, the action slot of the level above that led here (-1 at the roots).
        prob: ``(N,)`` its probability (product of the per-modality outcome probabilities).
        alive: bool ``(N,)``, False once the node's branch was cut.
        G: ``(N,)`` G(b) (0 until a backward pass reaches it).
        G_step: ``(N, U)`` one-step EFE of each action (0 before expansion).
        G_action: ``(N, U)`` value of each action slot.
        q: ``(N, U)`` q(u | b) from the last pass.
        added: bool ``(N, U)``, the action node exists.
    """

    qs: list
    batch: Tensor
    parent: Tensor
    prob: Tensor
    alive: Tensor
    G: Tensor
    G_step: Tensor
    G_action: Tensor
    q: Tensor
    added: Tensor

    @classmethod
    def new(cls, qs: list, batch: Tensor, parent: Tensor, prob: Tensor, num_actions: int) -> "Level":
        N, like = len(batch), prob
        zeros = like.new_zeros((N, num_actions))
        return cls(qs=qs, batch=batch, parent=parent, prob=prob, alive=torch.ones(N, dtype=torch.bool,
                   device=like.device), G=like.new_zeros(N), G_step=zeros, G_action=zeros, q=zeros,
                   added=torch.zeros((N, num_actions), dtype=torch.bool, device=like.device))

    @property
    def size(self) -> int:
        return len(self.batch)


@dataclass(frozen=True)
class BatchSearch:
    """What ``search`` returns.

    Attributes:
        G: ``(*batch, U)`` the root's slot values, one per first action (``prune_penalty`` for cut ones):
            ``SophisticatedInference.plan(...).G`` of each belief.
        immediate: ``(*batch, U)`` the one-step EFE of each first action (``Plan.terms["immediate"]``).
        actions: long ``(U, num_factors)``, the first actions (``aif.enumerate_policies(..., 1)[:, 0]``).
        levels: the ``Level`` of each depth (``levels[0]`` holds the roots, one per belief).
        depth_reached: long ``(*batch,)``, levels expanded for each belief (less than the depth where the
            entropy stop fired).
    """

    G: Tensor
    immediate: Tensor
    actions: Tensor
    levels: list
    depth_reached: Tensor

    @property
    def num_nodes(self) -> Tensor:
        """``(batch,)`` belief and action nodes still in each belief's tree (``SearchTree.num_nodes``)."""
        B = self.levels[0].size
        total = torch.zeros(B, dtype=torch.long, device=self.G.device)
        for level in self.levels:
            per_node = level.alive.long() + (level.added & level.alive[:, None]).sum(1)
            total = total.index_add(0, level.batch, per_node)
        return total


def search(planner: SophisticatedInference, model: TabularModel, qs: list) -> BatchSearch:
    """Sophisticated inference from every belief of a batch (see the module docstring).

    Args:
        planner: an ``aif.planning.SophisticatedInference``: its depth, pruning, gamma, EFE terms and options, and
            its state inference (``aif.FixedPoint`` or ``aif.Exact``).
        model: a ``TabularModel``, one model for every belief (``batch_shape == ()``) or one per belief
            (``batch_shape`` equal to the beliefs' batch shape).
        qs: beliefs, one tensor ``(*batch, S_f)`` per factor.

    Returns a ``BatchSearch``; ``G`` ``(*batch, U)`` equals ``planner.plan(model_b, qs_b).G`` for each belief.
    """
    if not isinstance(planner, SophisticatedInference):
        raise StrategyError(f"planner must be an aif.planning.SophisticatedInference, got {planner!r}")
    if not isinstance(model, TabularModel):
        raise ModelError(f"sophisticated inference in torch needs a TabularModel, got {type(model).__name__}")
    if not isinstance(planner.inference, (FixedPoint, Exact)):
        raise StrategyError(f"SophisticatedInference.inference = {planner.inference!r}: aif_deep runs aif.FixedPoint "
                            "and aif.Exact")
    qs = checks.beliefs(model, qs, "qs")
    batch = checks.belief_batch(model, qs)
    if model.batch_shape and tuple(model.batch_shape) != batch:
        raise ModelError(f"a batched model needs one belief per agent: the model's batch shape is "
                         f"{tuple(model.batch_shape)}, the beliefs' {batch}")
    device = qs[0].device
    B = math.prod(batch)
    actions = torch.as_tensor(enumerate_policies(model.num_controls, 1, planner.control_factors)[:, 0, :],
                              device=device)  # (U, F)
    U = len(actions)
    if planner.max_branching is not None and planner.max_branching < U:
        raise PolicyError(f"SophisticatedInference.max_branching is {planner.max_branching}, below the {U} first "
                          "actions each belief node must hold")
    roots = [q.expand(*batch, q.shape[-1]).reshape(B, q.shape[-1]) for q in qs]
    ids = torch.arange(B, device=device)
    levels = [Level.new(roots, ids, torch.full((B,), -1, device=device), roots[0].new_ones(B), U)]
    running = torch.ones(B, dtype=torch.bool, device=device)
    depth_reached = torch.zeros(B, dtype=torch.long, device=device)
    held = torch.ones(B, dtype=torch.long, device=device)  # belief nodes each tree holds, the cut ones too
    width = U * math.prod(model.num_obs) * max(model.num_states)  # elements per node of a level's intermediates
    for d in range(planner.depth):
        with threads_for(levels[d].size * width):  # small work: one intra-op thread (aif_deep.threads)
            levels[d], below = _expand(planner, model, levels[d], actions, d, running)
            held = held + torch.bincount(below.batch, minlength=B)
            if bool((held > planner.max_nodes).any()):
                raise PolicyError(f"SophisticatedInference would hold more than max_nodes = {planner.max_nodes:,} "
                                  f"belief nodes at depth {d + 1} of {planner.depth}: lower depth, raise "
                                  "observation_prune_threshold or policy_prune_threshold, set max_branching or "
                                  "topk_outcomes, or raise max_nodes")
            levels.append(below)
            depth_reached = depth_reached + running.long()
            for k in reversed(range(d + 1)):
                levels[k] = _backward(planner, levels[k], levels[k + 1], running)
            for k in range(1, len(levels)):
                levels[k] = _cut(levels[k - 1], levels[k])
            if planner.entropy_stop_threshold is not None and d + 1 < planner.depth:
                q_root = _slot_posterior(planner, levels[0].G_action)
                entropy = -(q_root * guarded_log(q_root, CLIP)).sum(-1)
                running = running & (entropy > planner.entropy_stop_threshold)
        if not bool(running.any()):
            break
    root = levels[0]
    return BatchSearch(G=root.G_action.reshape(*batch, U), immediate=root.G_step.reshape(*batch, U), actions=actions,
                       levels=levels, depth_reached=depth_reached.reshape(batch))


# ----------------------------------------------------------------------------------------------------------


def _rows(model: TabularModel, batch: Tensor) -> TabularModel:
    """The model of each row: ``model`` itself when it is one model, else its agents' arrays indexed by ``batch``."""
    if not model.batch_shape:
        return model

    def take(xs):
        return None if xs is None else [x[batch] for x in xs]

    return replace(model, A=take(model.A), B=take(model.B), C=take(model.C), D=take(model.D),
                   E=None if model.E is None else model.E[batch], pA=take(model.pA), pB=take(model.pB),
                   pD=take(model.pD), batch_shape=(len(batch),))


def _at_depth(model: TabularModel, d: int) -> TabularModel:
    """The model whose time-varying C starts at column d (``aif.planning.sophisticated.model_at_depth``)."""
    nb = len(model.batch_shape)
    if all(C_m.ndim == nb + 1 for C_m in model.C):
        return model
    return model.replace(C=[C_m if C_m.ndim == nb + 1 else C_m[..., min(d, C_m.shape[-1] - 1):] for C_m in model.C])


def _expand(planner: SophisticatedInference, model: TabularModel, level: Level, actions: Tensor, d: int,
            running: Tensor) -> tuple[Level, Level]:
    """Evaluate every action of the live nodes of ``level`` (depth d) and build the level of their outcomes."""
    U = len(actions)
    live = level.alive & running[level.batch]
    idx = live.nonzero().squeeze(1)
    node_model = _rows(_at_depth(model, d), level.batch[idx])
    G_live, _ = evaluate_policies(node_model, [q[idx] for q in level.qs], actions[:, None, :].cpu().numpy(),
                                  terms=planner.efe_terms, options=planner.options, with_terms=False,
                                  check_values=False)  # (n_live, U)
    q_live = torch.softmax(-planner.gamma * G_live, -1)
    G_step = level.G_step.index_put((idx,), G_live)
    q = level.q.index_put((idx,), q_live)
    added = level.added.index_put((idx,), q_live > planner.policy_prune_threshold)
    level = replace(level, G_step=G_step, q=q, added=added)

    slots = (added & live[:, None]).reshape(-1).nonzero().squeeze(1)  # n * U + u
    node, u = slots // U, slots % U
    slot_batch = level.batch[node]
    slot_model = _rows(model, slot_batch)
    qs_next = predict_policies(slot_model, [q_f[node] for q_f in level.qs], actions[u])  # (n_slots, S_f)
    qo = [sum_against(A_m, [qs_next[f] for f in deps], keep=1)  # (n_slots, O_m)
          for A_m, deps in zip(slot_model.A, slot_model.A_dependencies, strict=True)]
    slot_of, obs, prob = _outcomes(planner, qo)
    kept_model = _rows(model, slot_batch[slot_of])
    method = cast(FixedPoint, planner.inference)
    posterior = infer_states_checked(kept_model, obs, [q_f[slot_of] for q_f in qs_next], method)
    below = Level.new(posterior, slot_batch[slot_of], slots[slot_of], prob, U)
    return level, below


def _outcomes(planner: SophisticatedInference, qo: list) -> tuple[Tensor, list, Tensor]:
    """The outcome combinations kept below every action node (``SophisticatedInference.outcomes``, batched).

    Args:
        qo: predicted outcome probabilities, ``(n, O_m)`` per modality, one row per action node.

    Returns ``(row, obs, prob)``: for each kept combination, its action node ``(K,)``, its outcome index per
    modality (``(K,)`` each) and its probability ``(K,)``, in NumPy's order (by action node; within one, by the
    modalities' outcomes from most to least likely, the last modality fastest).
    """
    n = qo[0].shape[0]
    prob = qo[0].new_ones((n, 1))
    orders, sizes = [], []
    for qo_m in qo:
        # Most likely first; a stable sort keeps the lower index first on ties (as NumPy's and lax.top_k do).
        p_sorted, order = torch.sort(qo_m, dim=-1, descending=True, stable=True)
        if planner.topk_outcomes is not None:
            p_sorted, order = p_sorted[:, : planner.topk_outcomes], order[:, : planner.topk_outcomes]
        p_m = p_sorted / p_sorted.sum(-1, keepdim=True)  # NumPy's renormalisation over the outcomes kept
        prob = (prob[:, :, None] * p_m[:, None, :]).reshape(n, -1)  # the last modality fastest
        orders.append(order)
        sizes.append(order.shape[1])
    keep = prob > planner.observation_prune_threshold
    if planner.max_branching is not None:
        keep = keep & (keep.long().cumsum(-1) <= planner.max_branching)
    row, combo = keep.nonzero(as_tuple=True)
    obs, stride = [], math.prod(sizes)
    for order, size in zip(orders, sizes, strict=True):
        stride //= size
        obs.append(order[row, (combo // stride) % size])
    return row, obs, prob[row, combo]


def _slot_posterior(planner: SophisticatedInference, slot_G: Tensor) -> Tensor:
    """q(u | b) = softmax(-gamma G) over the action slots and the empty ones: ``(N, U)`` -> ``(N, U + pad)``."""
    pad = 0 if planner.max_branching is None else planner.max_branching - slot_G.shape[1]
    slots = torch.cat([slot_G, slot_G.new_full((len(slot_G), pad), float(planner.prune_penalty))], 1)
    return torch.softmax(-planner.gamma * slots, 1)


def _backward(planner: SophisticatedInference, level: Level, below: Level, running: Tensor) -> Level:
    """Slot values, q(u | b), G(b) and the cut actions of the nodes of ``level`` whose tree still runs."""
    N, U = level.G_step.shape
    live = below.alive
    parents = below.parent[live]
    weighted = level.G_step.new_zeros(N * U).index_add(0, parents, (below.prob * below.G)[live]).reshape(N, U)
    count = torch.bincount(parents, minlength=N * U).reshape(N, U)
    has_value = level.added & (count > 0)
    G_action = torch.where(has_value, level.G_step + weighted, float(planner.prune_penalty))
    q_slots = _slot_posterior(planner, G_action)
    q = q_slots[:, :U]
    G = (q * G_action).sum(1) + q_slots[:, U:].sum(1) * planner.prune_penalty
    update = running[level.batch]
    rows = update[:, None]
    return replace(level, G_action=torch.where(rows, G_action, level.G_action), q=torch.where(rows, q, level.q),
                   G=torch.where(update & level.alive, G, level.G),
                   added=torch.where(rows, level.added & ~(q < planner.policy_prune_threshold), level.added))


def _cut(level: Level, below: Level) -> Level:
    """A belief node lives while its parent belief node lives and its action node was not cut."""
    U = level.added.shape[1]
    alive = below.alive & level.alive[below.parent // U] & level.added.reshape(-1)[below.parent]
    return replace(below, alive=alive)


__all__ = ["search", "BatchSearch", "Level"]
