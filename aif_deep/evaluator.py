"""The policy evaluator: G and its terms for a batch of beliefs against every policy of a horizon at once.

Policies that share a prefix share its computation. The action sequences form a tree: depth ``t`` holds one
node per distinct prefix ``(u_1, ..., u_t)``, with the beliefs ``q(s_t | prefix)`` and the EFE terms summed
along the path. The tree is expanded depth by depth: every node's beliefs are predicted under all controls
at once (``predict_all``), each child picks its parent's row for its action, and the child's step terms are
added to its parent's sums. The leaves are the policies. With ``K`` joint actions the full tree has
``K + K^2 + ... + K^H`` nodes, about ``K / (K - 1)`` times the number of policies, against ``H`` times
for evaluating every policy from the root.

Work is chunked to a memory budget: the policies, in lexicographic order (``aif.enumerate_policies``'s),
are cut into runs of consecutive policies whose subtree fits; a run recomputes only the few ancestors it
shares with the previous run. Enumerated policies are never materialised beyond one run.

Each step's terms are ``aif_deep.efe.step_terms``; ``aif.TerminalValue(V, discount)`` adds
``discount^H V(q(s_H | pi))`` with ``V`` from beliefs ``(N, *batch, S_f)`` to ``(N, *batch)``, and
``aif.efe.GoalDivergence(ln_p, w)`` adds ``w KL[q(s_H | pi) || p_g]`` (``efe.terminal_terms``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aif.efe import DEFAULT_TERMS, EFEOptions, Term
from aif.errors import PolicyError

from . import checks, efe
from .full_tree import PolicyEvaluator, default_budget
from .model import BeliefModel, TabularModel


def _bytes_per_leaf(model, batch_numel, itemsize, terms, options):
    """A generous estimate of the bytes one node of the deepest level costs in flight."""
    S, U, O = model.num_states, model.num_controls, model.num_obs
    per = sum(s * (u + 3) for s, u in zip(S, U, strict=True))  # beliefs, their predictions under every control
    for m, deps in enumerate(model.A_dependencies):
        per += O[m] * 4 + 3 * math.prod(S[f] for f in deps)  # q(o) and the joint belief
    if efe.needs(terms, model, options)[0]:
        per += 2 * math.prod(O) * max(S) + math.prod(S)
    return 3 * itemsize * batch_numel * (per + 16)


def _enumerated_rows(start, stop, controls, horizon, device):
    """Rows ``start:stop`` of ``aif.enumerate_policies(controls, horizon)``, ``(n, H, F)``, on ``device``."""
    dims = list(controls) * horizon
    strides = [math.prod(dims[j + 1:]) for j in range(len(dims))]
    idx = torch.arange(start, stop, device=device)
    digits = (idx[:, None] // torch.tensor(strides, device=device)) % torch.tensor(dims, device=device)
    return digits.reshape(-1, horizon, len(controls))


def _prefix_tree(rows):
    """The distinct prefixes of lexicographically sorted policies ``rows`` (n, H, F), depth by depth.

    Returns a list over depths ``t = 0..H-1`` of ``(parent, action, node_of_row)``: for each node at depth
    ``t + 1`` (prefix of length ``t + 1``), the index of its parent at depth ``t`` and its action vector
    ``(N_{t+1}, F)``; and for each row its node at depth ``t + 1``.
    """
    n, H, _ = rows.shape
    new = torch.zeros(n, dtype=torch.bool, device=rows.device)
    new[0] = True
    node_of_row = torch.zeros(n, dtype=torch.long, device=rows.device)
    out = []
    for t in range(H):
        changed = torch.zeros_like(new)
        changed[1:] = (rows[1:, t] != rows[:-1, t]).any(-1)
        new = new | changed
        starts = torch.nonzero(new).squeeze(-1)  # first row of each prefix of length t + 1
        parent = node_of_row[starts]
        node_of_row = torch.cumsum(new.long(), 0) - 1
        out.append((parent, rows[starts, t], node_of_row))
    return out


def evaluate_policies(model: BeliefModel, qs: list, policies: object = None, horizon: int | None = None,
                      terms: tuple[Term, ...] = DEFAULT_TERMS, options: EFEOptions | None = None,
                      control_factors: list | None = None, memory_budget: int | None = None,
                      with_terms: bool = True, check_values: bool = True) -> tuple[torch.Tensor, dict]:
    """Expected free energy of every policy for a batch of beliefs, with its terms, sharing prefixes.

    Args:
        model: a ``TabularModel`` (or any ``BeliefModel``).
        qs: current beliefs, one tensor ``(*batch, S_f)`` per factor (``batch`` may be ``()``).
        policies: explicit int array ``(P, H, num_factors)``; or ``None`` to enumerate all policies of
            ``horizon`` (in ``aif.enumerate_policies``'s order, over ``control_factors``; a ``TabularModel``'s
            go to ``PolicyEvaluator``).
        horizon: the horizon of the enumerated policies.
        terms: ``aif.efe`` term objects (``aif.Utility()``, ``aif.InfoGain(joint=...)``, ``aif.Risk()``,
            ``aif.Ambiguity()``, ``aif.Novelty("A"|"B", wnorm)``, ``aif.InductiveCost``, ``aif.TerminalValue``);
            the novelty terms need a model with Dirichlet counts (``TabularModel.pA``/``pB``).
        options: ``aif.EFEOptions`` (normalisation of C, log guards).
        memory_budget: bytes of intermediates per chunk; by default 40% of the free GPU memory, or 1 GiB
            on the CPU.
        with_terms: also return the terms per policy (``False`` saves their memory).
        check_values: check that the beliefs are probability vectors (``aif``'s rule; one host synchronisation);
            ``False`` checks their shapes only (the Agent, whose beliefs are its own, and other hot loops).

    Returns:
        ``(G, terms)``: ``G`` of shape ``(*batch, P)``, lower is better; ``terms`` a dict of tensors of the
        same shape, summed over the horizon: ``risk``, ``ambiguity``, ``utility``, ``state_info_gain`` and the
        keys of the extra terms (``terminal_value`` discounted, as it enters G).
    """
    options = EFEOptions() if options is None else options
    tabular = isinstance(model, TabularModel)
    terms = efe.prepare_terms(model, terms, tabular)
    qs = checks.beliefs(model, qs, "qs", values=check_values)
    batch = checks.belief_batch(model, qs)
    device, dtype = qs[0].device, qs[0].dtype
    # The tree's node axis goes in front of the batch: beliefs shared by a batch of agents are expanded first.
    qs = [q.expand(*batch, q.shape[-1]) for q in qs]

    order = None
    if policies is None:
        if horizon is None or int(horizon) != horizon or horizon < 1:
            raise PolicyError(f"give policies or a positive integer horizon, got horizon={horizon!r}")
        H = int(horizon)
        if isinstance(model, TabularModel):
            return PolicyEvaluator(model, H, terms, options, control_factors, memory_budget,
                                   cuda_graph=False)(qs, with_terms)
        controls = list(model.num_controls)
        if control_factors is not None:
            controls = [u if f in control_factors else 1 for f, u in enumerate(controls)]
        P = math.prod(controls) ** H
        sorted_policies = None
    else:
        policies = checks.policies(model, policies)
        P, H, _ = policies.shape
        keys = policies.reshape(P, -1)
        # Sorted lexicographically iff, for each pair of neighbours, the first differing entry increases.
        d = np.diff(keys, axis=0)
        first = (d != 0).argmax(axis=1)
        if (d[np.arange(len(d)), first] < 0).any():
            order = np.lexsort(keys.T[::-1])
        sorted_policies = torch.as_tensor(policies if order is None else policies[order], device=device)

    budget = default_budget(device) if memory_budget is None else int(memory_budget)
    per_leaf = _bytes_per_leaf(model, math.prod(batch), torch.finfo(dtype).bits // 8, terms, options)
    chunk = int(max(1, min(P, budget // per_leaf)))

    names = [*efe.BASE, *dict.fromkeys(t.key for t in terms if t.key not in efe.BASE and t.key not in
                                       ("risk", "state_info_gain"))]
    out = {k: torch.empty((*batch, P), device=device, dtype=dtype) for k in names} if with_terms else {}
    G = torch.empty((*batch, P), device=device, dtype=dtype)
    place = (None if order is None else torch.as_tensor(order, device=device))
    prep = efe.prepare(model, terms, qs) if tabular else {}
    for start in range(0, P, chunk):
        stop = min(P, start + chunk)
        rows = (_enumerated_rows(start, stop, controls, H, device) if sorted_policies is None
                else sorted_policies[start:stop])
        sums = _evaluate_rows(model, qs, rows, terms, options, prep, tabular)
        named = efe.named_terms(sums, terms)
        G_rows = sum(t.sign * named[t.key] for t in terms)
        idx = torch.arange(start, stop, device=device) if place is None else place[start:stop]
        G.index_copy_(-1, idx, G_rows.expand(stop - start, *batch).movedim(0, -1))
        for k in out:
            out[k].index_copy_(-1, idx, sums[k].expand(stop - start, *batch).movedim(0, -1))
    if not with_terms:
        return G, {}
    return G, efe.named_terms(out, terms)


def _evaluate_rows(model, qs, rows, terms, options, prep, tabular):
    """Summed terms for sorted policies ``rows`` (n, H, F): a dict of ``(n, *batch)`` tensors (the columns of
    ``efe.step_terms`` and the discounted terminal value)."""
    nodes = [q[None] for q in qs]  # (N_t, *batch, S_f), one node at the root
    sums: dict = {}
    for t, (parent, action, node_of_row) in enumerate(_prefix_tree(rows)):
        n_parents = nodes[0].shape[0]
        child_rows = [action[:, f] * n_parents + parent for f in range(len(nodes))]  # rows of (U_f * N_t)

        def select(per_control):  # (U_f, N_t, *batch, S_f) per factor -> (N_{t+1}, *batch, S_f)
            return [x.reshape(-1, *x.shape[2:]).index_select(0, r) for x, r in zip(per_control, child_rows,
                                                                                   strict=True)]

        children = select(model.predict_all(nodes))
        W_prev = select(model.replace(B=prep["pB"]).predict_all(nodes)) if "pB" in prep else None
        step = efe.step_terms(model, children, t, terms, options, prep, W_prev, tabular=tabular)
        sums = step if not sums else {k: sums[k].index_select(0, parent) + step[k] for k in step}
        nodes = children
    leaves = {k: v.index_select(0, node_of_row) for k, v in sums.items()}
    for key, value in efe.terminal_terms(terms, rows.shape[1], nodes[0]):
        leaves[key] = value(nodes).index_select(0, node_of_row)
    return leaves
