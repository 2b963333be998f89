"""Sophisticated inference: expected free energy evaluated recursively over the beliefs outcomes lead to.

Plain policy enumeration scores a fixed action sequence by what the agent expects to *see*. Sophisticated
inference (Friston et al. 2021, "Sophisticated inference") scores an action by what the agent would then
*believe*, and lets each later action depend on the outcome before it: a tree alternating action nodes and
belief nodes, with

    G(b, u) = G_1(b, u) + sum_o q(o | b, u) G(b_{u,o}),            b_{u,o} = posterior after u and o,
    G(b)    = sum_u q(u | b) G(b, u),     q(u | b) = softmax(-gamma G(b, .)),

and G(b) = 0 beyond the depth. G_1 is the one-step expected free energy (``aif.expected_free_energy`` of
the one-step policy u from belief b; C's column d at depth d when C is time-varying).

This module follows pymdp 1.0's ``pymdp/planning/si.py`` (``si_policy_search`` / ``optimized_tree_search``)
step for step, so that the two agree to rounding. Read from that code:

- **Levels, breadth first.** The tree grows one level at a time, ``depth`` times at most. Expanding a
  belief node b at depth d computes, for every first action u (the model's one-step policies), the
  predicted beliefs, the predicted outcomes q(o_m | b, u) per modality and G_1(b, u), and
  q_1(u | b) = softmax(-gamma G_1(b, .)) (over the actions only).
- **Action pruning at expansion.** An action node is created only if q_1(u | b) > policy_prune_threshold
  (strict).
- **Outcomes.** The outcomes of a created action node are all combinations of one outcome per modality;
  the probability of a combination is the *product of the per-modality marginals* q(o_m | b, u) (not the
  joint q(o | b, u); for outcomes that are correlated through the states this is pymdp's approximation).
  Per modality only the ``topk_outcomes`` most likely outcomes are kept, renormalised (pymdp's
  ``topk_obsspace``; all by default). A belief node is created for each combination with probability
  > observation_prune_threshold (strict), in order (the last modality varies fastest, the outcomes of a
  modality from most to least likely), at most ``max_branching`` of them. Its belief is
  ``infer_states(model, o, prior=predicted belief, method=inference)``, its probability the product
  above, *not* renormalised over the combinations kept.
- **Backward pass after each level.** From the deepest expanded level up to the root, each belief node
  computes the value of each of its action slots: G_1(b, u) + sum over its belief children of
  prob x G(child) if the action node exists and has at least one belief child; ``prune_penalty``
  otherwise (an action pruned at expansion or later, or one all of whose outcomes were pruned). With
  ``max_branching`` set, the node has ``max_branching - num_actions`` further empty slots, also worth
  ``prune_penalty``, that take part in the softmax (their weight is ~exp(-gamma * prune_penalty)).
  Then q(u | b) = softmax(-gamma * slots) and G(b) = sum_u q(u | b) slot_u. New leaves count G(b) = 0.
- **Action pruning after each backward step.** Each action whose q(u | b) < policy_prune_threshold
  (strict) is cut with its whole subtree; from then on its slot is worth ``prune_penalty``. This happens
  after every level, so an action can be cut on the values of a shallower tree and is never expanded again.
- **Stopping.** After a level, the search goes on while fewer than ``depth`` levels are expanded and the
  root's q(u | b) has entropy above ``entropy_stop_threshold`` (pymdp's default 0.5; ``None`` here by
  default, i.e. never stop early).
- **The answer.** ``Plan.G`` is the root's slot values, one per first action (``prune_penalty`` for cut
  ones); pymdp returns q_pi = softmax(-gamma G) over them (plus the empty slots).

Left out: pymdp's node reuse by KL (``kl_threshold``, off by default there), its stop on the root's value
(``neg_efe_stop_threshold``, off by default there) and its fixed node budget (``max_nodes``; when pymdp
runs out of nodes it stops expanding). pymdp.legacy's ``sophisticated_inference_search`` is another rule
(depth first; prunes on q_1 >= threshold at every node but the last level, subtracting the penalty from
the pruned action's one-step value; skips outcomes with probability < threshold): not reproduced.

Cost: the EFE is vectorised over actions, the prediction over the whole frontier; the posterior of each kept
outcome runs in Python. Within a search, identical beliefs (in the T-maze many actions lead to the same one)
share their one-step G, and identical (prior, outcome) pairs their posterior. Inputs are checked once, in
``search``; the nodes trust them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np

from ..checks import check_beliefs, check_fraction, check_integer, check_is_model, check_positive, check_real
from ..control import enumerate_policies, predict_policies, prefix_tree_efe
from ..efe import DEFAULT_TERMS, EFEOptions, GoalDivergence, TerminalValue, check_counts, check_terms
from ..errors import ParameterError, PolicyError, StrategyError
from ..inference import FixedPoint
from ..maths import CLIP, batch_contract, softmax
from ..model import GenerativeModel
from ..strategies import NUMPY, Planner, StateInference, require
from .base import Plan, check_options


@dataclass
class Level:
    """The belief nodes at one depth of the search tree and the action slots below them.

    ``N`` belief nodes, ``U`` first actions; action slot ``(n, u)`` is numbered ``n * U + u``.

    Attributes:
        qs: beliefs, ``qs[f]`` of shape ``(N, num_states[f])``: inferred when first read (a level is expanded, or a
            caller reads it), so the posteriors of the deepest level, which no value needs, cost nothing unless read.
        parent: ``(N,)`` the action slot of the level above that led here (-1 at the root).
        obs: ``(N, num_modalities)`` the outcome combination that led here (-1 at the root).
        prob: ``(N,)`` its probability (product of the per-modality predicted outcome probabilities).
        alive: ``(N,)`` False once the node's branch was pruned.
        G: ``(N,)`` the node's value G(b) (0 until a backward pass reaches it).
        G_step: ``(N, U)`` one-step EFE of each action (NaN before expansion).
        G_action: ``(N, U)`` value of each action slot (``prune_penalty`` for missing actions).
        q: ``(N, U)`` q(u | b) from the last pass (softmax over the slots).
        added: ``(N, U)`` the action node exists (created at expansion and not pruned since).
    """

    parent: np.ndarray
    obs: np.ndarray
    prob: np.ndarray
    alive: np.ndarray
    G: np.ndarray
    G_step: np.ndarray
    G_action: np.ndarray
    q: np.ndarray
    added: np.ndarray
    infer: Callable[[], list] | None = field(default=None, repr=False)  # makes qs when it is first read
    beliefs: list | None = field(default=None, repr=False)

    @classmethod
    def new(cls, qs, parent, obs, prob, num_actions, infer=None):
        """A level of ``len(prob)`` belief nodes: beliefs ``qs``, or ``infer()`` to make them when first read."""
        n = len(prob)
        return cls(parent=np.asarray(parent, dtype=np.int64), obs=np.asarray(obs, dtype=np.int64),
                   prob=np.asarray(prob, dtype=float), alive=np.ones(n, dtype=bool), G=np.zeros(n),
                   G_step=np.full((n, num_actions), np.nan), G_action=np.zeros((n, num_actions)),
                   q=np.zeros((n, num_actions)), added=np.zeros((n, num_actions), dtype=bool), infer=infer,
                   beliefs=qs)

    @property
    def qs(self) -> list:
        if self.beliefs is None:
            self.beliefs, self.infer = cast(Callable[[], list], self.infer)(), None
        return self.beliefs

    @property
    def size(self) -> int:
        return len(self.prob)


def check_one_step_terms(terms: Any, owner: str) -> None:
    """A tree search scores the one-step G at every node: a term of the beliefs at a policy's horizon
    (``TerminalValue``, ``GoalDivergence``) would be added at every depth, so it is refused, naming ``owner``."""
    terminal = [type(t).__name__ for t in check_terms(terms) if isinstance(t, (TerminalValue, GoalDivergence))]
    if terminal:
        raise StrategyError(f"{owner}: {', '.join(terminal)} scores the beliefs at a policy's horizon, but a tree "
                            "search adds its one-step G at every node: use it with enumerated policies "
                            "(PolicyEnumeration, the Agent's own policies) or aif.planning.CrossEntropyPlanner")


@dataclass(frozen=True)
class SearchTree:
    """The tree one search built.

    Attributes:
        levels: ``levels[d]`` holds the belief nodes at depth d (``Level``); the root is ``levels[0]``.
        actions: int ``(U, num_factors)``, the first actions the slots refer to.
        depth_reached: number of levels expanded (``depth``, or less when the entropy stop fired).
        peak_nodes: the most nodes the tree held at once (after an expansion, before that level's cuts);
            pymdp's ``max_nodes`` must exceed it for pymdp to build the same tree.
    """

    levels: list
    actions: np.ndarray
    depth_reached: int
    peak_nodes: int = 0

    @property
    def num_belief_nodes(self) -> int:
        return int(sum(level.alive.sum() for level in self.levels))

    @property
    def num_action_nodes(self) -> int:
        return int(sum((level.added & level.alive[:, None]).sum() for level in self.levels))

    @property
    def num_nodes(self) -> int:
        """Belief and action nodes still in the tree (pymdp's ``tree.used.sum()``)."""
        return self.num_belief_nodes + self.num_action_nodes


@dataclass(frozen=True)
class SophisticatedInference(Planner):
    """Recursive expected free energy over beliefs, to a given depth, with pruning (pymdp 1.0's rule).

    See the module docstring for the algorithm. ``SophisticatedInference.pymdp(depth)`` has pymdp 1.0's
    defaults (its EFE and state-inference conventions and its entropy stop).

    Attributes:
        depth: number of actions looked ahead (pymdp's ``horizon``); 1 is one-step EFE.
        policy_prune_threshold: actions with q(u | b) at or below this are not expanded, and below it are
            cut after a backward pass (pymdp's ``policy_prune_threshold``; legacy's
            ``si_policy_prune_threshold``).
        observation_prune_threshold: outcome combinations with probability at or below this are not
            expanded (pymdp's ``observation_prune_threshold``; legacy's ``si_state_prune_threshold``).
        prune_penalty: the G of a missing action (cut, or with no outcome kept).
        gamma: precision of q(u | b) = softmax(-gamma G) inside the tree.
        entropy_stop_threshold: stop deepening once the root's q(u | b) has entropy at or below this;
            ``None`` never stops early.
        max_branching: pymdp's ``max_branching``: at most this many outcome children per action node, and
            every belief node has this many slots (the ones beyond the actions are empty). ``None``: no
            limit, no empty slots.
        topk_outcomes: per modality, keep the k most likely outcomes (renormalised); ``None`` keeps all.
        efe_terms: the EFE terms of the one-step G (see ``aif.expected_free_energy``).
        options: ``EFEOptions`` of the one-step G.
        inference: state-inference method for the posterior after each outcome.
        control_factors: factors whose actions vary (all by default).
        max_nodes: the most belief nodes the tree may hold; a search that would create more is refused with a
            ``PolicyError`` naming the depth, before they are built (pymdp instead stops expanding once its
            preallocated ``max_nodes``, 5,000 by default, are full: give ours at least what pymdp's tree reaches).
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    depth: int = 2
    policy_prune_threshold: float = 1 / 16
    observation_prune_threshold: float = 1 / 16
    prune_penalty: float = 512.0
    gamma: float = 1.0
    entropy_stop_threshold: float | None = None
    max_branching: int | None = None
    topk_outcomes: int | None = None
    efe_terms: tuple = DEFAULT_TERMS
    options: EFEOptions = field(default_factory=EFEOptions)
    inference: StateInference = field(default_factory=FixedPoint)
    control_factors: tuple | None = None
    max_nodes: int = 1_000_000

    def __post_init__(self):
        check_one_step_terms(self.efe_terms, "SophisticatedInference")
        check_integer(self.depth, "SophisticatedInference.depth")
        check_integer(self.max_nodes, "SophisticatedInference.max_nodes")
        require(self.inference, StateInference, "SophisticatedInference.inference", NUMPY)
        for name in ("policy_prune_threshold", "observation_prune_threshold"):
            check_fraction(getattr(self, name), f"SophisticatedInference.{name}", "[0, 1)")
        check_real(self.prune_penalty, "SophisticatedInference.prune_penalty")
        check_options(self.options, "SophisticatedInference.options")
        if self.entropy_stop_threshold is not None:
            check_real(self.entropy_stop_threshold, "SophisticatedInference.entropy_stop_threshold")
        check_positive(self.gamma, "SophisticatedInference.gamma")
        for name in ("max_branching", "topk_outcomes"):
            check_integer(getattr(self, name), f"SophisticatedInference.{name}", optional=True)

    @classmethod
    def pymdp(cls, depth: int = 5, **changes: Any) -> "SophisticatedInference":
        """pymdp 1.0's ``si_policy_search`` defaults, with pymdp 1.0's EFE and FPI conventions.

        ``max_nodes`` has no counterpart: choose pymdp's large enough that its tree never fills up.
        """
        settings: dict[str, Any] = dict(
            depth=depth, policy_prune_threshold=1 / 16, observation_prune_threshold=1 / 16, prune_penalty=512.0,
            gamma=1.0, entropy_stop_threshold=0.5, max_branching=10, topk_outcomes=None, options=EFEOptions.pymdp(),
            inference=FixedPoint.pymdp())
        settings.update(changes)
        return cls(**settings)

    def plan(self, model: GenerativeModel, qs: list, rng: np.random.Generator | None = None) -> Plan:
        """Score the first actions: ``Plan.policies`` ``(U, 1, num_factors)``, ``Plan.G`` the root's slot values.

        ``Plan.terms["immediate"]`` holds the one-step EFE of each first action. ``rng`` is not used.
        """
        tree = self.search(model, qs)
        root = tree.levels[0]
        policies = tree.actions[:, None, :]
        G = root.G_action[0].copy()
        return Plan(G, policies, {"immediate": root.G_step[0].copy()})

    def search(self, model: GenerativeModel, qs: list) -> SearchTree:
        """Build the search tree from belief ``qs`` (one ``(num_states[f],)`` vector per factor)."""
        qs = check_beliefs(check_is_model(model), qs, "qs")
        check_counts(model, check_terms(self.efe_terms))  # validated once: the nodes' one-step G trust them
        actions = enumerate_policies(model.num_controls, 1, self.control_factors)[:, 0, :]  # (U, F)
        U = len(actions)
        if self.max_branching is not None and self.max_branching < U:
            raise ParameterError(f"SophisticatedInference.max_branching is {self.max_branching}, below the "
                                 f"{U} first actions each belief node must hold")
        levels = [Level.new([q[None] for q in qs], [-1], [[-1] * model.num_modalities], [1.0], U)]
        depth_reached = peak = 0
        for d in range(self.depth):
            held = sum(level.size for level in levels)
            levels.append(self._expand(model, levels[d], actions, d, self.max_nodes - held))
            depth_reached = d + 1
            peak = max(peak, SearchTree(levels, actions, depth_reached).num_nodes)
            for level in reversed(range(d + 1)):
                self._backward(levels[level], levels[level + 1])
            for level in range(1, len(levels)):
                self._cut(levels[level - 1], levels[level])
            if self.entropy_stop_threshold is not None and depth_reached < self.depth:
                q_root = self._slot_posterior(levels[0].G_action[:1])[0]
                if -(q_root * CLIP(q_root)).sum() <= self.entropy_stop_threshold:
                    break
        return SearchTree(levels, actions, depth_reached, peak)

    # ------------------------------------------------------------------------------------------------------

    def _expand(self, model, level, actions, d, room) -> Level:
        """Evaluate every action of the live nodes of ``level`` (depth d); return the level of their outcomes
        (at most ``room`` belief nodes, else a ``PolicyError``)."""
        U = len(actions)
        live = np.flatnonzero(level.alive)
        model_d = model_at_depth(model, d)
        one_step = actions[:, None, :]
        G_by_belief = {}  # identical beliefs (reached by different paths) have identical one-step G
        for n in live:
            key = b"".join(q[n].tobytes() for q in level.qs)
            if key not in G_by_belief:
                G_by_belief[key] = prefix_tree_efe(model_d, [q[n] for q in level.qs], one_step, self.efe_terms,
                                                   self.options)[0]
            level.G_step[n] = G_by_belief[key]
            level.q[n] = softmax(-self.gamma * level.G_step[n])
        level.added[live] = level.q[live] > self.policy_prune_threshold

        slots = np.flatnonzero(level.added.reshape(-1) & np.repeat(level.alive, U))  # n * U + u
        if len(slots) == 0:
            return Level.new([np.zeros((0, s)) for s in model.num_states], [], np.zeros((0, model.num_modalities)),
                             [], U)
        # Predicted beliefs and outcomes of every created action node at once: rows are slots.
        qs_prev = [q[slots // U] for q in level.qs]
        qs_next = predict_policies(model, qs_prev, actions[slots % U])
        qo = [batch_contract(A_m, [qs_next[f] for f in deps])
              for A_m, deps in zip(model.A, model.A_dependencies, strict=True)]

        parents: list[Any] = []
        observations: list[np.ndarray] = []
        probs: list[float] = []
        for row, slot in enumerate(slots):
            combos, p = self.outcomes([qo_m[row] for qo_m in qo])
            if len(probs) + len(p) > room:
                raise PolicyError(f"SophisticatedInference would hold more than max_nodes = {self.max_nodes:,} "
                                  f"belief nodes at depth {d + 1} of {self.depth}: lower depth, raise "
                                  "observation_prune_threshold or policy_prune_threshold, set max_branching or "
                                  "topk_outcomes, or raise max_nodes")
            parents.extend([row] * len(p))
            observations.extend(combos)
            probs.extend(p)
        obs = np.array(observations, dtype=np.int64).reshape(len(probs), model.num_modalities)
        rows = np.array(parents, dtype=np.int64)  # each node's row of qs_next
        infer = functools.partial(self._posteriors, model, [q[rows] for q in qs_next], obs)
        return Level.new(None, slots[rows], obs, probs, U, infer)

    def _posteriors(self, model: GenerativeModel, priors: list, obs: np.ndarray) -> list:
        """The posterior of each node after its outcome, ``(N, S_f)`` per factor, from its predicted prior
        (``priors[f]`` ``(N, S_f)``) and outcome combination ``obs`` ``(N, M)``."""
        method = cast(FixedPoint, self.inference)  # a NumPy state inference: guard and __call__
        guard = method.guard
        out = [np.empty_like(q) for q in priors]
        posteriors: dict = {}  # many branches repeat a (prior, outcome) pair: actions that lead to the same belief
        for n, o in enumerate(obs):
            prior = [q[n] for q in priors]
            pair = (b"".join(q.tobytes() for q in prior), o.tobytes())
            if pair not in posteriors:
                log_lik = [guard(A_m[o_m]) for A_m, o_m in zip(model.A, o, strict=True)]  # ln A[o]
                posteriors[pair] = method(log_lik, [guard(p) for p in prior], model.A_dependencies)
            for f, q_f in enumerate(posteriors[pair]):
                out[f][n] = q_f
        return out

    def outcomes(self, qo: list) -> tuple[np.ndarray, np.ndarray]:
        """Outcome combinations kept below one action node: ``(K, M)`` indices and ``(K,)`` probabilities."""
        combos, probs = np.zeros((1, 0), dtype=np.int64), np.ones(1)
        for qo_m in qo:
            # Most likely first; a stable sort keeps the lower index first on ties (as lax.top_k does).
            order = np.argsort(-qo_m, kind="stable")
            if self.topk_outcomes is not None:
                order = order[: self.topk_outcomes]
            p_m = qo_m[order] / qo_m[order].sum()  # pymdp renormalises the top k
            combos = np.concatenate([np.repeat(combos, len(order), axis=0),
                                     np.tile(order, len(combos))[:, None]], axis=1)
            probs = np.repeat(probs, len(order)) * np.tile(p_m, len(probs))
            # Every factor is at most 1, so a partial product at or below the threshold stays there.
            keep = probs > self.observation_prune_threshold
            combos, probs = combos[keep], probs[keep]
        if self.max_branching is not None:
            combos, probs = combos[: self.max_branching], probs[: self.max_branching]
        return combos, probs

    def _slot_posterior(self, slot_G):
        """q(u | b) = softmax(-gamma G) over the action slots and the empty ones: ``(N, U)`` -> ``(N, U + pad)``."""
        pad = 0 if self.max_branching is None else self.max_branching - slot_G.shape[1]
        slots = np.concatenate([slot_G, np.full((len(slot_G), pad), float(self.prune_penalty))], axis=1)
        return softmax(-self.gamma * slots, axis=1)

    def _backward(self, level, below):
        """Slot values, q(u | b), G(b) and pruning for the live nodes of ``level`` from the level ``below``."""
        U = level.G_step.shape[1]
        live_children = below.alive
        size = level.size * U
        weighted = np.bincount(below.parent[live_children], weights=(below.prob * below.G)[live_children],
                               minlength=size).reshape(level.size, U)
        count = np.bincount(below.parent[live_children], minlength=size).reshape(level.size, U)
        has_value = level.added & (count > 0)
        level.G_action = np.where(has_value, level.G_step + weighted, float(self.prune_penalty))
        q_slots = self._slot_posterior(level.G_action)
        pad_weight = q_slots[:, U:].sum(axis=1)
        level.q = q_slots[:, :U]
        level.G = np.where(level.alive, (level.q * level.G_action).sum(axis=1) + pad_weight * self.prune_penalty,
                           level.G)
        level.added &= ~(level.q < self.policy_prune_threshold)

    @staticmethod
    def _cut(level, below):
        """A belief node lives while its parent belief node lives and its action node was not cut."""
        U = level.added.shape[1]
        below.alive &= level.alive[below.parent // U] & level.added.reshape(-1)[below.parent]


def model_at_depth(model, d):
    """The model whose C (if time-varying) starts at column d, so one-step EFEs at depth d use C[:, d]."""
    if all(C_m.ndim == 1 for C_m in model.C):
        return model
    C = [C_m if C_m.ndim == 1 else C_m[:, min(d, C_m.shape[1] - 1):] for C_m in model.C]
    return model.replace(C=C)
