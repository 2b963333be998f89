"""What the evaluator and the agent need from a model, and the tabular model that provides it in PyTorch.

Shape convention. A model may carry a batch of agents, each with its own parameters: every array has the
leading shape ``model.batch_shape`` (``()`` for one agent). Beliefs ``qs[f]`` have shape ``(*lead, S_f)``
where ``lead`` broadcasts, from the right, with ``batch_shape``: extra axes (policies, prefix-tree nodes,
trials) go in front, never between the batch and the state axis. Written for one belief, every function
below batches by broadcasting.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from aif.efe import EFEOptions
from aif.errors import ModelError
from aif.maths import LogGuard
from aif.model import GenerativeModel

from . import checks
from .efe import guarded_log, outcome_terms

Tensor = torch.Tensor


def default_device() -> torch.device:
    """``cuda`` when a GPU is present, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def sum_against(T: Tensor, qs: Sequence[Tensor], keep: int) -> Tensor:
    """Sum the last ``len(qs)`` axes of ``T`` ``(*batch, *K, S_1, ..., S_k)`` (``len(K) == keep``) against the
    beliefs ``qs[i]`` ``(*lead, S_i)``: ``(*broadcast(batch, lead), *K)``. The largest factor goes first, one pair
    of operands at a time (two-operand einsums skip opt_einsum's path search, dearer than small arithmetic)."""
    k = len(qs)
    cur = letters = _LETTERS[: keep + k]
    out = T
    for i in sorted(range(k), key=lambda i: -qs[i].shape[-1]):
        c = letters[keep + i]
        nxt = cur.replace(c, "")
        out = torch.einsum(f"...{cur},...{c}->...{nxt}", out, qs[i])
        cur = nxt
    return out


def sum_leading(T: Tensor, labels: Sequence[Any], qs: Sequence[Tensor], keep: Any = None) -> Tensor:
    """``sum_against`` with the batch LAST: sum the leading axes of ``T`` ``(*S, b)`` (axis ``i`` ranging over
    factor ``labels[i]``) against the beliefs ``qs[labels[i]]`` ``(S_i, b)``, every axis but the one labelled
    ``keep`` (``None`` labels an axis that is kept too): ``(*S_kept, b)``, largest factor first.

    The CPU layout of the batched tabular cycle (``inference.fixed_point``, ``control.predict_policies``): the sums
    over a factor's few states are reductions over a leading axis, which torch's CPU kernels vectorise across the batch,
    where a reduction over a short last axis runs one short row at a time (measured on a 2-core CPU, float64, 256
    beliefs of 4 states: a softmax 80 us against 18 us, a contraction 48 us (einsum) against 19 us)."""
    axes = list(labels)
    others = [d for d in axes if d is not None and d != keep]
    if len(others) > 1:
        others.sort(key=lambda d: -qs[d].shape[0])
    for d in others:
        i = axes.index(d)
        q = qs[d]
        after = len(axes) - 1 - i  # state axes after axis i: q (S, b) broadcasts from the right
        T = (T * (q.view(q.shape[0], *(1,) * after, q.shape[1]) if after else q)).sum(i)
        del axes[i]
    return T


@runtime_checkable
class BeliefModel(Protocol):
    """What ``infer_states``, the policy evaluator and ``Agent`` need from a model (tabular or neural).

    Attributes:
        num_states, num_obs, num_controls: sizes per factor, modality, factor.
        A_dependencies: the factors each likelihood message (one per modality) ranges over.
        batch_shape: leading shape of a batch of agents with their own parameters (``()`` for one).
    """

    @property
    def num_states(self) -> list: ...
    @property
    def num_obs(self) -> list: ...
    @property
    def num_controls(self) -> list: ...
    @property
    def A_dependencies(self) -> list: ...
    @property
    def batch_shape(self) -> tuple: ...

    def prior(self) -> list:
        """Initial beliefs, one ``(*batch_shape, S_f)`` tensor per factor."""

    def log_likelihood(self, obs: list, guard: LogGuard) -> list:
        """``ln p(o_m | s)`` per modality, ``(*lead, *S_f for f in A_dependencies[m])``; ``obs[m]``: int
        ``(*lead,)`` outcome indices or float ``(*lead, O_m)`` outcome probabilities (a mixture; a
        ``TabularModel`` also takes ``soft_obs="expected_log"``, as ``aif.FixedPoint.soft_obs``)."""

    def predict_all(self, qs: list) -> list:
        """``q(s_f' | u_f) = E_q[p(s_f' | s, u_f)]`` for every control: ``(U_f, *lead, S_f)`` per factor."""

    def outcome_terms(self, qs: list, t: int, options: EFEOptions) -> dict:
        """Expected-observation terms of beliefs ``qs`` at step ``t`` of a policy: ``utility``
        (``E_q(o)[ln p(o)]``), ``entropy`` (``H[q(o)]``) and ``ambiguity`` (``E_q(s) H[p(o|s)]``), each
        ``(*lead,)`` summed over modalities, under ``options`` (an ``aif.EFEOptions``); a tabular model's are
        ``aif_deep.efe.outcome_terms``."""


