"""``PolicyEvaluator``: G of every policy of a horizon for a tabular model, by broadcasting, replayable on CUDA.

The general evaluator (``evaluator.py``) handles any policy list and any ``BeliefModel`` by gathering each
child's parent row. When the policies are *all* action sequences of a horizon and the model is tabular, the
tree has a regular shape that needs no gathering: with ``K`` joint actions, node ``i`` at depth ``t`` has the
children ``K i, ..., K i + K - 1`` at depth ``t + 1`` (lexicographic order, ``aif.enumerate_policies``'s), so
beliefs laid out as ``(batch, nodes, S)`` and predicted under every action as ``(batch, nodes, K, S)`` are
already the next depth, and the sums along the paths are a broadcast addition. The leaves come out in the order
of the policies.

The terms are ``aif_deep.efe``'s definitions. Those linear in the joint belief over a modality group's factors
are folded into one matrix ``L = [q(o_m) | utility | ambiguity]``, the definitions evaluated on the one-hot basis
of the joint states; one elementwise pass turns q(o) into q(o) ln q(o). The nonlinear terms (entropy and
ambiguity under a state floor, the joint information gain) and the parameter terms (novelty, inductive cost)
are computed per node by the definitions (general lane). The paths carry these columns summed; at the leaves
one matrix product maps them to G (or to the terms and G).

Two lanes. The general lane predicts every factor and forms joint beliefs at every depth. The fused lane
serves the usual layout (one controlled factor ``f``; the other factors uncontrolled, so their beliefs are the
same under every policy: "static"): their beliefs at every depth come from one product with the powers of
their B; the joint of each node's belief with theirs at the next depth, times the shared matrix
``F_t = [B_f | B_f L_t]`` (one matrix product per depth, for every node of every belief), gives each child's belief
and its outcome columns, followed by one in-place ``xlogy`` and one addition (the linear terms only; otherwise
the general lane runs). With ``check_values=False`` (the Agent's call; the
default checks the beliefs' values first) the call has no host synchronisation, so on CUDA
it is captured as a CUDA graph and replayed (``cuda_graph=True``): the first call runs eagerly (no compilation
step), the second captures, later calls replay.

Work is chunked to a memory budget by descending one subtree at a time where the full next depth would not fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aif.checks import check_integer
from aif.control import enumerate_policies
from aif.efe import DEFAULT_TERMS, EFEOptions, InductiveCost, Novelty, Term, TerminalValue
from aif.errors import ModelError, ParameterError, PolicyError
from aif.inference import modality_groups

from . import checks, efe
from .model import TabularModel
from .threads import threads_for

CPU_BUDGET = 1 << 30  # bytes of intermediate tensors per chunk on the CPU
CUDA_BUDGET_FRACTION = 0.4  # of the free GPU memory

def default_budget(device) -> int:
    """Bytes of intermediate tensors an evaluation may hold at once: 40% of the free GPU memory, or 1 GiB."""
    if device.type == "cuda":
        return int(CUDA_BUDGET_FRACTION * torch.cuda.mem_get_info(device)[0])
    return CPU_BUDGET


class PolicyEvaluator:
    """Expected free energy of every policy of ``horizon`` for a batch of beliefs, for one tabular model.

    Build it once, call it at every step: the matrices it multiplies by are computed here, and on CUDA the
    second call captures the whole evaluation as a CUDA graph that later calls replay.

    Args:
        model: a ``TabularModel`` (one agent, or a batch with its own parameters).
        horizon: the policies are all ``prod(controls)**horizon`` action sequences, in
            ``aif.enumerate_policies``'s order.
        terms: ``aif.efe`` term objects, as in ``evaluate_policies`` (every term, ``aif.TerminalValue`` and
            ``aif.efe.GoalDivergence`` included).
        options: ``aif.EFEOptions`` (any guards). Terms linear in the joint beliefs are folded into matrices;
            the nonlinear ones (the outcome entropy under a state floor, the joint information gain, novelty,
            the inductive cost) are computed per node by ``aif_deep.efe``'s definitions, in the general lane.
        control_factors: the factors whose actions vary (the others take action 0); all by default.
        memory_budget: bytes of intermediates; by default 40% of the free GPU memory, or 1 GiB on the CPU.
        cuda_graph: capture and replay a CUDA graph (default: on when the model is on a CUDA device and
            there is no ``TerminalValue``, whose callable may not be capturable; a ``GoalDivergence`` is). Calls
            that need gradients (beliefs or model arrays that require them) always run eagerly.

    Calling it with beliefs ``qs`` (one tensor ``(*batch, S_f)`` per factor) returns ``(G, terms)`` as
    ``evaluate_policies`` does. Each batch shape (and each of ``__call__``/``posterior``) has its own CUDA graph,
    captured at its second call; a graph holds its intermediates' memory for the evaluator's lifetime. The model's
    arrays are read when the evaluator is built: changing them in place afterwards raises a ``ParameterError``; build a
    new evaluator for a new model.
    """

    def __init__(self, model: TabularModel, horizon: int, terms: tuple[Term, ...] = DEFAULT_TERMS,
                 options: EFEOptions | None = None, control_factors: list | None = None,
                 memory_budget: int | None = None, cuda_graph: bool | None = None) -> None:
        if not isinstance(model, TabularModel):
            raise ModelError(f"PolicyEvaluator needs a TabularModel, got {type(model).__name__}; use "
                             f"evaluate_policies")
        self.options = EFEOptions() if options is None else options
        self.terms = efe.prepare_terms(model, terms, tabular=True)
        horizon = check_integer(horizon, "horizon", error=PolicyError)  # aif's rules and messages
        enumerate_policies(model.num_controls, 1, control_factors)  # control_factors: valid factor indices
        self.model, self.horizon = model, int(horizon)
        controls = list(model.num_controls)
        if control_factors is not None:
            controls = [u if f in control_factors else 1 for f, u in enumerate(controls)]
        self.controls = controls
        self.K = math.prod(controls)
        self.num_policies = self.K ** self.horizon
        # the terminal terms as they enter G (ln p_g of a GoalDivergence put on the device here: none per call)
        self._terminal = efe.terminal_terms(self.terms, self.horizon, model.A[0])
        self._node_base = efe.needs(self.terms, model, self.options)[1]
        self._extra = [t.key for t in self.terms if isinstance(t, (Novelty, InductiveCost))]
        self._node_columns = (["ambiguity", "entropy"] if self._node_base else []) + self._extra
        self._weights = efe.parameter_weights(model, self.terms)
        self._inductive = [([torch.as_tensor(np.asarray(I, float)).to(model.A[0]) for I in t.I], t.epsilon)
                           for t in self.terms if isinstance(t, InductiveCost)]  # on the device: none per call
        self.memory_budget = memory_budget
        callable_value = any(isinstance(t, TerminalValue) for t in self.terms)
        self.cuda_graph = (model.device.type == "cuda" and not callable_value) if cuda_graph is None \
            else bool(cuda_graph)
        if self.cuda_graph and model.device.type != "cuda":
            raise ParameterError(f"cuda_graph=True needs a model on a CUDA device, this one is on {model.device}")
        self._sources = [t for t in (*model.A, *model.B, *model.C, model.E) if t is not None]
        self._versions = [t._version for t in self._sources]
        self._static = _static_factors(model.B_dependencies, controls)
        self._fused = None if self._node_columns else self._fused_factor()
        self._build_matrices()
        self._project_terms = torch.cat([self._to_terms, self._to_G[:, None]], 1)  # carried columns -> (terms, G)
        self._ln_E = None if model.E is None else torch.log(model.E)
        self._batched: dict = {}  # flattened batch -> matrices, see _matrices_for
        self._graphs: dict = {}
        self._calls: dict = {}  # (batch, what) -> (CUDA graph, its inputs, its outputs); calls

    # --- set-up -----------------------------------------------------------------------------------------

    def _build_matrices(self):
        """Transition matrices ``(mb, S_deps, U_f * S_f)`` and, per group of modalities with the same factors,
        the outcome matrices ``(mb, S_deps, sum O_m + 2)`` (one per step when C varies over time)."""
        m, opts = self.model, self.options
        nb = len(m.batch_shape)

        def as_matrix(B_f, deps, f):  # (*mb, S_f, *S_deps, U) -> (*mb, prod S_deps, U * S_f)
            k, U = len(deps), self.controls[f]
            perm = [*range(nb), *range(nb + 1, nb + 1 + k), nb + 1 + k, nb]
            return list(deps), B_f[..., :U].permute(perm).reshape(*m.batch_shape, -1, U * m.num_states[f])

        self.transitions = [as_matrix(B_f, d, f) for f, (B_f, d) in enumerate(zip(m.B, m.B_dependencies, strict=True))]
        self._novelty_transitions = ([as_matrix(W, d, f) for f, (W, d) in
                                      enumerate(zip(self._weights["pB"], m.B_dependencies, strict=True))]
                                     if "pB" in self._weights else None)
        groups = modality_groups(m.A_dependencies)
        time_varying = any(C.ndim - nb == 2 for C in m.C)
        self.outcome_groups = []
        # In the fused lane the modalities that depend on the branching factor come first (see _prepare).
        for deps, mods in sorted(groups.items(), key=lambda g: self._fused is not None and self._fused not in g[0]):
            # The definitions evaluated on the one-hot basis of the joint states: q(o), utility, ambiguity.
            sizes = [m.num_states[f] for f in deps]
            idx = torch.arange(math.prod(sizes), device=m.device)
            basis = []
            for i, z in enumerate(sizes):
                digit = idx // math.prod(sizes[i + 1:]) % z
                basis.append(torch.eye(z, dtype=m.dtype, device=m.device)[digit].reshape(-1, *[1] * nb, z))
            per_step = []
            for t in range(self.horizon if time_varying else 1):
                cols, utility, ambiguity = [], 0.0, 0.0
                for mod in mods:
                    ln_C = efe.log_preferences(m.C[mod], t, nb, opts)
                    v = efe.modality_terms(m.A[mod], basis, ln_C, opts)
                    cols.append(v["qo"])
                    utility, ambiguity = utility + v["utility"], ambiguity + v["ambiguity"]
                L = torch.cat([*cols, utility[..., None], ambiguity[..., None]], -1)  # (J, *mb, sum O + 2)
                per_step.append(L.expand(-1, *m.batch_shape, -1).movedim(0, -2))
            self.outcome_groups.append((list(deps), per_step[0].shape[-1] - 2, per_step))
        # The carried columns -> (utility, ambiguity, entropy, extra terms): each group's q(o) ln q(o) columns
        # sum to minus its entropy; its utility and ambiguity columns pass through. With per-node entropy and
        # ambiguity (a state floor, the joint information gain) the groups give the utility only.
        self._columns = [*efe.BASE, *self._extra]
        blocks = []
        for _, width, _ in self.outcome_groups:
            R = torch.zeros(width + 2, len(self._columns), dtype=m.dtype, device=m.device)
            R[width, 0] = 1.0
            if not self._node_base:
                R[:width, 2] = -1.0
                R[width + 1, 1] = 1.0
            blocks.append(R)
        node = torch.zeros(len(self._node_columns), len(self._columns), dtype=m.dtype, device=m.device)
        for i, name in enumerate(self._node_columns):
            node[i, self._columns.index(name)] = 1.0
        self._to_terms = torch.cat([*blocks, node], 0)
        weights = efe.term_weights(self.terms, self._columns)
        self._to_G = self._to_terms @ torch.tensor(weights, dtype=m.dtype, device=m.device)
        self._width = self._to_terms.shape[0]
        self._fused_groups = sum(1 for deps, _, _ in self.outcome_groups if self._fused in deps)
        # Static factors in the fused lane: q_t = q_0 B^t, all depths from one product with [B, B^2, ..., B^H].
        self._powers = {}
        if self._fused is not None:
            for f in self._static:
                M, powers = self.transitions[f][1], [self.transitions[f][1]]
                for _ in range(self.horizon - 1):
                    powers.append(powers[-1] @ M)
                self._powers[f] = torch.cat(powers, -1)  # (*mb, S_f, H * S_f)
            self._build_fused()

    def _fused_factor(self):
        """The factor of the fused lane, or ``None``: one factor branches (all others are uncontrolled and
        depend on no branching factor), it and the others have no interactions in B, and every modality
        depends on at most that one branching factor (and on static factors, whose beliefs are the same for
        every policy). Then one matrix product per depth gives the children and their outcome terms."""
        m = self.model
        branching = [f for f in range(m.num_factors) if f not in self._static]
        if len(branching) != 1 or any(deps != [f] for f, deps in enumerate(m.B_dependencies)):
            return None
        return branching[0] if any(branching[0] in deps for deps in m.A_dependencies) else None

    @property
    def stale(self) -> bool:
        """Whether the model's arrays were changed in place since this evaluator was built."""
        return any(t._version != v for t, v in zip(self._sources, self._versions, strict=True))

    # --- evaluation ---------------------------------------------------------------------------------------

    def __call__(self, qs: list, with_terms: bool = True, *, check_values: bool = True) -> tuple[torch.Tensor, dict]:
        """``(G, terms)`` for beliefs ``qs`` (one tensor ``(*batch, S_f)`` per factor); see the class.
        ``check_values``: as ``evaluate_policies``' (``False``: shapes only, no host synchronisation)."""
        return self._run(qs, ("terms", with_terms), check_values)

    def posterior(self, qs: list, gamma: float = 16.0, *,
                  check_values: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G, q_pi)`` with ``q_pi = softmax(-gamma G + ln E)`` (``E`` the model's, uniform when absent),
        ``(*batch, P)`` each, in one replay on CUDA. Raises ``ParameterError`` where G is not finite."""
        G, q_pi, finite = self._run(qs, ("posterior", float(gamma)), check_values)
        if not bool(finite):
            raise ParameterError("G has a non-finite entry")
        return G, q_pi

    def _run(self, qs, what, check_values):
        """Evaluate eagerly, or through the CUDA graph of ``(batch, what)``: captured at its second call."""
        if self.stale:
            raise ParameterError("the model's arrays were changed in place after this PolicyEvaluator was built; "
                                 "build a new PolicyEvaluator for the new model")
        qs = checks.beliefs(self.model, qs, "qs", values=check_values)
        batch = checks.belief_batch(self.model, qs)
        with threads_for(math.prod(batch) * self.num_policies * self._width):  # small work: one thread
            return self._replay_or_run(qs, batch, what)

    def _replay_or_run(self, qs, batch, what):
        wants_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (*qs, *self._sources))
        if not self.cuda_graph or wants_grad:  # a replay's outputs carry no autograd graph: run eagerly
            return self._evaluate(qs, batch, what)
        key = (batch, what)
        self._calls[key] = self._calls.get(key, 0) + 1
        if key in self._graphs:
            graph, static_in, static_out = self._graphs[key]
            for dst, src in zip(static_in, qs, strict=True):
                dst.copy_(src)
            graph.replay()
        elif self._calls[key] == 1:  # the first call runs eagerly: a result without waiting for a capture
            return self._evaluate(qs, batch, what)
        else:
            static_in = [q.expand(*batch, q.shape[-1]).clone() for q in qs]
            side = torch.cuda.Stream(device=self.model.device)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
                self._evaluate(static_in, batch, what)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._evaluate(static_in, batch, what)
            self._graphs[key] = (graph, static_in, static_out)
            graph.replay()
        return _clone(static_out)

    def _evaluate(self, qs, batch, what):
        m = self.model
        b = math.prod(batch)
        X = [q.expand(*batch, q.shape[-1]).reshape(b, 1, q.shape[-1]) for q in qs]  # (b, nodes, S_f)
        mats, X, sums, constant = self._prepare(X, batch, b)
        self._prep = dict(self._weights, batch=batch)
        for I, epsilon in self._inductive:
            self._prep["inductive"] = efe.inductive_vectors(I, epsilon, [q.expand(*batch, q.shape[-1]) for q in qs])
        # The leaves keep G alone, or (utility, ambiguity, entropy, G): the carried columns are projected as
        # each chunk reaches the leaves.
        with_terms = what == ("terms", True)
        project = self._project_terms if with_terms else self._to_G[:, None]
        leaves = torch.empty(b, self.num_policies, project.shape[1], dtype=m.dtype, device=m.device)
        terminal = (torch.empty(b, self.num_policies, len(self._terminal), dtype=m.dtype, device=m.device)
                    if self._terminal else None)
        self._descend(X, sums, 0, 0, mats, self._node_capacity(b), project, leaves, terminal, batch)
        if constant is not None:  # the terms of modalities that no policy changes
            leaves += (constant @ project[sums.shape[-1]:]).unsqueeze(1)
        G = leaves[..., -1]
        if terminal is not None:
            G = G + terminal.sum(-1)
        G = G.reshape(*batch, self.num_policies)
        if what[0] == "posterior":
            if self._ln_E is not None and self._ln_E.shape[-1] != self.num_policies:
                raise ParameterError(f"the model's E has {self._ln_E.shape[-1]} entries but there are "
                                     f"{self.num_policies} policies")
            logits = -what[1] * G if self._ln_E is None else self._ln_E - what[1] * G
            return G, torch.softmax(logits, -1), torch.isfinite(G).all()
        if not with_terms:
            return G, {}
        out = efe.named_terms({k: leaves[..., i].reshape(*batch, -1) for i, k in enumerate(self._columns)},
                              [t for t in self.terms if not isinstance(t, efe.TERMINAL)])
        for i, (key, _) in enumerate(self._terminal):
            out[key] = terminal[..., i].reshape(*batch, -1)  # type: ignore[index]
        return G, out

    def _prepare(self, X, batch, b):
        """Per-call set-up: ``(mats, X, root sums, constant)``. General lane: the matrices and zero sums. Fused
        lane: the fused matrices ``F`` (``_build_fused``: ``(T, S_f * Y, U_f * C)``, or ``(b, ...)`` per agent), the
        static factors' beliefs at every depth ``Q`` (``(b, H, S_g)`` each) and the joint ``Qj`` ``(b, H, Y)`` of
        those ``F`` reads (``None`` when none); ``constant``: the summed terms of modalities on static factors
        alone, ``(b, W_c)``, or ``None``."""
        m, H, f = self.model, self.horizon, self._fused
        if f is None:
            return ("general", self._matrices_for(batch, b)), X, torch.zeros(b, 1, self._width, dtype=m.dtype,
                                                                               device=m.device), None
        flat = self._flattener(batch, b)
        # depths 1..H; a shared matrix stays 2-D, so that the product is one matrix product (not one per belief)
        Q = {s: (X[s] @ (self._powers[s] if not m.batch_shape else flat(self._powers[s]))).reshape(b, H, -1)
             for s in self._static}
        F = self._F if not m.batch_shape else flat(self._F)  # (T, S_f * Y, U * C) or (b, T, S_f * Y, U * C)
        # the joint belief of the static factors of the fused groups at each depth, (b, H, Y) (Y = 1: none)
        Qj = efe.joint([Q[s] for s in self._F_static]) if self._F_static else None
        constants = []
        for deps, width, per_step in self.outcome_groups[self._fused_groups:]:  # modalities on static factors
            L = flat(torch.stack(per_step, len(m.batch_shape)))  # (1 or b, T, prod S_deps, W)
            L = L.reshape(*L.shape[:2], *[m.num_states[d] for d in deps], width + 2).expand(L.shape[0], H,
                                                                                              *([-1] * len(deps)), -1)
            letters = "ijklmnopqr"[: len(deps)]
            spec = ",".join(["zt" + letters + "w"] + ["zt" + c for c in letters]) + "->ztw"
            out = torch.einsum(spec, L, *[Q[d] for d in deps])  # (b, H, W)
            constants.append(torch.cat([efe.xlogx(out[..., :width], self.options.guards.outcome), out[..., width:]],
                                       -1).sum(1))
        X = [X[g] if g == f else Q[g][:, :0] for g in range(m.num_factors)]  # static beliefs set per depth
        width_f = sum(w + 2 for _, w, _ in self.outcome_groups[: self._fused_groups])
        sums = torch.zeros(b, 1, width_f, dtype=m.dtype, device=m.device)
        return ("fused", F, Q, Qj), X, sums, torch.cat(constants, -1).expand(b, -1) if constants else None

    def _flattener(self, batch, b):
        """``(*mb, ...) -> (1 or b, ...)``: a shared array gets a unit axis, per-agent arrays a flat batch."""
        m = self.model
        if not m.batch_shape:
            return lambda M: M.unsqueeze(0)
        k = len(m.batch_shape)
        return lambda M: M.expand(*batch, *M.shape[k:]).reshape(b, *M.shape[k:])

    def _build_fused(self):
        """The fused lane's matrices ``(*mb, T, S_f * Y, U_f * C)``: for a parent belief over the branching
        factor, each control's child belief and the outcome columns of every modality on that factor,
        ``[B_f | B_f L_t]`` per control, for each joint state ``y`` of the static factors those modalities
        depend on (``_F_static``; a row per ``(s, y)``, multiplied at each step by the joint of the parent's belief
        and theirs: the belief block is the same for every ``y``, and summing it against a distribution over ``y``
        leaves it unchanged)."""
        m, f = self.model, self._fused
        nb, mb = len(m.batch_shape), tuple(m.batch_shape)
        S, U = m.num_states[f], self.controls[f]
        groups = self.outcome_groups[: self._fused_groups]
        self._F_static = sorted({d for deps, _, _ in groups for d in deps if d != f})
        sizes = [m.num_states[d] for d in self._F_static]
        letters = "ijklmnopqr"[: len(sizes)]
        M_f = self.transitions[f][1].reshape(*mb, S, U, S)  # (*mb, s, u, x): parent s, control u, child x
        T = max(len(per_step) for _, _, per_step in groups)
        blocks = [M_f.reshape(*mb, 1, S, U, *([1] * len(sizes)), S).expand(*mb, T, S, U, *sizes, S)]
        for deps, width, per_step in groups:
            L = torch.stack(per_step, nb)  # (*mb, T_g, prod S_deps, W)
            L = L.reshape(*L.shape[:-2], *[m.num_states[d] for d in deps], width + 2)
            own = "".join("x" if d == f else letters[self._F_static.index(d)] for d in deps)
            mine = "".join(c for c in letters if c in own)
            block = torch.einsum(f"...sux,...t{own}w->...tsu{mine}w", M_f, L)
            kept = [z if c in mine else 1 for c, z in zip(letters, sizes, strict=True)]
            shape = [*mb, block.shape[nb], S, U, *kept, width + 2]
            blocks.append(block.reshape(shape).expand(*mb, T, S, U, *sizes, width + 2))
        F = torch.cat(blocks, -1)  # (*mb, T, S, U, *sizes, C)
        F = F.movedim(nb + 2, -2)  # (*mb, T, S, *sizes, U, C)
        self._F = F.reshape(*mb, T, S * math.prod(sizes), -1)  # rows: (s, y), s slowest, as efe.joint lays them

    def _matrices_for(self, batch, b):
        """The matrices for a flattened batch of ``b``: shared ones stay ``(rows, cols)`` (one matrix product
        for all nodes of all beliefs); per-agent ones become ``(b, rows, cols)`` (a batched product)."""
        if batch not in self._batched:
            def flat(M):
                return M if not self.model.batch_shape else M.expand(*batch, *M.shape[-2:]).reshape(b, *M.shape[-2:])
            novelty = self._novelty_transitions
            self._batched[batch] = ([(d, flat(M)) for d, M in self.transitions],
                                    [(d, w, [flat(L) for L in Ls]) for d, w, Ls in self.outcome_groups],
                                    None if novelty is None else [(d, flat(M)) for d, M in novelty])
        return self._batched[batch]

    def _node_capacity(self, b):
        """How many nodes of one depth fit in the memory budget at once."""
        m = self.model
        budget = default_budget(m.device) if self.memory_budget is None else self.memory_budget
        per_node = 2 * sum(m.num_states) + 2 * self._width  # beliefs and their children, path sums
        for deps, width, _ in self.outcome_groups:
            per_node += 2 * (math.prod(m.num_states[f] for f in deps) + width + 2)  # joint belief, products
        return max(1, int(budget) // (2 * b * per_node * (torch.finfo(m.dtype).bits // 8)))

    def _descend(self, X, sums, t, offset, mats, capacity, project, leaves, terminal, batch):
        """Expand the nodes ``offset, offset + 1, ...`` of depth ``t`` (beliefs ``X[f]`` of shape
        ``(b, n or 1, S_f)``, path sums ``(b, n, W)``) to the leaves, writing the leaves' sums times
        ``project`` into ``leaves``; where the next depth would not fit ``capacity`` nodes, one chunk of nodes
        at a time."""
        n = sums.shape[1]
        if t == self.horizon:
            leaves[:, offset: offset + n] = sums @ project[: sums.shape[-1]]
            if terminal is not None:
                beliefs = _lead(X, n, batch)
                for i, (_, value) in enumerate(self._terminal):
                    terminal[:, offset: offset + n, i] = value(beliefs).reshape(n, -1).T
        elif n * self.K <= capacity or n == 1:
            X, sums = self._step(X, sums, t, mats)
            self._descend(X, sums, t + 1, offset * self.K, mats, capacity, project, leaves, terminal, batch)
        else:
            chunk = max(1, capacity // self.K)
            for start in range(0, n, chunk):
                part = [x if x.shape[1] == 1 else x[:, start: start + chunk] for x in X]
                self._descend(part, sums[:, start: start + chunk], t, offset + start, mats, capacity, project,
                              leaves, terminal, batch)

    def _step(self, X, sums, t, mats):
        """One depth down: the children's beliefs ``(b, n K or 1, S_f)`` and path sums ``(b, n K, W)``."""
        if mats[0] == "fused":
            return self._step_fused(X, sums, t, *mats[1:])
        transitions, outcomes, novelty = mats[1]
        b, n, _ = sums.shape
        children = self._branch(X, transitions, b, n)
        step = []
        for deps, width, per_step in outcomes:
            out = efe.joint([children[d] for d in deps]) @ per_step[min(t, len(per_step) - 1)]  # (b, n', width + 2)
            step += [efe.xlogx(out[..., :width], self.options.guards.outcome), out[..., width:]]
        if self._node_columns:  # the nonlinear and parameter terms, per node, by their definitions
            batch, N = self._prep["batch"], n * self.K
            W_prev = _lead(self._branch(X, novelty, b, n), N, batch) if novelty is not None else None
            v = efe.step_terms(self.model, _lead(children, N, batch), t, self.terms, self.options, self._prep,
                               W_prev, base=self._node_base)
            step.append(torch.stack([v[k].reshape(N, b).transpose(0, 1) for k in self._node_columns], -1))
        step = torch.cat([x.expand(b, n * self.K, x.shape[-1]) for x in step], -1)
        sums = sums.unsqueeze(2) + step.reshape(b, n, self.K, self._width)
        return children, sums.reshape(b, n * self.K, self._width)

    def _branch(self, X, transitions, b, n):
        """Each node's children under every joint action: ``(b, n K or 1, S_f)`` per factor."""
        children = []
        for f, (deps, M) in enumerate(transitions):
            pred = efe.joint([X[d] for d in deps]) @ M  # (b, n_f, U_f * S_f), n_f in (1, n)
            U, S = self.controls[f], self.model.num_states[f]
            if pred.shape[1] == 1 and U == 1:  # the same for every node: stays broadcast
                children.append(pred)
                continue
            own = [1] * len(self.controls)
            own[f] = U  # child k = K * parent + (u_1, ..., u_F) in lexicographic order
            children.append(pred.reshape(b, -1, *own, S).expand(b, n, *self.controls, S).reshape(b, n * self.K, S))
        return children

    def _step_fused(self, X, sums, t, F, Q, Qj):
        f = self._fused
        S, U = self.model.num_states[f], self.controls[f]
        b, n, width = sums.shape
        t_F = min(t, F.shape[-3] - 1)  # F varies with the depth only when C does
        # the parents' joint beliefs with the static factors at the children's depth, (b, n, S_f * Y), times F_t
        parents = X[f] if Qj is None else efe.joint([X[f], Qj[:, t: t + 1].expand(b, n, Qj.shape[-1])])
        Y = (parents @ F[..., t_F, :, :]).view(b, n, U, S + width)  # children, terms
        stats = Y[..., S:]
        pieces, start = [], 0
        for deps, w, _ in self.outcome_groups[: self._fused_groups]:
            qo = stats[..., start: start + w]
            if torch.is_grad_enabled() and qo.requires_grad:
                pieces += [efe.xlogx(qo, self.options.guards.outcome), stats[..., start + w: start + w + 2]]
            else:  # in place
                efe.xlogx(qo, self.options.guards.outcome, inplace=True)
            start += w + 2
        if pieces:
            stats = torch.cat(pieces, -1)
        sums = (sums.unsqueeze(2) + stats).reshape(b, n * U, width)
        X = [Y[..., :S].reshape(b, n * U, S) if g == f else Q[g][:, t: t + 1] for g in range(len(X))]
        return X, sums



def _lead(X, n, batch):
    """Beliefs ``(b, n or 1, S)`` in the definitions' layout ``(n, *batch, S)`` (nodes in front of the batch)."""
    return [x.expand(x.shape[0], n, x.shape[-1]).transpose(0, 1).reshape(n, *batch, x.shape[-1]) for x in X]


def _static_factors(B_dependencies, controls):
    """The factors whose beliefs are the same under every policy: one control, and no dependence on a factor
    whose beliefs branch."""
    static = set()
    grew = True
    while grew:
        grew = False
        for f, deps in enumerate(B_dependencies):
            if f not in static and controls[f] == 1 and all(d in static or d == f for d in deps):
                static.add(f)
                grew = True
    return static


def _clone(out):
    """Copies of a graph's outputs (the next replay overwrites them)."""
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, dict):
        return {k: v.clone() for k, v in out.items()}
    return type(out)(_clone(x) for x in out)
