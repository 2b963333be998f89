"""The compiled step for a batch of ``aif_deep.Agent``s on the CPU: ``aif.fast``'s kernel over every agent in one call.

``Agent.step`` on the CPU runs the torch cycle (``aif_deep.inference``, the ``PolicyEvaluator``, ``aif_deep.control``):
a few hundred small tensor operations whatever the batch, 1-5 us each. Where ``aif.fast`` covers the agent's
configuration, one call of ``aif._fast_batch.step_batch`` instead steps every agent of the batch with ``aif.fast``'s
single-agent kernel (``aif._fast_kernels.step``: state inference, the EFE of every policy, q(pi), the action, the
next prior), the agents sharing the model's tables (``aif.fast.Tables``). It applies (``reason(agent)`` names the
first rule broken; the torch cycle runs otherwise) when:

- the agent: an ``aif_deep.Agent`` whose step methods are not overridden, running the torch cycle (not a NumPy-only
  strategy, nor an observed state), with no ``learning``, ``planner``, ``actions`` or ``preprocess``, and ``gamma``
  and ``alpha`` numbers (not tensors, one per agent);
- the model: a ``TabularModel`` without a batch of parameters, float64 on the CPU, none of whose tensors requires
  gradients;
- ``aif.fast.reason`` accepts the same settings on an ``aif.Agent`` (inference, EFE terms and guards, joint states);
- the step: the observations an integer array ``(*batch, num_modalities)`` of outcome indices, all in range (any
  other input, or an index out of range, runs that step on the torch cycle, which names the error);
- numba is installed, ``AIF_FAST`` is not ``"0"``, and the kernels were ready when the agent was built.

Like ``aif.fast``, an agent keeps the path it was built with: ``aif.fast.compile()`` (or ``compile()`` here) first,
then the agents built after it take the compiled step; ``AIF_FAST=1`` starts ``aif.fast``'s background compilation at
the first agent. ``aif.fast.compile()`` makes the single-agent kernel; the batched loops (``aif._fast_batch``) are
made, or loaded from numba's cache, when the first agent is built after that (about 2 s of CPU the first time on a
machine; tens of ms from the cache), or by ``compile()`` here.

The two paths give the same beliefs, G, terms and q(pi) to rounding (tests/deep/test_fast_batch_deep.py: 1e-12 on
random models), not the same bytes. Deterministic selection takes the first action of the most probable policy (or
the most probable action of each factor, ``sampling="marginal"``) in the kernel, as the torch path's ``argmax`` does:
the same action wherever no two entries tie to within rounding. Stochastic selection draws in torch with the agent's
generator from the kernel's q(pi), the torch path's own ``sample_action`` (the same draw of the same generator; the
action can differ only where a uniform falls within rounding of a boundary between two actions' cumulative
probabilities), which also predicts the next prior in torch.

After a compiled step the agent's ``qs``, ``q_pi``, ``G``, ``terms`` and ``prior`` are views of one new array
``(N, tables.size)`` (``BatchStep.last``), never written again; ``aif_deep.rollout`` keeps those arrays and stacks
them once at the end.

Agents with equal inputs (``ONCE``, on by default): agents whose outcome indices and prior are equal to the bit get
the output of the first of them, stepped once (the step is a deterministic function of these and the shared tables,
so the bytes are the same as stepping each; tests/deep/test_fast_batch_deep.py). Many copies of one agent in one
task meet a handful of distinct beliefs: 256 T-maze agents share about ten per step. Where no two agents share their
inputs the hash check costs a few percent, and the kernel's time is N single-agent steps (about 2.5-3 us each for
the T-maze on the development CPU; benchmarks/results/bench_batched.md gives both, "compiled" and "every agent").
The kernel runs on the calling thread (no thread pool: nothing to wait for on a loaded machine).
"""

from __future__ import annotations

import math
import operator
import os
import threading
from typing import Any

import numpy as np
import torch

import aif
import aif.fast

ONCE = True  # agents whose observation and prior are equal to the bit are stepped once (aif._fast_batch.step_batch)
_STEP_METHODS = ("step", "infer_states", "infer_policies", "sample_action", "_acted")
_batch: Any = None  # the module aif._fast_batch, once made
_state: dict[str, Any] = {"status": "idle", "error": None}
_lock = threading.Lock()


def ready() -> bool:
    """Whether the batched loops are ready (``aif.fast``'s kernel too)."""
    return _batch is not None and aif.fast.ready()


def status() -> dict:
    """``{"status": "idle" | "ready" | "unavailable", "error": why unavailable, or None}`` of the batched loops."""
    return {"status": _state["status"], "error": _state["error"]}


def compile() -> bool:  # noqa: A001  (the verb a reader looks for)
    """Make ``aif.fast``'s kernel and the batched loops (compiled, or loaded from numba's cache); returns whether both
    are ready."""
    return aif.fast.compile() and _make()


