"""Save and restore ``aif_deep`` agents (``save_agent``), replay buffers (``save_buffer``) and training runs
(``save_checkpoint``): each file is one ``aif.io.write_archive`` archive of kind ``aif_deep.agent``,
``aif_deep.replay_buffer`` or ``aif_deep.training`` (a versioned header, tensors as NumPy arrays each with its
sha256, the rest as JSON; no pickle). A loader refuses with ``aif.io.FormatError`` a file of another kind, an
entry it does not know, a file above ``max_bytes`` (before reading it) and a damaged or truncated file.

An agent is saved whole: its model (a ``TabularModel``'s tensors, or a ``NeuralModel``'s ``state_dict``, whose
architecture the caller rebuilds and passes to ``load_agent``), its settings, its ``torch.Generator`` state and
its current state (``Agent.state_dict``: prior, posterior, q(pi), G, terms, last action, step counts), so a
restored agent continues a rollout with the same actions as the saved one would have taken. An agent whose
strategies run in NumPy (planners, inference over time, offline learning) is saved between episodes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

import aif.errors
from aif.checks import check_integer
from aif.errors import ParameterError, StrategyError
from aif.io import MAX_BYTES, FormatError, decode, encode, read_archive, write_archive

from .agent import Agent
from .episodes import ReplayBuffer
from .model import TabularModel

AGENT_KIND = "aif_deep.agent"
BUFFER_KIND = "aif_deep.replay_buffer"
TRAINING_KIND = "aif_deep.training"


def _map(x: Any, leaf: Callable[[Any], Any]) -> Any:
    """``x`` with ``leaf`` applied to everything that is not a dict, list or tuple."""
    if isinstance(x, dict):
        return {k: _map(v, leaf) for k, v in x.items()}
    return type(x)(_map(v, leaf) for v in x) if isinstance(x, (list, tuple)) else leaf(x)


def _numpy(x: Any) -> Any:
    """``x`` with every tensor (in dicts, lists and tuples) as a NumPy array copied to the CPU."""
    return _map(x, lambda v: v.detach().cpu().numpy().copy() if torch.is_tensor(v) else v)


def _torch(x: Any, device: torch.device | str = "cpu") -> Any:
    """The reverse of ``_numpy``: every NumPy array in ``x`` as a tensor on ``device``."""
    return _map(x, lambda v: torch.from_numpy(np.array(v)).to(device) if isinstance(v, np.ndarray) else v)


def _write(path: str | os.PathLike, kind: str, fields: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {}
    write_archive(path, kind, {"fields": encode(fields, arrays, kind)}, arrays)


def _read(path: str | os.PathLike, kind: str, names: tuple[str, ...], max_bytes: int) -> dict[str, Any]:
    """The fields ``_write`` stored, exactly ``names``: a missing or unknown one is a ``FormatError``."""
    check_integer(max_bytes, "max_bytes")
    meta, arrays = read_archive(path, kind, max_bytes)
    fields = decode(meta.get("fields"), arrays, kind, path) if set(meta) == {"fields"} else None
    known = set(fields) if isinstance(fields, dict) else set(meta)
    if not isinstance(fields, dict) or known != set(names):
        raise FormatError(f"{path}: the {kind} file lacks the entries {sorted(set(names) - known)} or holds entries "
                          f"this version does not know: {sorted(known - set(names))}")
    return fields


def _kind(x: Any, cls: type, name: str, what: str) -> None:
    if not isinstance(x, cls):
        raise StrategyError(f"{name} must be {what}, got {type(x).__name__}")


def save_agent(path: str | os.PathLike, agent: Agent) -> None:
    """Write ``agent`` (an ``aif_deep.Agent``) to ``path``; see the module docstring."""
    _kind(agent, Agent, "agent", "an aif_deep.Agent")
    m = agent.model
    if isinstance(m, TabularModel):
        model: dict[str, Any] = {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.init}
    elif isinstance(m, torch.nn.Module):
        model = {"state_dict": dict(m.state_dict())}
    else:
        raise StrategyError(f"cannot save agent.model of type {type(m).__name__}: TabularModel or an nn.Module")
    if not isinstance(agent.rng, (torch.Generator, type(None))):
        raise StrategyError(f"cannot save an agent whose rng is a {type(agent.rng).__name__} (a torch.Generator or "
                            "None)")
    state = {"gamma": agent.gamma, "alpha": agent.alpha, "rng": None if agent.rng is None else agent.rng.get_state(),
             **agent.state_dict()}
    # The settings: the constructor arguments but the model, precisions and generator (aif settings objects,
    # numbers and arrays, which aif.io.encode stores; a callable such as terminal_value is a TypeError).
    settings = {f.name: getattr(agent, f.name) for f in dataclasses.fields(agent)
                if f.init and f.name not in ("model", "gamma", "alpha", "rng")}
    _write(path, AGENT_KIND, {"settings": settings, "model": _numpy(model), "state": _numpy(state)})


def load_agent(path: str | os.PathLike, model: Any = None, max_bytes: int = MAX_BYTES) -> Agent:
    """The ``aif_deep.Agent`` that ``save_agent`` wrote, on the CPU.

    ``model``: required when the saved agent's model was an ``nn.Module`` (e.g. ``NeuralModel``): an instance
    of the same architecture, whose weights are replaced by the saved ones (in place).
    """
    fields = _read(path, AGENT_KIND, ("settings", "model", "state"), max_bytes)
    settings, saved, s = fields["settings"], _torch(fields["model"]), _torch(fields["state"])
    if "state_dict" in saved and not isinstance(model, torch.nn.Module):
        raise ParameterError(f"model: this file holds the weights of a neural model; pass an instance of its "
                             f"architecture as model, got {type(model).__name__}")
    if "state_dict" not in saved and model is not None:
        raise ParameterError("model: this file holds a TabularModel; load_agent(path) rebuilds it, pass no model")
    try:
        built: Any = model
        if isinstance(model, torch.nn.Module):
            model.load_state_dict(saved["state_dict"])
        else:
            built = TabularModel(**saved)
        rng = None if s["rng"] is None else torch.Generator(device="cpu").set_state(s["rng"])
        agent = Agent(built, gamma=s["gamma"], alpha=s["alpha"], rng=rng, **settings)
        agent.load_state_dict(s)
    except (KeyError, TypeError, RuntimeError, aif.errors.AifError) as err:
        raise FormatError(f"{path}: the saved agent cannot be rebuilt: {err}") from err
    return agent


def save_buffer(path: str | os.PathLike, buffer: ReplayBuffer) -> None:
    """Write a ``ReplayBuffer``'s episodes (observations, actions, rewards) to ``path``."""
    _kind(buffer, ReplayBuffer, "buffer", "an aif_deep.ReplayBuffer")
    _write(path, BUFFER_KIND, {"episodes": [[list(obs), a, r] for obs, a, r in buffer.episodes]})


