"""Monte Carlo tree search over the tree of sophisticated inference: the same values, visited selectively.

``SophisticatedInference`` (``sophisticated.py``) builds the whole tree of actions and outcomes to a depth,
level by level. Tree search (Fountas et al. 2020, "Deep active inference agents using Monte-Carlo methods";
pymdp 1.0's ``pymdp/planning/mcts.py``, which hands the same tree to mctx's Gumbel MuZero) grows it one belief
node per simulation, where a selection rule says the value is most worth refining:

- **Nodes.** A belief node b at depth d < ``depth`` is *expanded* the first time a simulation reaches it: the
  one-step expected free energy G_1(b, u) of every first action u at once (C's column d when C is
  time-varying), the predicted beliefs and the outcome combinations below each action (the product of the
  per-modality marginals, kept above ``observation_prune_threshold``: sophisticated inference's rule, the same
  code). Each simulation expands one node and then backs up.
- **Selection (PUCT).** At an expanded node the simulation takes the unfinished action with the highest
  ``-Q(b, u) + exploration * P(u) * sqrt(N(b)) / (1 + N(b, u))``: Q the current estimate of G(b, u) (lower is
  better), N the visit counts, P the prior: the model's E over the first actions (pymdp's ``prior_logits =
  ln E``) or uniform. Ties go to the lowest action index, then below the action to an outcome:
  deterministically the unfinished one whose share of visits lags its probability most
  (``argmax p(o) - N(o) / (N(u) + 1)``), or, with ``sample_outcomes``, one drawn from q(o | b, u) (restricted to
  unfinished outcomes) with the ``rng`` given to ``plan`` (as mctx does).
- **Backup (sophisticated inference's).** Going back up the path,
  ``Q(b, u) = G_1(b, u) + (M_kept / M_seen) sum_{o seen} p(o) G(b_o)`` (the outcomes not yet visited are
  assumed to be worth the probability-weighted mean of those seen; with all seen the ratio is 1) and
  ``G(b) = sum_u softmax(-gamma Q(b, .))_u Q(b, u)``. An action with no outcome kept is worth
  ``prune_penalty`` (sophisticated inference's rule). Beyond the depth G = 0.
- **Finished subtrees.** A node at depth ``depth - 1`` is finished when expanded; an action node when every
  kept outcome below it is finished; a belief node when all its actions are. Finished parts are never selected
  again, so every simulation adds a node and a search of ``simulations`` at least the number of expandable
  belief nodes (``MCTS.search(...).num_expanded`` reports it) is *exhaustive* and returns exactly the root values
  of ``SophisticatedInference`` with ``policy_prune_threshold=0`` and the same outcome pruning; the search
  stops early when the root is finished.

``Plan.G`` is the root's Q (one per first action), ``Plan.terms`` holds ``immediate`` (G_1) and ``visits``
(N(root, u)); ``Plan.action`` is the first action of lowest Q. The Agent then forms q(u) = softmax(-gamma G +
ln E) as for any planner.

Cost: one vectorised one-step EFE (all actions) and one state inference per expanded node, plus O(depth) NumPy
work per simulation; nothing is compiled. ``benchmarks/bench_planners.py --mcts`` measures it against depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, cast

import numpy as np

from ..checks import check_beliefs, check_fraction, check_integer, check_is_model, check_positive, check_real
from ..control import enumerate_policies, predict_policies, prefix_tree_efe
from ..efe import DEFAULT_TERMS, EFEOptions, check_counts, check_terms
from ..errors import ParameterError, PolicyError
from ..inference import FixedPoint
from ..maths import batch_contract, softmax
from ..model import GenerativeModel
from ..strategies import NUMPY, Planner, StateInference, require
from .base import Plan, check_options
from .sophisticated import SophisticatedInference, check_one_step_terms, model_at_depth


class Node:
    """A belief node of the search tree.

    Attributes:
        qs: the belief, one ``(num_states[f],)`` vector per factor.
        depth: actions taken from the root to reach it.
        G: its value G(b) (0 until expanded; 0 beyond the depth).
        finished: its subtree is fully built.
        expanded: its actions were evaluated (the arrays below are filled).
        G_step: ``(U,)`` one-step EFE of each first action (after expansion).
        Q: ``(U,)`` the current estimate of G(b, u).
        visits: ``(U,)`` N(b, u).
        outcomes: per action, ``(K_u, M)`` the kept outcome combinations; ``probs`` their ``(K_u,)`` probabilities;
            ``prior`` the predicted belief after the action (one vector per factor).
        children: per action, ``{k: Node}`` the outcome children created so far; ``child_visits`` ``(K_u,)``.
        action_finished: ``(U,)``.
    """

    __slots__ = ("qs", "depth", "G", "finished", "expanded", "G_step", "Q", "visits", "outcomes", "probs", "prior",
                 "children", "child_visits", "action_finished")

    def __init__(self, qs: list, depth: int):
        self.qs, self.depth, self.G, self.finished, self.expanded = qs, depth, 0.0, False, False
        self.G_step = self.Q = self.visits = self.action_finished = np.empty(0)  # (U,) once expanded
        self.outcomes: list = []
        self.probs: list = []
        self.prior: list = []
        self.children: list = []
        self.child_visits: list = []


@dataclass(frozen=True)
class SearchResult:
    """What one ``MCTS.search`` built.

    Attributes:
        root: the root ``Node``.
        actions: int ``(U, num_factors)``, the first actions the root's arrays refer to.
        simulations: simulations run (fewer than the budget when the tree was finished first).
        num_expanded: belief nodes expanded (one per simulation).
    """

    root: Node
    actions: np.ndarray
    simulations: int
    num_expanded: int

    @property
    def exhaustive(self) -> bool:
        """The whole tree was built: the root values are sophisticated inference's."""
        return self.root.finished