def _make() -> bool:
    """Import (and so compile or load) ``aif._fast_batch`` and run its loops once on a one-state model."""
    global _batch
    with _lock:
        if _state["status"] == "idle":
            try:
                batch = aif.fast.batch_module()
                agent = aif.Agent(aif.GenerativeModel([np.ones((1, 1))], [np.ones((1, 1, 1))]))
                tables = aif.fast.Tables(agent)
                out, action, prior = np.empty((1, tables.size)), np.zeros((1, 1), dtype=np.int64), np.ones((1, 1))
                batch.step_batch(np.zeros((1, 1), dtype=np.int64), prior, prior.view(np.int64), tables.ix, tables.fx,
                                 out, action, True)
                _batch = batch
                _state["status"] = "ready"
            except Exception as e:  # numba failing on this machine: the torch cycle serves every step
                _state["status"], _state["error"] = "unavailable", f"{type(e).__name__}: {e}"
    return _batch is not None


def _single(agent: Any) -> aif.Agent:
    """The ``aif.Agent`` of one agent of the batch: the model's NumPy form and the same settings (the tables are
    made from it, and ``aif.fast.reason`` judges it; its generator is never drawn from)."""
    return aif.Agent(agent.model.to_aif(), policies=np.array(agent.policies), gamma=float(agent.gamma),
                     alpha=float(agent.alpha), inference=agent.inference, efe=agent.efe, efe_terms=agent.efe_terms,
                     selection=agent.selection, rng=np.random.default_rng(0))


def _requires_grad(xs: Any) -> bool:
    return any(isinstance(x, torch.Tensor) and x.requires_grad for x in xs or ())


def reason(agent: Any) -> str | None:
    """Why ``agent``'s steps run on the torch cycle (the first rule of the module docstring it breaks), or ``None``
    when the compiled step covers them (observations given as an index array)."""
    return _reason(agent)[0]


def _reason(agent: Any) -> tuple[str | None, aif.Agent | None]:
    """``reason(agent)``, and the agent's ``aif.Agent`` (``_single``) once the rules before ``aif.fast``'s hold."""
    from .agent import Agent
    from .model import TabularModel

    if os.environ.get(aif.fast.ENV_VAR, "1") == "0":
        return (f"the environment sets {aif.fast.ENV_VAR}=0", None)
    if not ready():
        return ("the kernels are not compiled (aif.fast.compile())", None)
    if not isinstance(agent, Agent):
        return (f"{type(agent).__name__} is not an aif_deep.Agent", None)
    if any(getattr(type(agent), n) is not getattr(Agent, n) for n in _STEP_METHODS):
        return (f"{type(agent).__name__} overrides the Agent's step methods", None)
    if vars(type(agent._run)).get("torch_cycle") is not True:
        return ("the agent runs a NumPy-only strategy or an observed state", None)
    for name in ("learning", "planner", "actions", "preprocess"):
        if getattr(agent, name) is not None:
            return (f"the agent has {name}", None)
    for name in ("gamma", "alpha"):
        if isinstance(getattr(agent, name), torch.Tensor):
            return (f"{name} is a tensor (one value per agent)", None)
    m = agent.model
    if type(m) is not TabularModel:
        return (f"the model is a {type(m).__name__}, not a TabularModel", None)
    if m.batch_shape:
        return ("the model has a batch of parameters", None)
    if m.device.type != "cpu" or m.A[0].dtype != torch.float64:
        return (f"the model is {m.A[0].dtype} on {m.device}, not float64 on the CPU", None)
    if any(_requires_grad(xs) for xs in (m.A, m.B, m.C, m.D, [m.E], m.pA, m.pB)):
        return ("a tensor of the model requires gradients", None)
    single = _single(agent)
    why = aif.fast.reason(single)
    return (None if why is None else f"aif.fast: {why}"), single


def for_agent(agent: Any) -> BatchStep | None:
    """The hook of a newly built ``aif_deep.Agent``: ``None`` (every step on the torch cycle) unless ``aif.fast``'s
    kernel is ready and ``AIF_FAST`` is not ``"0"``; then the batched loops are made if they are not yet. With
    ``AIF_FAST=1`` and ``aif.fast`` idle, starts its background compilation (this agent keeps the torch cycle)."""
    flag = os.environ.get(aif.fast.ENV_VAR)
    if flag == "0":
        return None
    if not aif.fast.ready():
        if flag == "1" and aif.fast.status()["status"] == "idle":
            aif.fast.compile(block=False)
        return None
    return BatchStep() if _make() else None


def _settings(agent: Any) -> tuple:
    """What the tables are made from: the objects (compared by identity), gamma and alpha."""
    return (agent.model, agent.policies, agent.inference, agent.efe, agent.efe_terms, agent.selection, agent.learning,
            agent.planner, agent.actions, agent.preprocess, agent.gamma, agent.alpha, agent._run)


