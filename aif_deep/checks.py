"""Validation at ``aif_deep``'s public boundary: ``aif``'s rules, error classes and messages, for tensors.

Beliefs and priors give a ``BeliefError``, observations an ``ObservationError``, policies, actions, q(pi) and E a
``PolicyError``, model tensors a ``ModelError``. On top of ``aif``'s rules come the tensor ones: integer or mixed
dtypes and mixed or missing devices in a model, a NumPy array where a tensor is required, and a batch of
observations given to an unbatched agent. Internals trust what passed these checks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from aif.checks import COLUMN_TOL, PROB_TOL, check_policies, check_positive, check_probability
from aif.errors import AifError, BeliefError, ModelError, ObservationError, ParameterError, PolicyError

Tensor = torch.Tensor


def distribution(p: Tensor, label: str, error: type[AifError]) -> Tensor:
    """``p`` ``(*lead, n)``: finite, non-negative, summing to 1 along the last axis; else ``aif.checks``'
    ``check_probability`` error for the first offending vector (its batch index added to the label)."""
    rows = p.detach().reshape(-1, p.shape[-1])
    bad = (~torch.isfinite(rows) | (rows < 0)).any(-1) | ((rows.sum(-1) - 1).abs() > PROB_TOL)
    if bad.any():  # one host sync; the rule and message are aif's
        k = int(bad.nonzero()[0, 0])
        index = tuple(int(i) for i in np.unravel_index(k, p.shape[:-1])) if p.ndim > 1 else ()
        check_probability(rows[k].cpu().numpy(), label + (f" at batch index {index}" if index else ""), error)
    return p


def tensor(x: Any, label: str, error: type[Exception], device: torch.device | str) -> Tensor:
    """``x`` as a tensor on ``device``: a tensor on another device is an error, not moved silently."""
    device = torch.device(device)
    if isinstance(x, Tensor):
        if (x.device.type, x.device.index or 0) != (device.type, device.index or 0):
            raise error(f"{label} is on {x.device} but the model is on {device}")
        return x
    return as_tensor(x, label, error, device)


def as_tensor(x: Any, label: str, error: type[Exception], device: Any = None) -> Tensor:
    """``torch.as_tensor(x)``, with a string, ``None``, a ragged list or other non-numbers as ``error`` naming
    ``label`` (never torch's raw ``TypeError``/``ValueError``/``RuntimeError``)."""
    try:
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError
        return torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise error(f"{label} must be numbers, got {str(x)[:200]}") from None


def beliefs(model: Any, qs: Any, name: str = "prior", values: bool = True) -> list[Tensor]:
    """One probability vector ``(*lead, S_f)`` per factor, in the model's dtype (``BeliefError`` otherwise);
    ``values=False`` checks the count, shapes and device only (the evaluators' hot path: no host synchronisation)."""
    ref = model.prior()[0]
    F = len(model.num_states)
    if not isinstance(qs, (list, tuple)):
        raise BeliefError(f"{name} must be a list with one probability vector per factor ({F}), "
                          f"got {type(qs).__name__}")
    qs = list(qs)
    if len(qs) != F:
        raise BeliefError(f"{name} has {len(qs)} vectors but the model has {F} factors")
    if not values:
        return [_shaped(q, model.num_states[f], f"{name}[{f}]", ref) for f, q in enumerate(qs)]
    return [vector(q, model.num_states[f], f"{name}[{f}]", ref) for f, q in enumerate(qs)]


def _shaped(q: Any, size: int, label: str, like: Tensor, error: type[AifError] = BeliefError) -> Tensor:
    q = tensor(q, label, error, like.device)
    q = q if q.dtype == like.dtype else q.to(like.dtype)
    if q.ndim == 0 or q.shape[-1] != size:
        raise error(f"{label} has shape {tuple(q.shape)}, expected (..., {size})")
    return q


def vector(q: Any, size: int, label: str, like: Tensor, error: type[AifError] = BeliefError) -> Tensor:
    """A probability vector ``(*lead, size)`` on ``like``'s device and dtype (``error`` otherwise)."""
    return distribution(_shaped(q, size, label, like, error), label, error)


def belief_batch(model: Any, qs: list[Tensor]) -> tuple:
    """The batch shape of beliefs ``qs`` broadcast with the model's (``BeliefError`` where they do not broadcast)."""
    try:
        return tuple(np.broadcast_shapes(tuple(model.batch_shape), *[q.shape[:-1] for q in qs]))
    except ValueError:
        raise BeliefError(f"the beliefs' batch shapes {[tuple(q.shape[:-1]) for q in qs]} do not broadcast with "
                          f"the model's batch shape {tuple(model.batch_shape)}") from None


def model_tensors(model: Any, values: bool = True) -> None:
    """Every array of a ``TabularModel`` is a floating tensor of one dtype on one available device; with
    ``values``, also ``aif.check_model``'s rules (``model_values``) and E a distribution (host synchronisation)."""
    first = model.A[0] if isinstance(model.A, (list, tuple)) and model.A else None
    for name in ("A", "B", "C", "D", "E", "pA", "pB", "pD"):
        arrays = getattr(model, name)
        if name != "E" and arrays is not None and not isinstance(arrays, (list, tuple)):
            hint = f"; wrap it as [{name}]" if isinstance(arrays, Tensor) else ""
            raise ModelError(f"{name} must be a list of tensors, one per modality or factor, got "
                             f"{type(arrays).__name__}{hint}")
        for i, x in enumerate([arrays] if name == "E" else arrays or []):
            if x is None:
                continue
            label = name if name == "E" else f"{name}[{i}]"
            if not isinstance(x, Tensor):
                raise ModelError(f"{label} is a {type(x).__name__}, not a torch.Tensor "
                                 f"(TabularModel.from_aif converts an aif.GenerativeModel)")
            if not x.is_floating_point():
                raise ModelError(f"{label} has dtype {x.dtype}; a model's arrays are floating point")
            first = x if first is None else first
            if x.dtype != first.dtype or x.device != first.device:
                raise ModelError(f"{label} is {x.dtype} on {x.device} but A[0] is {first.dtype} on {first.device}: "
                                 f"a model's arrays share one dtype and device (use model.to(device, dtype))")
    if first is None:
        raise ModelError("A must be a list with at least one tensor (one per modality)")
    device(first.device, "the model's device")
    if values:
        model_values(model)


def device(d: Any, label: str = "device", error: type[AifError] = ModelError) -> torch.device:
    """``d`` as a ``torch.device`` that exists here and holds values (not ``meta``; CUDA only when present)."""
    try:
        d = torch.device(d)
    except (TypeError, RuntimeError):
        raise error(f"{label} must be a torch device such as 'cpu' or 'cuda', got {d!r}") from None
    if d.type == "meta":
        raise error(f"{label} is meta, which holds no values: use 'cpu' or 'cuda'")
    if d.type == "cuda" and not (torch.cuda.is_available() and (d.index or 0) < torch.cuda.device_count()):
        raise error(f"{label} is {d} but no such CUDA device is available ({torch.cuda.device_count()} present)")
    return d


def model_values(model: Any) -> None:
    """``aif.check_model``'s rules for a ``TabularModel``, vectorised over its batch; the first agent of the batch
    that breaks one gets ``check_model``'s message (one host synchronisation: for construction, not a step)."""
    batch, nb = tuple(model.batch_shape), len(model.batch_shape)
    if 0 in batch:
        raise ModelError(f"the model's batch shape {batch} holds no agents")

    def flat(x: Tensor) -> Tensor:  # (*batch, everything else)
        return x.detach().reshape(*batch, -1)

    bad = torch.zeros(batch, dtype=torch.bool, device=model.device)
    # distributions over their first axis after the batch
    for x in [*model.A, *model.B, *model.D, *([] if model.E is None else [model.E])]:
        bad |= (~torch.isfinite(flat(x)) | (flat(x) < 0)).any(-1) | (flat(x.sum(nb)) - 1).abs().gt(COLUMN_TOL).any(-1)
    for x in [*model.C, *(model.pA or []), *(model.pB or []), *(model.pD or [])]:
        bad |= (~torch.isfinite(flat(x))).any(-1)
    for x in [*(model.pA or []), *(model.pB or []), *(model.pD or [])]:  # zeros are structural; columns are not
        bad |= (flat(x) < 0).any(-1) | ~torch.isfinite(flat(x.sum(nb))).all(-1) | (flat(x.sum(nb)) == 0).any(-1)
    index = tuple(int(i) for i in bad.nonzero()[0]) if bad.any() else (0,) * nb
    try:  # aif's checks and messages (also the shapes and dependencies) on that agent's NumPy form
        model.to_aif(index)
    except (TypeError, ValueError) as err:
        raise ModelError(f"agent {index} of the batch: {err}" if nb else str(err)) from None


def precision(x: Any, name: str, like: Tensor, batch_shape: tuple, zero: bool = False) -> Any:
    """``gamma`` or ``alpha``: a positive (with ``zero``, non-negative) number (``aif``'s rule) or such a finite
    real tensor on ``like``'s device that broadcasts to the agents' ``batch_shape`` without growing it
    (``ParameterError``)."""
    if not isinstance(x, Tensor):
        return check_positive(x, name, zero)
    sign = "non-negative" if zero else "positive"
    x = tensor(x, name, ParameterError, like.device)
    if x.dtype == torch.bool or x.is_complex():
        raise ParameterError(f"{name} must be a {sign} number, got {x}")
    if not (torch.isfinite(x).all() and ((x >= 0) if zero else (x > 0)).all()):
        raise ParameterError(f"{name} must be {sign} and finite, got {x}")
    try:
        fits = np.broadcast_shapes(tuple(x.shape), tuple(batch_shape)) == tuple(batch_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ParameterError(f"{name} has shape {tuple(x.shape)}, which does not fit the agents' batch shape "
                             f"{tuple(batch_shape)}")
    return x


def policy_prior(E: Any, num_policies: int, label: str = "E") -> Tensor:
    """E or q(pi): ``(*batch, num_policies)``, a probability vector (``PolicyError``)."""
    E = as_tensor(E, label, PolicyError)
    if E.ndim == 0 or E.shape[-1] != num_policies:
        raise PolicyError(f"{label} has shape {tuple(E.shape)}, expected (..., {num_policies}): one entry per policy")
    return distribution(E.double() if not E.is_floating_point() else E, label, PolicyError)


def action(model: Any, action: Any, batch_shape: tuple | None = None) -> Tensor:
    """An integer action ``(*batch, num_factors)`` with every control in range (``PolicyError``)."""
    a = as_tensor(action, "action", PolicyError)
    F = len(model.num_controls)
    if a.is_floating_point() or a.dtype == torch.bool:
        raise PolicyError(f"action must hold integer controls, got {a.tolist()!r} ({a.dtype})")
    if a.shape[-1:] != (F,) or (batch_shape is not None and tuple(a.shape[:-1]) not in ((), tuple(batch_shape))):
        raise PolicyError(f"action has shape {tuple(a.shape)}, expected (..., {F}): one per factor")
    for f, u in enumerate(model.num_controls):
        bad = (a[..., f] < 0) | (a[..., f] >= u)
        if bad.any():
            raise PolicyError(f"action {int(a[..., f][bad].flatten()[0])} is out of range for factor {f} "
                              f"with {u} controls (0 to {u - 1})")
    return a.long()


def unbatched_observation(obs: list[Tensor], categorical: list[bool], batch_shape: tuple) -> None:
    """An unbatched agent (``batch_shape == ()``) takes one observation: a leading batch is an error."""
    if batch_shape != ():
        return
    for m, (o, cat) in enumerate(zip(obs, categorical, strict=True)):
        lead = o.shape[: o.ndim - int(o.is_floating_point())] if cat else ()
        if lead:
            raise ObservationError(f"obs[{m}] has the batch shape {tuple(lead)} but the agent is unbatched: "
                                   f"give one observation, or build the Agent with batch_shape={tuple(lead)}")


def settings(owner: str, values: dict[str, Any], rule: str) -> None:
    """A ``ParameterError`` naming ``owner.field`` for the first of ``values`` that breaks ``rule`` (``"positive"``,
    ``"count"`` (an integer >= 1), ``"natural"`` (an integer >= 0), ``"fraction"``, ``"non-negative"`` or
    ``"finite"``; a string or a bool breaks every rule): the checks of a settings object."""
    integer = (int, np.integer)
    ok = {"positive": lambda v: 0.0 < float(v) < math.inf, "count": lambda v: isinstance(v, integer) and v >= 1,
          "natural": lambda v: isinstance(v, integer) and v >= 0, "fraction": lambda v: 0.0 <= float(v) <= 1.0,
          "non-negative": lambda v: 0.0 <= float(v) < math.inf, "finite": lambda v: math.isfinite(float(v))}[rule]
    what = {"positive": "positive and finite", "count": "at least 1", "natural": "at least 0", "fraction": "in [0, 1]",
            "non-negative": ">= 0 and finite", "finite": "finite"}[rule]
    for name, v in values.items():
        try:
            good = not isinstance(v, (str, bytes, bool, np.bool_)) and bool(ok(v))
        except (TypeError, ValueError, OverflowError):
            good = False
        if not good:
            raise ParameterError(f"{owner}.{name} must be {what}, got {v!r}")


def counts(counts: Any, name: str) -> list[Tensor]:
    """Dirichlet counts: a list of non-negative, finite tensors of at least one axis (``ModelError`` naming the
    index and value; ``column_sums`` checks each column's total where the outcome axis is known)."""
    if not isinstance(counts, (list, tuple)):
        single = isinstance(counts, (Tensor, np.ndarray))
        got = f"a single tensor; wrap it as [{name}]" if single else type(counts).__name__
        raise ModelError(f"{name} must be a list of tensors, got {got}")
    out = []
    for i, p in enumerate(counts):
        p = as_tensor(p, f"{name}[{i}]", ModelError)
        if p.ndim == 0:
            raise ModelError(f"{name}[{i}] is the single number {p.item()}; counts are arrays")
        if not p.is_floating_point():
            p = p.to(torch.get_default_dtype())
        for bad, what in ((~torch.isfinite(p), "non-finite"), (p < 0, "negative")):  # aif.checks.check_finite
            if bad.any():
                idx = tuple(int(k) for k in torch.nonzero(bad)[0])
                raise ModelError(f"{name}[{i}] has a {what} entry {float(p[idx])} at index {idx}")
        out.append(p)
    if not out:
        raise ModelError(f"{name} is empty: it holds one array per modality or factor")
    return out


def column_sums(p: Tensor, dim: int, label: str) -> None:
    """Each column of counts along ``dim`` has a positive, finite total (``aif.checks.check_dirichlet``'s rule)."""
    sums = p.sum(dim)
    bad = (sums == 0) | ~torch.isfinite(sums)
    if bad.any():
        idx = tuple(int(k) for k in torch.nonzero(bad)[0])
        raise ModelError(f"Dirichlet counts {label} sum to {float(sums[idx])} in the column at index {idx}: a "
                         "Dirichlet needs a positive, finite total")


def policies(model: Any, policies: Any) -> np.ndarray:
    """Policies as an int array ``(P, H, num_factors)``, ``H >= 1``, with every action in range (``aif.checks``'
    rules, ``PolicyError``); with ``model=None`` the shape only."""
    if isinstance(policies, Tensor):
        policies = policies.detach().cpu().numpy()
    if model is None:
        policies = np.asarray(policies)
        if policies.ndim != 3:
            raise PolicyError(f"policies must have shape (num_policies, horizon, num_factors), got {policies.shape}")
        return policies
    return check_policies(model, policies).astype(np.int64)


def image_settings(image_shape: Any, flip: Any) -> tuple[tuple[int, ...], float]:
    """``(H, W)`` and a pixel-flip probability in [0, 0.5] (above 0.5 the image is inverted), or ``ParameterError``."""
    shape = as_tensor(image_shape, "image_shape", ParameterError)
    if shape.shape != (2,) or shape.is_floating_point() or shape.dtype == torch.bool or (shape < 1).any():
        raise ParameterError(f"image_shape must be (H, W), two positive integers, got {image_shape!r}")
    number = isinstance(flip, (int, float, np.integer, np.floating)) and not isinstance(flip, bool)
    if not (number and 0.0 <= flip <= 0.5):
        raise ParameterError(f"flip must lie in [0, 0.5] (above 0.5 the image is inverted), got {flip!r}")
    return (int(shape[0]), int(shape[1])), float(flip)


def linear_bytes(*sizes: int, copies: int = 1) -> int:
    """Bytes of the weights and biases of ``copies`` stacks of linear layers ``sizes[0] -> sizes[1] -> ...`` in
    the default dtype: an estimate made before allocating them."""
    item = torch.empty((), dtype=torch.get_default_dtype()).element_size()
    return item * copies * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def byte_budget(owner: str, parts: dict[str, int], max_bytes: int, advice: str) -> None:
    """``ParameterError`` naming the largest of ``parts`` (name -> estimated bytes) when they add up to more than
    ``max_bytes``: the check a network makes before it allocates."""
    total = sum(parts.values())
    if total > max_bytes:
        big = max(parts, key=lambda k: parts[k])
        raise ParameterError(f"{owner} would take about {total:,} bytes, above max_bytes = {max_bytes:,}; the largest "
                             f"part is {big} ({parts[big]:,} bytes): {advice}, or raise max_bytes")
