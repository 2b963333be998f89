"""Save and restore ``aif_deep`` agents and replay buffers; read torch checkpoint files safely.

    aif_deep.save_agent("agent.pt", agent);  agent = aif_deep.load_agent("agent.pt")
    aif_deep.save_buffer("buffer.pt", buffer);  buffer = aif_deep.load_buffer("buffer.pt")

A file is one ``torch.save`` dictionary of tensors, plain numbers and strings, with the settings as a JSON
string; it is read with ``torch.load(..., weights_only=True)``, so loading never runs code from the file.
An agent is saved whole: its model (a ``TabularModel``'s tensors, or a ``NeuralModel``'s ``state_dict``, whose
architecture the caller rebuilds and passes to ``load_agent``), its settings, its ``torch.Generator`` state and
its current state (prior, posterior, q(pi), G, terms, last action, step count), so a restored agent continues a
rollout with the same actions as the saved one would have taken.

A damaged, truncated or foreign file raises ``aif.io.FormatError``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from typing import Any, NamedTuple

import numpy as np
import torch

import aif
import aif.errors
from aif.errors import ParameterError
from aif.io import FormatError, _Decoder, _Encoder

from .agent import Agent
from .episodes import ReplayBuffer
from .model import TabularModel

AGENT_FORMAT = "aif_deep.agent"
BUFFER_FORMAT = "aif_deep.replay_buffer"
TRAINING_FORMAT = "aif_deep.training"
FORMAT_VERSION = 1


def read_torch_file(path: str | os.PathLike, device: torch.device | str | None = None, keys: tuple[str, ...] = (),
                    kind: str | None = None) -> dict:
    """``torch.load(path, weights_only=True)`` as a dict holding ``keys``; any failure is a ``FormatError``."""
    try:
        # torch.load does not check the archive's CRC-32s: a flipped byte inside a tensor would load silently.
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged is not None:
            raise FormatError(f"{path}: the entry {damaged!r} fails its CRC check (the file is damaged)")
        state = torch.load(path, map_location=device, weights_only=True)
    except FormatError:
        raise
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, bad pickle opcodes, a forbidden global: all "not a valid file"
        raise FormatError(f"{path}: not a readable aif_deep checkpoint (damaged, truncated or not a torch "
                          f"file): {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err
    if not isinstance(state, dict):
        raise FormatError(f"{path}: expected a dictionary checkpoint, found {type(state).__name__}")
    if kind is not None and (state.get("format") != kind or state.get("format_version") != FORMAT_VERSION):
        raise FormatError(f"{path}: expected a {kind} file of version {FORMAT_VERSION}, found "
                          f"{state.get('format')!r} version {state.get('format_version')!r}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise FormatError(f"{path}: the checkpoint lacks the entries {missing}")
    unknown = sorted(set(state) - set(keys) - {"format", "format_version"})
    if unknown:
        raise FormatError(f"{path}: the checkpoint holds entries this version does not know: {unknown}")
    return state


def _write(path, state) -> None:
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash while writing leaves the previous file intact


def _tensors(xs):
    return None if xs is None else [x.detach().cpu().clone() for x in xs]


def _settings_json(agent: Agent) -> tuple:
    """The agent's non-tensor settings as JSON (via ``aif.io``'s encoder) and the arrays it set aside."""
    inference: Any = agent.inference
    base: Any = {"FixedPoint": aif.FixedPoint, "Exact": aif.Exact}.get(type(inference).__name__)
    if base is None or not isinstance(inference, base):
        raise TypeError(f"cannot save agent.inference of type {type(inference).__name__}: only FixedPoint and "
                        f"Exact settings are saved")
    if agent.terminal_value is not None:
        raise TypeError("cannot save an agent with a terminal_value (a callable); save its settings yourself")
    enc = _Encoder()
    settings = {
        "inference": base(**{f.name: getattr(inference, f.name) for f in dataclasses.fields(inference)}),
        "efe": agent.efe, "efe_terms": tuple(agent.efe_terms), "selection": agent.selection,
        "control_factors": agent.control_factors, "batch_shape": tuple(agent.batch_shape),
        "discount": float(agent.discount), "learning": agent.learning,
    }
    root = enc(settings, "agent")
    return json.dumps(root), {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in enc.arrays.items()}


def save_agent(path: str | os.PathLike, agent: Agent) -> None:
    """Write ``agent`` (an ``aif_deep.Agent``) to ``path``; see the module docstring."""
    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be an aif_deep.Agent, got {type(agent).__name__}")
    settings, arrays = _settings_json(agent)
    model = agent.model
    if isinstance(model, TabularModel):
        model_state = {"kind": "tabular", "A": _tensors(model.A), "B": _tensors(model.B), "C": _tensors(model.C),
                       "D": _tensors(model.D), "E": None if model.E is None else model.E.detach().cpu().clone(),
                       "A_dependencies": [list(map(int, d)) for d in model.A_dependencies],
                       "B_dependencies": [list(map(int, d)) for d in model.B_dependencies],
                       "batch_shape": list(model.batch_shape), "pA": _tensors(model.pA), "pB": _tensors(model.pB)}
    elif isinstance(model, torch.nn.Module):
        model_state = {"kind": "module", "state_dict": {k: v.detach().cpu().clone()
                                                        for k, v in model.state_dict().items()}}
    else:
        raise TypeError(f"cannot save agent.model of type {type(model).__name__}: TabularModel or an nn.Module")
    as_t = lambda x: x.detach().cpu().clone() if torch.is_tensor(x) else float(x)  # noqa: E731
    _write(path, {
        "format": AGENT_FORMAT, "format_version": FORMAT_VERSION, "settings": settings, "arrays": arrays,
        "model": model_state, "policies": torch.from_numpy(np.asarray(agent.policies, dtype=np.int64)),
        "gamma": as_t(agent.gamma), "alpha": as_t(agent.alpha),
        "rng": None if agent.rng is None else agent.rng.get_state(),
        "state": {"prior": _tensors(agent.prior), "qs": _tensors(agent.qs),
                  "q_pi": None if agent.q_pi is None else agent.q_pi.detach().cpu().clone(),
                  "G": None if agent.G is None else agent.G.detach().cpu().clone(),
                  "terms": None if agent.terms is None else
                  {k: v.detach().cpu().clone() for k, v in agent.terms.items()},
                  "action": None if agent.action is None else agent.action.detach().cpu().clone(),
                  "t": int(agent.t), "transition": agent._transition.detach().cpu().clone(),
                  "initial_counts": None if agent.learning is None else
                  {k: _tensors(v) for k, v in agent.initial_counts.items()}},
    })


def load_agent(path: str | os.PathLike, model: Any = None) -> Agent:
    """The ``aif_deep.Agent`` that ``save_agent`` wrote, on the CPU.

    ``model``: required when the saved agent's model was an ``nn.Module`` (e.g. ``NeuralModel``): an instance
    of the same architecture, whose weights are replaced by the saved ones (in place).
    """
    state = read_torch_file(path, "cpu", ("settings", "arrays", "model", "policies", "gamma", "alpha", "rng",
                                          "state"), kind=AGENT_FORMAT)
    try:
        settings = _Decoder({k: v.numpy() for k, v in state["arrays"].items()}, path)(
            json.loads(state["settings"]), "agent")
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        raise FormatError(f"{path}: the agent's settings are unreadable: {err}") from err
    saved = state["model"]
    try:
        if saved["kind"] == "tabular":
            if model is not None:
                raise ParameterError("model: this file holds a TabularModel; load_agent(path) rebuilds it, pass no "
                                     "model")
            model = TabularModel(A=saved["A"], B=saved["B"], C=saved["C"], D=saved["D"], E=saved["E"],
                                 A_dependencies=saved["A_dependencies"], B_dependencies=saved["B_dependencies"],
                                 batch_shape=tuple(saved["batch_shape"]), pA=saved.get("pA"), pB=saved.get("pB"))
        elif saved["kind"] == "module":
            if not isinstance(model, torch.nn.Module):
                raise ParameterError(f"model: this file holds the weights of a neural model; pass an instance of its "
                                     f"architecture as model, got {type(model).__name__}")
            model.load_state_dict(saved["state_dict"])
        else:
            raise FormatError(f"{path}: unknown model kind {saved['kind']!r}")
    except (KeyError, RuntimeError, aif.errors.ModelError) as err:
        raise FormatError(f"{path}: the saved model cannot be rebuilt: {err}") from err
    rng = None
    if state["rng"] is not None:
        rng = torch.Generator(device="cpu")
        rng.set_state(state["rng"])
    s = state["state"]
    try:
        agent = Agent(model, gamma=state["gamma"], alpha=state["alpha"], inference=settings["inference"],
                      efe=settings["efe"], efe_terms=settings["efe_terms"], selection=settings["selection"],
                      policies=state["policies"].numpy(), control_factors=settings["control_factors"], rng=rng,
                      batch_shape=settings["batch_shape"], discount=settings["discount"],
                      learning=settings.get("learning"))
        agent.prior, agent.qs, agent.q_pi, agent.G = s["prior"], s["qs"], s["q_pi"], s["G"]
        agent.terms, agent.action, agent.t = s["terms"], s["action"], int(s["t"])
        if "transition" in s:
            agent._transition = s["transition"]
        if agent.learning is not None:
            agent.initial_counts = s["initial_counts"]  # forgetting decays towards these, not the loaded counts
    except (KeyError, aif.errors.AifError) as err:
        raise FormatError(f"{path}: the saved agent cannot be rebuilt: {err}") from err
    return agent


def save_buffer(path: str | os.PathLike, buffer: ReplayBuffer) -> None:
    """Write a ``ReplayBuffer``'s episodes (observations, actions, rewards) to ``path``."""
    episodes = [{"observations": [torch.from_numpy(np.ascontiguousarray(o)) for o in obs],
                 "actions": torch.from_numpy(np.ascontiguousarray(a)), "rewards": torch.from_numpy(np.asarray(r))}
                for obs, a, r in buffer.episodes]
    _write(path, {"format": BUFFER_FORMAT, "format_version": FORMAT_VERSION, "episodes": episodes})


