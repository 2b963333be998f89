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

Optional terminal value: ``G(pi) = sum_t g_t(pi) + discount^H V(q(s_H | pi))`` with ``V`` any callable from
beliefs (one ``(N, *batch, S_f)`` tensor per factor) to values ``(N, *batch)``, e.g. a learned EFE-to-go.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aif.control import COST_TERMS, DEFAULT_TERMS, EFEOptions
from aif.errors import ParameterError, PolicyError

from .full_tree import PolicyEvaluator, default_budget, unsupported
from .learning import novelty_weights
from .model import BeliefModel, check_beliefs, contract, sum_against

SUPPORTED_TERMS = ("utility", "state_info_gain", "risk", "ambiguity", "pA_info_gain", "pB_info_gain")
PARAMETER_TERMS = ("pA_info_gain", "pB_info_gain")


def _check_terms(terms, model):
    terms = tuple(terms)
    unknown = [t for t in terms if t not in SUPPORTED_TERMS]
    if unknown or not terms:
        raise ParameterError(f"unknown EFE term {unknown[0]!r}; choose from {SUPPORTED_TERMS}"
                             if unknown else "terms must name at least one EFE term")
    for name in PARAMETER_TERMS:
        counts = name[:2]
        if name in terms and getattr(model, counts, None) is None:
            raise ParameterError(f"the term {name!r} needs Dirichlet counts, but the model has no {counts} "
                                 f"(give TabularModel {counts}=..., or build it from an aif model with {counts})")
    return terms


def check_policies(model: BeliefModel, policies) -> np.ndarray:
    """Policies as an int array ``(P, H, num_factors)`` with every action in range."""
    if isinstance(policies, torch.Tensor):
        policies = policies.detach().cpu().numpy()
    policies = np.asarray(policies)
    F = len(model.num_controls)
    if policies.ndim != 3 or policies.shape[2] != F or policies.shape[0] == 0 or policies.shape[1] == 0:
        raise PolicyError(f"policies must have shape (num_policies, horizon, {F}), got {policies.shape}")
    if not np.issubdtype(policies.dtype, np.integer):
        raise PolicyError(f"policies must hold integer actions, got dtype {policies.dtype}")
    for f, u in enumerate(model.num_controls):
        bad = (policies[:, :, f] < 0) | (policies[:, :, f] >= u)
        if bad.any():
            p, t = (int(i) for i in np.argwhere(bad)[0])
            raise PolicyError(f"policy {p} takes action {policies[p, t, f]} at step {t} for factor {f}, which "
                              f"has {u} controls (0 to {u - 1})")
    return policies.astype(np.int64)


def _bytes_per_leaf(model, batch_numel, itemsize, options):
    """A generous estimate of the bytes one node of the deepest level costs in flight."""
    S, U, O = model.num_states, model.num_controls, model.num_obs
    per = sum(s * (u + 3) for s, u in zip(S, U))  # beliefs, their predictions under every control
    for m, deps in enumerate(model.A_dependencies):
        sizes = sorted((S[f] for f in deps), reverse=True)
        per += O[m] * (2 + math.prod(sizes[1:]))  # q(o) and the contraction's intermediate
        if options.guards == "legacy":
            per += 3 * math.prod(sizes)
    if options.info_gain == "joint" and len(O) > 1:
        per += 2 * math.prod(O) * max(S)
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