class BatchStep:
    """The compiled step of an ``aif_deep.Agent`` built once the kernels were ready: ``step(agent, obs)`` steps every
    agent of the batch and returns the actions ``(*batch, F)``, or ``None`` when this step belongs to the torch cycle
    (a rule of the module docstring broken, another kind of observation, an index out of range), having changed
    nothing.

    ``last``: ``(out, tables)`` after a compiled step (``out`` ``(N, tables.size)``, a new array at every step, never
    written again; ``tables.split(out)``), ``None`` after a step on the torch cycle."""

    def __init__(self) -> None:
        self.settings: tuple = ()
        self.tables: aif.fast.Tables | None = None
        self.prior: tuple = ((), None)  # the last prior handed to the agent (its tensors) and their flat array
        self.last: tuple[np.ndarray, aif.fast.Tables] | None = None
        self.moved: torch.Tensor | None = None  # agent._transition after a compiled step: every agent acted
        self.stepped = 0  # agent-steps the kernel computed (the others were equal to one of them: ``ONCE``)

    def tables_for(self, agent: Any) -> aif.fast.Tables | None:
        """The kernel's tables for the agent's current settings (made again when one of them changed), or ``None``
        when ``reason(agent)`` names a rule it breaks."""
        settings = _settings(agent)
        if len(settings) != len(self.settings) or not all(map(operator.is_, settings, self.settings)):
            self.settings = settings
            why, single = _reason(agent)
            self.tables = aif.fast.Tables(single) if why is None else None
        return self.tables

    def step(self, agent: Any, obs: Any, out: np.ndarray | None = None) -> torch.Tensor | None:
        """The compiled step (class docstring). ``out``: where to write it, a C-contiguous float64 array ``(N,
        tables.size)`` that is never written again (``aif_deep.rollout`` passes rows of a block); a new array when
        absent or not such an array."""
        self.last = None
        tables = self.tables_for(agent)
        batch = tuple(agent.batch_shape)
        if tables is None or not (isinstance(obs, np.ndarray) and obs.dtype.kind in "iu"
                                  and obs.shape == (*batch, tables.num_modalities)):
            return None
        N = math.prod(batch)
        flat = np.ascontiguousarray(obs.reshape(N, -1), dtype=np.int64)
        parts, prior = self.prior
        if len(agent.prior) != len(parts) or not all(map(operator.is_, agent.prior, parts)):
            if _requires_grad(agent.prior):
                return None
            prior = np.ascontiguousarray(torch.cat([p.expand(*batch, p.shape[-1]) for p in agent.prior], -1)
                                         .reshape(N, -1).numpy(), dtype=np.float64)
        if not (isinstance(out, np.ndarray) and out.shape == (N, tables.size) and out.dtype == np.float64
                and out.flags.c_contiguous and out.flags.writeable):
            out = np.empty((N, tables.size))  # (another dtype or layout would compile the loop again, for seconds)
        action = np.empty((N, len(tables.qs)), dtype=np.int64)
        stepped = _batch.step_batch(flat, prior, prior.view(np.int64), tables.ix, tables.fx, out, action, ONCE)
        if stepped < 0:
            return None  # an index out of range: the torch cycle raises its error
        self.stepped += stepped
        shape = None if len(batch) == 1 else batch  # torch.from_numpy of a NumPy view: the cheapest tensor view

        def view(part: slice) -> torch.Tensor:
            x = torch.from_numpy(out[:, part])
            return x if shape is None else x.reshape(*shape, -1)

        agent.qs = [view(f) for f in tables.qs]
        agent.q_pi, agent.G = view(tables.q_pi), view(tables.G)
        P, start = tables.num_policies, tables.terms.start
        agent.terms = {name: view(slice(start + k * P, start + (k + 1) * P)) for k, name in enumerate(aif.fast.TERMS)}
        agent.search_info = None
        if tables.deterministic:
            # The next prior as views of one contiguous copy, the array the next step reads (a change made in place
            # to the agent's prior tensors is read, as on the torch cycle)
            flat_prior = np.ascontiguousarray(out[:, tables.flat_prior])
            start = tables.flat_prior.start
            agent.prior = [torch.from_numpy(flat_prior[:, f.start - start:f.stop - start]) if shape is None else
                           torch.from_numpy(flat_prior[:, f.start - start:f.stop - start]).reshape(*shape, -1)
                           for f in tables.prior]
            if self.moved is None or self.moved.shape != batch:
                self.moved = torch.ones(batch, dtype=torch.bool)  # never changed in place (the torch path replaces it)
            agent._transition = self.moved
            self.prior = (tuple(agent.prior), flat_prior)
            result = torch.from_numpy(action) if shape is None else torch.from_numpy(action).reshape(*shape, -1)
        else:  # the torch path's draw with the agent's generator, and its prediction
            result = agent._run.sample_action()
        self.last = (out, tables)
        return result