def load_buffer(path: str | os.PathLike) -> ReplayBuffer:
    """The ``ReplayBuffer`` that ``save_buffer`` wrote (arrays of the same dtypes and values)."""
    state = read_torch_file(path, "cpu", ("episodes",), kind=BUFFER_FORMAT)
    buffer = ReplayBuffer()
    try:
        for i, e in enumerate(state["episodes"]):
            buffer.add([o.numpy() for o in e["observations"]], e["actions"].numpy(), e["rewards"].numpy())
    except (KeyError, TypeError, AttributeError, ParameterError) as err:
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
    _write(path, {"format": TRAINING_FORMAT, "format_version": FORMAT_VERSION, "model": model.state_dict(),
                  "optimizer": optimizer.state_dict(), "step": int(state.step), "history": list(state.history),
                  "rng": None if rng is None else rng.bit_generator.state,
                  "generator": None if generator is None else generator.get_state()})


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    rng: np.random.Generator | None = None, generator: torch.Generator | None = None) -> TrainState:
    """Restore what ``save_checkpoint`` wrote, in place; weights of another architecture raise ``FormatError``."""
    device = next(model.parameters()).device
    state = read_torch_file(path, device, ("model", "optimizer", "step", "history", "rng", "generator"),
                            kind=TRAINING_FORMAT)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise FormatError(f"{path}: the checkpoint's weights do not fit the model: {err}") from err
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if rng is not None and state["rng"] is not None:
        rng.bit_generator.state = state["rng"]
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
    return TrainState(int(state["step"]), list(state["history"]))