def evaluate_policies(model: BeliefModel, qs, policies=None, horizon=None, terms=DEFAULT_TERMS, options=None,
                      terminal_value=None, discount: float = 1.0, control_factors=None, memory_budget=None,
                      with_terms: bool = True):
    """Expected free energy of every policy for a batch of beliefs, with its terms, sharing prefixes.

    Args:
        model: a ``TabularModel`` (or any ``BeliefModel``).
        qs: current beliefs, one tensor ``(*batch, S_f)`` per factor (``batch`` may be ``()``).
        policies: explicit int array ``(P, H, num_factors)``; or ``None`` to enumerate all policies of
            ``horizon`` (in ``aif.enumerate_policies``'s order, over ``control_factors``).
        horizon: the horizon of the enumerated policies.
        terms: the terms that make up G, as in ``aif.expected_free_energy`` (``utility``,
            ``state_info_gain``, ``pA_info_gain``, ``pB_info_gain`` enter with a minus sign; ``risk``,
            ``ambiguity`` with a plus sign). The parameter terms need a model with Dirichlet counts
            (``TabularModel.pA``/``pB``) and weigh them by ``options.wnorm``.
        options: ``aif.EFEOptions`` (normalisation of C, per-modality or joint information gain, log guards).
        terminal_value: optional ``V(qs_H) -> (N, *batch)``, added as ``discount**H * V``.
        discount: the discount of the terminal value.
        memory_budget: bytes of intermediates per chunk; by default 40% of the free GPU memory, or 1 GiB
            on the CPU.
        with_terms: also return the terms per policy (``False`` saves their memory).

    Returns:
        ``(G, terms)``: ``G`` of shape ``(*batch, P)``, lower is better; ``terms`` a dict of tensors of the
        same shape, summed over the horizon: ``risk``, ``ambiguity``, ``utility``, ``state_info_gain``
        (``risk + ambiguity = -(utility + state_info_gain)``), the parameter terms that ``terms`` names, and
        ``terminal_value`` when given.
    """
    options = EFEOptions() if options is None else options
    terms = _check_terms(terms, model)
    qs, batch = check_beliefs(model, qs)
    device, dtype = qs[0].device, qs[0].dtype
    # The tree's node axis goes in front of the batch: beliefs shared by a batch of agents are expanded first.
    qs = [q.expand(*batch, q.shape[-1]) for q in qs]

    if policies is None and unsupported(model, terms, options) is None:
        return PolicyEvaluator(model, horizon, terms, options, control_factors, terminal_value, discount,
                               memory_budget, cuda_graph=False)(qs, with_terms)
    order = None
    if policies is None:
        if horizon is None or int(horizon) != horizon or horizon < 1:
            raise PolicyError(f"give policies or a positive integer horizon, got horizon={horizon!r}")
        H = int(horizon)
        controls = list(model.num_controls)
        if control_factors is not None:
            controls = [u if f in control_factors else 1 for f, u in enumerate(controls)]
        P = math.prod(controls) ** H
        sorted_policies = None
    else:
        policies = check_policies(model, policies)
        P, H, _ = policies.shape
        keys = policies.reshape(P, -1)
        # Sorted lexicographically iff, for each pair of neighbours, the first differing entry increases.
        d = np.diff(keys, axis=0)
        first = (d != 0).argmax(axis=1)
        if (d[np.arange(len(d)), first] < 0).any():
            order = np.lexsort(keys.T[::-1])
        sorted_policies = torch.as_tensor(policies if order is None else policies[order], device=device)

    budget = default_budget(device) if memory_budget is None else int(memory_budget)
    per_leaf = _bytes_per_leaf(model, math.prod(batch), torch.finfo(dtype).bits // 8, options)
    chunk = int(max(1, min(P, budget // per_leaf)))

    parameter_terms = [t for t in PARAMETER_TERMS if t in terms]
    names = (["utility", "state_info_gain", "ambiguity"] + parameter_terms
             + (["terminal_value"] if terminal_value is not None else []))
    out = {k: torch.empty((*batch, P), device=device, dtype=dtype) for k in names} if with_terms else {}
    G = torch.empty((*batch, P), device=device, dtype=dtype)
    place = (None if order is None else torch.as_tensor(order, device=device))
    novelty = _novelty_weights(model, parameter_terms, options)
    for start in range(0, P, chunk):
        stop = min(P, start + chunk)
        rows = (_enumerated_rows(start, stop, controls, H, device) if sorted_policies is None
                else sorted_policies[start:stop])
        sums = _evaluate_rows(model, qs, rows, options, terminal_value, novelty)
        G_rows = _combine(sums, terms, discount ** H)
        idx = torch.arange(start, stop, device=device) if place is None else place[start:stop]
        G.index_copy_(-1, idx, G_rows.expand(stop - start, *batch).movedim(0, -1))
        for k in out:
            out[k].index_copy_(-1, idx, sums[k].expand(stop - start, *batch).movedim(0, -1))
    if with_terms:
        out["risk"] = -out["utility"] - out["state_info_gain"] - out["ambiguity"]
    return G, out


def _combine(sums, terms, weight):
    G = 0.0
    for name in terms:
        if name == "risk":
            G = G - sums["utility"] - sums["state_info_gain"] - sums["ambiguity"]
        else:
            G = G + (sums[name] if name in COST_TERMS else -sums[name])
    if "terminal_value" in sums:
        G = G + weight * sums["terminal_value"]
    return G


def _evaluate_rows(model, qs, rows, options, terminal_value, novelty=None):
    """Summed step terms for sorted policies ``rows`` (n, H, F): dict of ``(n, *batch)`` tensors.

    ``novelty``: ``{"pA": [W_m], "pB": [W_f]}`` (``_novelty_weights``) for the parameter terms it holds."""
    novelty = novelty or {}
    nodes = [q[None] for q in qs]  # (N_t, *batch, S_f), one node at the root
    sums = None
    for t, (parent, action, node_of_row) in enumerate(_prefix_tree(rows)):
        n_parents = nodes[0].shape[0]
        child_rows = [action[:, f] * n_parents + parent for f in range(len(nodes))]  # rows of (U_f * N_t)

        def select(per_control):  # (U_f, N_t, *batch, S_f) per factor -> (N_{t+1}, *batch, S_f)
            return [x.reshape(-1, *x.shape[2:]).index_select(0, r) for x, r in zip(per_control, child_rows)]

        children = select(model.predict_all(nodes))
        step = model.outcome_terms(children, t, options)
        step = {"utility": step["utility"], "ambiguity": step["ambiguity"],
                "state_info_gain": step["entropy"] - step["ambiguity"]}
        if "pA" in novelty:
            step["pA_info_gain"] = _pA_info_gain(model, novelty["pA"], children)
        if "pB" in novelty:
            weighted = select(_predict_all_with(model, novelty["pB"], nodes))
            step["pB_info_gain"] = -sum((q * w).sum(-1) for q, w in zip(children, weighted))
        sums = step if sums is None else {k: sums[k].index_select(0, parent) + step[k] for k in step}
        nodes = children
    leaves = {k: v.index_select(0, node_of_row) for k, v in sums.items()}
    if terminal_value is not None:
        leaves["terminal_value"] = terminal_value(nodes).index_select(0, node_of_row)
    return leaves


def _novelty_weights(model, parameter_terms, options):
    """The novelty weights W of the counts the parameter terms need, once per call (not per depth or chunk)."""
    out = {}
    if "pA_info_gain" in parameter_terms:
        out["pA"] = [novelty_weights(p, p.ndim - len(d) - 1, options.wnorm)
                     for p, d in zip(model.pA, model.A_dependencies)]
    if "pB_info_gain" in parameter_terms:
        out["pB"] = [novelty_weights(p, p.ndim - len(d) - 2, options.wnorm)
                     for p, d in zip(model.pB, model.B_dependencies)]
    return out


def _pA_info_gain(model, W_A, qs):
    """-sum_m sum_o q(o_m) sum_s W_A[m][o, s] q(s): the novelty of A at one step, ``(*lead,)``.

    ``q(o_m)`` is predicted by the model's ``A`` (as ``aif.expected_free_energy`` does).
    """
    gain = 0.0
    for A_m, W, deps in zip(model.A, W_A, model.A_dependencies):
        qs_deps = [qs[f] for f in deps]
        gain = gain - (contract(A_m, qs_deps) * contract(W, qs_deps)).sum(-1)
    return gain


def _predict_all_with(model, W_B, qs):
    """``predict_all`` with the novelty weights ``W_B`` of ``pB`` in place of ``B``: ``(U_f, *lead, S_f)`` per factor.

    Contracted with the predicted next beliefs it gives the novelty of B for each control,
    -sum_{s', s} q(s') W(pB[f])[s', s, u] q(s).
    """
    out = []
    for W, deps in zip(W_B, model.B_dependencies):
        k = len(deps)
        out.append(sum_against(W.movedim(-1, -2 - k), [qs[g] for g in deps], keep=2).movedim(-2, 0))
    return out