@dataclass(frozen=True, eq=False)
class TabularModel:
    """A POMDP generative model (``aif.GenerativeModel``'s arrays) as tensors, for one agent or a batch.

    Attributes:
        A: ``A[m]``: ``(*batch_shape, O_m, *S_f for f in A_dependencies[m])``.
        B: ``B[f]``: ``(*batch_shape, S_f, *S_g for g in B_dependencies[f], U_f)``.
        C: ``C[m]``: ``(*batch_shape, O_m)`` or ``(*batch_shape, O_m, T)``: log-preferences (not normalised
            here; ``EFEOptions.normalize_C`` says whether the EFE does).
        D: ``D[f]``: ``(*batch_shape, S_f)``.
        E: ``(*batch_shape, num_policies)`` or ``None`` (uniform).
        A_dependencies, B_dependencies: as in ``aif.GenerativeModel``.
        batch_shape: the leading shape shared by all arrays.
        pA, pB: optional Dirichlet counts shaped like ``A`` and ``B`` (with the batch shape), for the
            ``pA_info_gain`` and ``pB_info_gain`` terms of the policy evaluator and for learning
            (``aif_deep.learning``).
        pD: optional Dirichlet counts shaped like ``D``, for learning D (``aif_deep.Agent.learn``).
        pE: optional Dirichlet counts over policies shaped like ``E``, pC: over outcomes shaped like ``C`` (habits and
            preferences, learned on the NumPy route: ``aif.Learning(learn_E=..., learn_C=...)``).

    No validation of the values happens here (the tensors may be built from logits inside an optimiser);
    ``from_aif`` starts from models that ``aif.check_model`` has passed.
    """

    A: list
    B: list
    C: list
    D: list
    E: Tensor | None
    A_dependencies: list
    B_dependencies: list
    batch_shape: tuple = ()
    pA: list | None = None
    pB: list | None = None
    pD: list | None = None
    pE: Tensor | None = None
    pC: list | None = None
    num_states: list = field(init=False, repr=False)
    num_obs: list = field(init=False, repr=False)
    num_controls: list = field(init=False, repr=False)

    def __post_init__(self):
        checks.model_tensors(self, values=False)  # tensors of one floating dtype on one device: no host sync
        nb = len(self.batch_shape)
        object.__setattr__(self, "num_states", [int(b.shape[nb]) for b in self.B])
        object.__setattr__(self, "num_obs", [int(a.shape[nb]) for a in self.A])
        object.__setattr__(self, "num_controls", [int(b.shape[-1]) for b in self.B])
        for name in ("A", "B", "C", "D"):
            for i, x in enumerate(getattr(self, name)):
                if tuple(x.shape[:nb]) != tuple(self.batch_shape):
                    raise ModelError(f"{name}[{i}] has shape {tuple(x.shape)}, whose leading axes should be the "
                                     f"batch shape {tuple(self.batch_shape)}")
        if self.pE is not None and (self.E is None or tuple(self.pE.shape) != tuple(self.E.shape)):
            raise ModelError(f"pE has shape {tuple(self.pE.shape)}, expected the shape of E "
                             f"{None if self.E is None else tuple(self.E.shape)}")
        for name, like in (("pA", self.A), ("pB", self.B), ("pD", self.D), ("pC", self.C)):
            counts = getattr(self, name)
            if counts is None:
                continue
            if len(counts) != len(like):
                raise ModelError(f"{name} has {len(counts)} arrays, expected {len(like)}")
            for i, (p, x) in enumerate(zip(counts, like, strict=True)):
                if tuple(p.shape) != tuple(x.shape):
                    raise ModelError(f"{name}[{i}] has shape {tuple(p.shape)}, expected {tuple(x.shape)} "
                                     f"(the shape of {name[1]}[{i}])")

    @classmethod
    def from_aif(cls, model: GenerativeModel | Sequence[GenerativeModel], device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> "TabularModel":
        """Tensors from an ``aif.GenerativeModel``, or a batch from a list of them (same sizes).

        Args:
            model: a ``GenerativeModel`` (``batch_shape == ()``) or a sequence of them (``(len(model),)``),
                which must share sizes and dependencies; ``E`` is uniform where a model has none.
            device: torch device; ``default_device()`` (``cuda`` when present) when ``None``.
            dtype: floating dtype of the arrays.
        """
        device = default_device() if device is None else checks.device(device)
        _floating(dtype)
        models = [model] if isinstance(model, GenerativeModel) else list(model)
        if not models or not all(isinstance(m, GenerativeModel) for m in models):
            raise ModelError("from_aif needs an aif.GenerativeModel or a non-empty list of them")
        first = models[0]
        for i, m in enumerate(models[1:], 1):
            for attr in ("num_states", "num_obs", "num_controls", "A_dependencies", "B_dependencies"):
                if getattr(m, attr) != getattr(first, attr):
                    raise ModelError(f"model {i} has {attr} = {getattr(m, attr)}, but model 0 has "
                                     f"{getattr(first, attr)}; a batch must share sizes and dependencies")
            if [c.shape for c in m.C] != [c.shape for c in first.C]:
                raise ModelError(f"model {i} has C shapes {[c.shape for c in m.C]}, but model 0 has "
                                 f"{[c.shape for c in first.C]}")

        def stack(get):
            arrays = [np.asarray(get(m)) for m in models]
            # (a copy: the tensor must not share the model's read-only arrays)
            return torch.tensor(np.stack(arrays) if len(models) > 1 or not isinstance(model, GenerativeModel)
                                else arrays[0], dtype=dtype, device=device)

        def counts(name, n):
            have = [getattr(m, name) is not None for m in models]
            if not any(have):
                return None
            if not all(have):
                raise ModelError(f"some models of the batch have {name} and some do not")
            return [stack(lambda m, i=i: getattr(m, name)[i]) for i in range(n)]

        E = None
        if any(m.E is not None for m in models):
            sizes = {len(m.E) for m in models if m.E is not None}
            if len(sizes) > 1:
                raise ModelError(f"the models' E have different lengths {sorted(sizes)}")
            P = sizes.pop()
            E = stack(lambda m: m.E if m.E is not None else np.full(P, 1.0 / P))
        if any(m.pE is not None for m in models) and not all(m.pE is not None for m in models):
            raise ModelError("some models of the batch have pE and some do not")
        batch_shape = () if isinstance(model, GenerativeModel) else (len(models),)
        return cls(
            A=[stack(lambda m, i=i: m.A[i]) for i in range(first.num_modalities)],
            B=[stack(lambda m, i=i: m.B[i]) for i in range(first.num_factors)],
            C=[stack(lambda m, i=i: m.C[i]) for i in range(first.num_modalities)],
            D=[stack(lambda m, i=i: m.D[i]) for i in range(first.num_factors)],
            E=E,
            A_dependencies=[list(d) for d in first.A_dependencies],
            B_dependencies=[list(d) for d in first.B_dependencies],
            batch_shape=batch_shape,
            pA=counts("pA", first.num_modalities),
            pB=counts("pB", first.num_factors),
            pD=counts("pD", first.num_factors),
            pE=None if first.pE is None else stack(lambda m: m.pE),
            pC=counts("pC", first.num_modalities),
        )

    def to_aif(self, index: tuple = ()) -> GenerativeModel:
        """The ``aif.GenerativeModel`` of agent ``index`` of the batch (``()`` for an unbatched model), as float64
        NumPy arrays: the NumPy form on which ``aif_deep.Agent`` runs NumPy-only strategies."""
        index = (index,) if isinstance(index, int) else tuple(index)
        if len(index) != len(self.batch_shape):
            raise ModelError(f"to_aif needs an index of the batch shape {tuple(self.batch_shape)}, got {index}")
        def get(xs: Any) -> Any:
            return None if xs is None else [x[index].detach().cpu().numpy().astype(float) for x in xs]

        E = None if self.E is None else get([self.E])[0]
        pE = None if self.pE is None else get([self.pE])[0]
        return GenerativeModel(A=get(self.A), B=get(self.B), C=get(self.C), D=get(self.D), E=E, pA=get(self.pA),
                               pB=get(self.pB), pD=get(self.pD), A_dependencies=[list(d) for d in self.A_dependencies],
                               B_dependencies=[list(d) for d in self.B_dependencies], pE=pE, pC=get(self.pC))

    @property
    def num_factors(self) -> int:
        return len(self.B)

    @property
    def num_modalities(self) -> int:
        return len(self.A)

    @property
    def device(self) -> torch.device:
        return self.A[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.A[0].dtype

    def replace(self, **changes: Any) -> "TabularModel":
        """A copy with some arrays replaced (e.g. ones built from logits inside an optimiser)."""
        return replace(self, **changes)

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> "TabularModel":
        device = None if device is None else checks.device(device)
        _ = None if dtype is None else _floating(dtype)

        def move(x: Any) -> Any:
            return None if x is None else x.to(device=device, dtype=dtype)

        def move_all(xs: Any) -> Any:
            return None if xs is None else [move(x) for x in xs]

        return replace(self, A=move_all(self.A), B=move_all(self.B), C=move_all(self.C), D=move_all(self.D),
                       E=move(self.E), pA=move_all(self.pA), pB=move_all(self.pB), pD=move_all(self.pD),
                       pE=move(self.pE), pC=move_all(self.pC))

    # --- BeliefModel -------------------------------------------------------------------------------------

    def prior(self) -> list:
        return list(self.D)

    def log_likelihood(self, obs: list, guard: LogGuard, soft_obs: str = "mixture") -> list:
        out = []
        for m, (A_m, o) in enumerate(zip(self.A, obs, strict=True)):
            k = len(self.A_dependencies[m])
            if not o.is_floating_point():
                # An outcome index: guard(A[o]) under both rules (the mixture and the expected log of a one-hot
                # vector), read from the table guard(A) rather than formed from a one-hot product.
                out.append(_outcome_rows(self._guarded_log_A(m, guard), o, len(self.batch_shape)))
                continue
            flat = A_m.reshape(*A_m.shape[: A_m.ndim - k], -1)  # (*batch, O_m, prod S_deps)
            if soft_obs == "mixture":
                # guard(sum_o p(o) A[o, s]); for a one-hot p this is guard(A[o]) exactly.
                L = guarded_log(torch.einsum("...o,...os->...s", o, flat), guard)
            else:
                # sum_o p(o) guard(A[o, s]) (pymdp 1.0), outcomes of probability 0 left out (0 ln 0 = 0).
                L = (o[..., None] * guarded_log(flat, guard)).where(o[..., None] > 0, 0.0).sum(-2)
            out.append(L.reshape(*L.shape[:-1], *A_m.shape[A_m.ndim - k:]))
        return out

    def _guarded_log_A(self, m: int, guard: LogGuard) -> Tensor:
        """``guard(A[m])``, kept while ``A[m]`` is unchanged (its version) and no gradient flows through it."""
        A_m = self.A[m]
        if torch.is_grad_enabled() and A_m.requires_grad:
            return guarded_log(A_m, guard)
        tables = self.__dict__.setdefault("_log_A", {})  # a frozen dataclass: a cache outside its fields
        key = (m, guard)
        hit = tables.get(key)
        if hit is None or hit[0] is not A_m or hit[1] != A_m._version:
            hit = tables[key] = (A_m, A_m._version, guarded_log(A_m, guard).detach())
        return hit[2]

    def predict_all(self, qs: list) -> list:
        out = []
        for B_f, deps in zip(self.B, self.B_dependencies, strict=True):
            k = len(deps)
            # B_f: (*batch, S_f, *S_deps, U_f) -> (*batch, U_f, S_f, *S_deps) -> (*lead, U_f, S_f) -> (U_f, *lead, S_f)
            pred = sum_against(B_f.movedim(-1, -2 - k), [qs[g] for g in deps], keep=2)
            out.append(pred.movedim(-2, 0))
        return out

    def outcome_terms(self, qs: list, t: int, options: EFEOptions) -> dict:
        return outcome_terms(self, qs, t, options, joint_info_gain=False)


def _outcome_rows(table: Tensor, o: Tensor, nb: int) -> Tensor:
    """``table[..., o, :]``: rows ``(*lead, *S)`` of ``table`` ``(*mb, O, *S)`` (``nb = len(mb)``) at outcome indices
    ``o`` ``(*lead_o,)``, ``lead`` the broadcast of ``lead_o`` and ``mb``."""
    states = table.shape[nb + 1:]
    if nb == 0:  # one table for every belief: a row lookup
        return table.index_select(0, o.reshape(-1)).reshape(*o.shape, *states)
    lead = np.broadcast_shapes(tuple(o.shape), tuple(table.shape[:nb]))  # (torch.broadcast_shapes imports sympy)
    index = o.reshape(*o.shape, 1, *[1] * len(states)).expand(*lead, 1, *states)
    return torch.gather(table.expand(*lead, *table.shape[nb:]), len(lead), index).squeeze(len(lead))


def _floating(dtype: Any) -> torch.dtype:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ModelError(f"dtype must be a floating torch.dtype such as torch.float64, got {dtype!r}")
    return dtype