def load_buffer(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> ReplayBuffer:
    """The ``ReplayBuffer`` that ``save_buffer`` wrote (arrays of the same dtypes and values)."""
    buffer = ReplayBuffer()
    for i, episode in enumerate(_read(path, BUFFER_KIND, ("episodes",), max_bytes)["episodes"]):
        try:
            obs, actions, rewards = episode
            buffer.add(list(obs), actions, rewards)
        except (ValueError, TypeError, ParameterError) as err:
            raise FormatError(f"{path}: episode {i} of the buffer is unreadable: {err}") from err
    return buffer


class TrainState(NamedTuple):
    """What a training checkpoint holds besides the weights: the steps taken and the metrics history."""

    step: int
    history: list


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: TrainState, rng: np.random.Generator | None = None,
                    generator: torch.Generator | None = None) -> None:
    """The model's and the optimiser's state, the step, the history and the random states (what ``train``
    writes every ``checkpoint_every`` steps)."""
    _kind(model, torch.nn.Module, "model", "a torch.nn.Module")
    _kind(optimizer, torch.optim.Optimizer, "optimizer", "a torch.optim.Optimizer")
    opt = optimizer.state_dict()
    _write(path, TRAINING_KIND, {
        "model": _numpy(dict(model.state_dict())), "step": int(state.step), "history": list(state.history),
        "optimizer": {"state": [[int(k), _numpy(v)] for k, v in opt["state"].items()],
                      "param_groups": _numpy(opt["param_groups"])},
        "rng": rng, "generator": None if generator is None else _numpy(generator.get_state())})


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    rng: np.random.Generator | None = None, generator: torch.Generator | None = None,
                    max_bytes: int = MAX_BYTES) -> TrainState:
    """Restore what ``save_checkpoint`` wrote, in place; weights of another architecture raise ``FormatError``."""
    _kind(model, torch.nn.Module, "model", "a torch.nn.Module")
    c = _read(path, TRAINING_KIND, ("model", "optimizer", "step", "history", "rng", "generator"), max_bytes)
    device = next(model.parameters()).device
    try:
        model.load_state_dict(_torch(c["model"], device))
    except RuntimeError as err:
        raise FormatError(f"{path}: the checkpoint's weights do not fit the model: {err}") from err
    try:
        if optimizer is not None:
            optimizer.load_state_dict({"state": {k: _torch(v, device) for k, v in c["optimizer"]["state"]},
                                       "param_groups": _torch(c["optimizer"]["param_groups"])})
        if rng is not None and c["rng"] is not None:
            rng.bit_generator.state = c["rng"].bit_generator.state
        if generator is not None and c["generator"] is not None:
            generator.set_state(_torch(c["generator"]))
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise FormatError(f"{path}: the checkpoint's optimiser or random states do not fit those given: {err}") from err
    return TrainState(int(c["step"]), list(c["history"]))