@dataclass(frozen=True)
class MCTS(Planner):
    """Monte Carlo tree search with expected free energy as the (negative) reward (see the module docstring).

    Attributes:
        depth: number of actions looked ahead (pymdp's ``max_depth``); 1 is one-step EFE.
        simulations: the simulation budget (pymdp's ``num_simulations``); each expands one belief node.
        exploration: PUCT's constant c, in units of G (nats): how far a rarely visited action's prior may lift
            it above a better-valued one.
        use_E: the prior P(u) of the selection rule is the model's E over the first actions (which then needs one
            entry per first action); False, or a model without E: uniform.
        sample_outcomes: draw the outcome below an action from q(o | b, u) with the ``rng`` passed to ``plan``
            (mctx's rule) instead of the deterministic proportional choice.
        gamma: precision of q(u | b) = softmax(-gamma Q(b, .)) in the backup (as ``SophisticatedInference.gamma``).
        observation_prune_threshold: outcome combinations with probability at or below this are not part of
            the tree (as ``SophisticatedInference``).
        topk_outcomes: per modality, keep the k most likely outcomes (renormalised); ``None`` keeps all.
        prune_penalty: the G of an action none of whose outcomes is kept.
        efe_terms, options, inference, control_factors: as in ``SophisticatedInference``.
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    depth: int = 3
    simulations: int = 256
    exploration: float = 1.0
    use_E: bool = True
    sample_outcomes: bool = False
    gamma: float = 1.0
    observation_prune_threshold: float = 1 / 16
    topk_outcomes: int | None = None
    prune_penalty: float = 512.0
    efe_terms: tuple = DEFAULT_TERMS
    options: EFEOptions = field(default_factory=EFEOptions)
    inference: StateInference = field(default_factory=FixedPoint)
    control_factors: tuple | None = None
    # The tree's definition (one-step G, outcomes, posteriors) is sophisticated inference's: one copy of it.
    _tree: SophisticatedInference = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        check_one_step_terms(self.efe_terms, "MCTS")
        check_integer(self.depth, "MCTS.depth")
        check_integer(self.simulations, "MCTS.simulations")
        check_real(self.exploration, "MCTS.exploration", low=0.0)
        for name in ("use_E", "sample_outcomes"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"MCTS.{name} must be True or False, got {getattr(self, name)!r}")
        check_positive(self.gamma, "MCTS.gamma")
        check_fraction(self.observation_prune_threshold, "MCTS.observation_prune_threshold", "[0, 1)")
        check_integer(self.topk_outcomes, "MCTS.topk_outcomes", optional=True)
        check_real(self.prune_penalty, "MCTS.prune_penalty")
        check_options(self.options, "MCTS.options")
        require(self.inference, StateInference, "MCTS.inference", NUMPY)
        object.__setattr__(self, "_tree", SophisticatedInference(
            depth=self.depth, policy_prune_threshold=0.0, observation_prune_threshold=self.observation_prune_threshold,
            prune_penalty=self.prune_penalty, gamma=self.gamma, topk_outcomes=self.topk_outcomes,
            efe_terms=self.efe_terms, options=self.options, inference=self.inference,
            control_factors=self.control_factors))

    def plan(self, model: GenerativeModel, qs: list, rng: np.random.Generator | None = None) -> Plan:
        """Score the first actions: ``Plan.policies`` ``(U, 1, num_factors)``, ``Plan.G`` the root's Q.

        ``rng`` (an ``np.random.Generator``) is needed only with ``sample_outcomes``."""
        result = self.search(model, qs, rng)
        root = result.root
        return Plan(root.Q.copy(), result.actions[:, None, :],
                    {"immediate": root.G_step.copy(), "visits": root.visits.astype(float)})

    def search(self, model: GenerativeModel, qs: list, rng: np.random.Generator | None = None) -> SearchResult:
        """Run up to ``simulations`` simulations from belief ``qs`` (one ``(num_states[f],)`` vector per factor)."""
        qs = check_beliefs(check_is_model(model), qs, "qs")
        check_counts(model, check_terms(self.efe_terms))  # validated once: the nodes' one-step G trust them
        if self.sample_outcomes and not isinstance(rng, np.random.Generator):
            raise ParameterError(f"MCTS(sample_outcomes=True) draws outcomes: plan needs an np.random.Generator "
                                 f"rng, got {rng!r}")
        actions = enumerate_policies(model.num_controls, 1, self.control_factors)[:, 0, :]  # (U, F)
        prior = self._action_prior(model, len(actions))
        root = Node(list(qs), 0)
        expanded = 0
        for simulation in range(self.simulations):
            if root.finished:
                return SearchResult(root, actions, simulation, expanded)
            path, node = [], root
            while node.expanded:
                u = self._select_action(node, prior)
                k = self._select_outcome(node, u, rng)
                path.append((node, u, k))
                if k not in node.children[u]:
                    node.children[u][k] = Node(self._posterior(model, node, u, k), node.depth + 1)
                node = node.children[u][k]
            self._expand(model, node, actions)
            expanded += 1
            for parent, u, k in reversed(path):
                parent.visits[u] += 1
                parent.child_visits[u][k] += 1
                self._backup(parent, u)
        return SearchResult(root, actions, self.simulations, expanded)

    # ------------------------------------------------------------------------------------------------------

    def _action_prior(self, model, num_actions):
        """P(u) ``(U,)``: E when it is used and given, else uniform."""
        if not self.use_E or model.E is None:
            return np.full(num_actions, 1.0 / num_actions)
        if len(model.E) != num_actions:
            raise PolicyError(f"MCTS(use_E=True) reads E as a prior over the {num_actions} first actions, but E "
                              f"has {len(model.E)} entries; give one per first action or set use_E=False")
        return np.asarray(model.E, dtype=float)

    def _expand(self, model, node, actions):
        """G_1, predicted beliefs and kept outcomes of every action of ``node``; a node at the last depth is
        finished at once (its children are leaves worth 0)."""
        U = len(actions)
        node.G_step = prefix_tree_efe(model_at_depth(model, node.depth), node.qs, actions[:, None, :],
                                      self.efe_terms, self.options)[0]  # (U,)
        node.prior = predict_policies(model, [np.broadcast_to(q, (U, q.size)) for q in node.qs], actions)
        qo = [batch_contract(A_m, [node.prior[f] for f in deps])  # (U, num_obs[m])
              for A_m, deps in zip(model.A, model.A_dependencies, strict=True)]
        node.outcomes, node.probs = [], []
        for u in range(U):
            combos, p = self._tree.outcomes([qo_m[u] for qo_m in qo])
            node.outcomes.append(combos)
            node.probs.append(p)
        node.children = [{} for _ in range(U)]
        node.child_visits = [np.zeros(len(p), dtype=np.int64) for p in node.probs]
        node.visits = np.zeros(U, dtype=np.int64)
        kept = np.array([len(p) > 0 for p in node.probs])
        node.Q = np.where(kept, node.G_step, float(self.prune_penalty))
        last = node.depth + 1 == self.depth
        node.action_finished = ~kept | last
        node.expanded = True
        self._value(node)

    def _select_action(self, node, prior):
        """PUCT over the unfinished actions (lowest index on ties)."""
        bonus = self.exploration * prior * np.sqrt(node.visits.sum()) / (1 + node.visits)
        return int(np.argmax(np.where(node.action_finished, -np.inf, -node.Q + bonus)))

    def _select_outcome(self, node, u, rng):
        """An unfinished outcome below action ``u``: drawn from its probabilities, or the most under-visited."""
        p, open_ = node.probs[u], np.ones(len(node.probs[u]), dtype=bool)
        for k, child in node.children[u].items():
            open_[k] = not child.finished
        if self.sample_outcomes:
            weights = np.where(open_, p, 0.0)
            return int(cast(np.random.Generator, rng).choice(len(p), p=weights / weights.sum()))
        lag = p - node.child_visits[u] / (node.visits[u] + 1)
        return int(np.argmax(np.where(open_, lag, -np.inf)))

    def _posterior(self, model, node, u, k):
        """The belief after action ``u`` and outcome combination ``k``: state inference from the predicted belief."""
        method = cast(FixedPoint, self.inference)  # a NumPy state inference: guard and __call__
        o = node.outcomes[u][k]
        log_lik = [method.guard(A_m[o_m]) for A_m, o_m in zip(model.A, o, strict=True)]  # ln A[o]
        return method(log_lik, [method.guard(q[u]) for q in node.prior], model.A_dependencies)

    def _backup(self, node, u):
        """Q(b, u) from the children seen so far, then G(b) and whether the node is finished."""
        children = node.children[u]
        ks = np.fromiter(sorted(children), dtype=np.int64, count=len(children))
        p, G = node.probs[u][ks], np.array([children[k].G for k in ks])
        future = p @ G
        if len(ks) < len(node.probs[u]):  # the unseen outcomes count the seen ones' weighted mean
            future *= node.probs[u].sum() / p.sum()
        node.Q[u] = node.G_step[u] + future
        node.action_finished[u] = len(ks) == len(node.probs[u]) and all(c.finished for c in children.values())
        self._value(node)

    def _value(self, node):
        """G(b) = sum_u softmax(-gamma Q)_u Q_u; finished once every action is."""
        node.G = float(softmax(-self.gamma * node.Q) @ node.Q)
        node.finished = bool(node.action_finished.all())
