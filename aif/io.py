"""Save and load models and agents: one NumPy ``.npz`` file, arrays plus JSON metadata, no pickle.

    aif.io.save_model("model.npz", model);  model = aif.io.load_model("model.npz")
    aif.io.save_agent("agent.npz", agent);  agent = aif.io.load_agent("agent.npz")

A file is a zip of ``.npy`` arrays (``np.savez_compressed``). Every array of the object (``A[0]``, ``pB[1]``,
``policies``, ``q_pi``, ...) is one entry; the entry ``__aif_meta__`` is a JSON string that describes the
object's structure (lists, tuples, settings dataclasses, scalars) and points at the array entries by name.
Files are read with ``np.load(..., allow_pickle=False)``: loading never runs code from the file, and the
only classes it builds are dataclasses defined in ``aif`` itself (models, settings) and NumPy bit generators.

An agent is saved whole: its constructor arguments (the model, precisions, the inference, EFE and selection
settings, the policies, the random generator with its exact ``bit_generator.state``) and its current state
(prior, posterior, q(pi), G, its terms, the last action, the step count). A loaded agent therefore continues a
rollout exactly where the saved one stood, random draws included.

A file that is damaged, truncated, not an aif file, or written by another format version raises
``FormatError``; a structurally valid file whose arrays fail the model's checks raises ``FormatError`` too,
with the model's message.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import AifError

FORMAT_NAME = "aif"
FORMAT_VERSION = 1
META_KEY = "__aif_meta__"

# Bit generators whose state is a plain dict (ints, strings, small integer arrays); restored by name.
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class FormatError(AifError):
    """A file is not an aif save file, is damaged or truncated, or was written by an incompatible version."""


# ----------------------------------------------------------------------------------------------------------
# Encoding: Python values <-> JSON nodes, with arrays set aside under generated keys.
#
# JSON node forms: a scalar (None, bool, int, float, str) or a JSON list (a Python list) stand for
# themselves; a JSON object is always one of the tagged forms below, so nothing in user data can be
# mistaken for a tag.


class _Encoder:
    def __init__(self):
        self.arrays = {}

    def array(self, x, where):
        x = np.asarray(x)
        if x.dtype.kind not in "biufc":
            raise TypeError(f"cannot save {where}: arrays must be numeric (got dtype {x.dtype}); aif files hold "
                            f"no pickled objects")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = x
        return {"__array__": key}

    def __call__(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)  # repr round-trips every float64 exactly (NaN and infinities as JSON extensions)
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return value.item()
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise TypeError(f"cannot save {where}: dictionary keys must be strings, got {bad[0]!r}")
            return {"__dict__": {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, np.random.Generator):
            bit_generator = value.bit_generator
            name = type(bit_generator).__name__
            if name not in BIT_GENERATORS:
                raise TypeError(f"cannot save {where}: bit generator {name} is not one of {BIT_GENERATORS}")
            return {"__generator__": name, "state": self(bit_generator.state, f"{where}.bit_generator.state")}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            cls = type(value)
            if not _is_aif_class(cls):
                raise TypeError(f"cannot save {where}: {cls.__module__}.{cls.__qualname__} is not an aif class")
            init = {f.name: self(getattr(value, f.name), f"{where}.{f.name}")
                    for f in dataclasses.fields(value) if f.init}
            return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": init}
        raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not supported")


class _Decoder:
    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path

    def __call__(self, node, where):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict) or len(node) == 0:
            raise FormatError(f"{self.path}: unreadable entry at {where}")
        if "__array__" in node:
            key = node["__array__"]
            if key not in self.arrays:
                raise FormatError(f"{self.path}: the array {key!r} of {where} is missing from the file")
            return self.arrays[key]
        if "__tuple__" in node:
            return tuple(self(v, f"{where}[{i}]") for i, v in enumerate(node["__tuple__"]))
        if "__dict__" in node:
            return {k: self(v, f"{where}[{k!r}]") for k, v in node["__dict__"].items()}
        if "__generator__" in node:
            name = node["__generator__"]
            if name not in BIT_GENERATORS:
                raise FormatError(f"{self.path}: {where} names bit generator {name!r}, not one of {BIT_GENERATORS}")
            bit_generator = getattr(np.random, name)()
            try:
                bit_generator.state = self(node["state"], f"{where}.state")
            except (TypeError, ValueError, KeyError) as err:
                raise FormatError(f"{self.path}: the random generator state of {where} is invalid: {err}") from None
            return np.random.Generator(bit_generator)
        if "__dataclass__" in node:
            cls = _aif_class(node["__dataclass__"], self.path, where)
            kwargs = {k: self(v, f"{where}.{k}") for k, v in node["fields"].items()}
            return _construct(cls, kwargs, self.path, where)
        raise FormatError(f"{self.path}: unknown entry {sorted(node)} at {where}")


def _is_aif_class(cls):
    return cls.__module__ == "aif" or cls.__module__.startswith("aif.")


def _aif_class(name, path, where):
    """The aif dataclass ``module:qualname``; nothing outside ``aif`` is ever imported."""
    module, _, qualname = str(name).partition(":")
    if not (module == "aif" or module.startswith("aif.")) or not qualname:
        raise FormatError(f"{path}: {where} names the class {name!r}, which is not an aif class")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise FormatError(f"{path}: {where} names the class {name!r}, which this version of aif does not have "
                          f"(the file comes from an incompatible version)") from None
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise FormatError(f"{path}: {where} names {name!r}, which is not an aif dataclass")
    return obj


def _construct(cls, kwargs, path, where):
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise FormatError(f"{path}: {where} sets {unknown} on {cls.__name__}, which has no such argument in "
                          f"this version of aif (the file comes from an incompatible version)")
    try:
        return cls(**kwargs)
    except AifError as err:
        raise FormatError(f"{path}: {where} holds an invalid {cls.__name__}: {err}") from err
    except TypeError as err:
        raise FormatError(f"{path}: {where} cannot be rebuilt as {cls.__name__}: {err}") from err


# ----------------------------------------------------------------------------------------------------------
# Files


def _write(path, kind, root, encoder):
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "aif_version": _aif_version(),
            "kind": kind, "root": root}
    entries = dict(encoder.arrays)
    entries[META_KEY] = np.array(json.dumps(meta))  # a unicode array: stored without pickle
    path = Path(path)
    # Write beside the target and rename, so a crash mid-write never leaves a truncated file at ``path``.
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **entries)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path, kind):
    """``(meta, arrays)`` of an aif file of the given kind; ``FormatError`` for anything unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise FormatError(f"{path} is a single .npy array, not an aif save file (an .npz archive)")
        with data:
            if META_KEY not in data.files:
                raise FormatError(f"{path} is not an aif save file: it has no {META_KEY!r} entry")
            meta = json.loads(str(data[META_KEY][()]))
            arrays = {k: data[k] for k in data.files if k != META_KEY}
    except FormatError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        # np.load raises ValueError for files that are neither .npz nor .npy (it refuses to unpickle them),
        # zipfile BadZipFile for a truncated archive or a bad CRC, zlib.error for damaged compressed data.
        raise FormatError(f"{path} is damaged or not an aif save file ({type(err).__name__}: {err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise FormatError(f"{path} is not an aif save file: its metadata has no format {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(f"{path} has format version {version!r} (written by aif {meta.get('aif_version')}); "
                          f"this aif ({_aif_version()}) reads format version {FORMAT_VERSION} only")
    if meta.get("kind") != kind:
        raise FormatError(f"{path} holds a {meta.get('kind')!r}, not a {kind!r}; use load_{meta.get('kind')}")
    if "root" not in meta:
        raise FormatError(f"{path}: the metadata has no 'root' entry")
    return meta, arrays


@contextmanager
def _malformed(path):
    """Metadata that parses as JSON but not as our nodes (a missing key, a wrong type) is a FormatError too."""
    try:
        yield
    except FormatError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        raise FormatError(f"{path}: malformed metadata ({type(err).__name__}: {err})") from err


def _aif_version():
    from . import __version__

    return __version__


def save_model(path, model) -> None:
    """Write a ``GenerativeModel`` to ``path`` (an ``.npz`` archive; the name is used as given).

    Every constructor argument is saved: A, B, C, D, E, the Dirichlet counts and the dependencies.
    """
    from .model import GenerativeModel

    if not isinstance(model, GenerativeModel):
        raise TypeError(f"model must be an aif.GenerativeModel, got {type(model).__name__}")
    encoder = _Encoder()
    _write(path, "model", encoder(model, "model"), encoder)


def load_model(path):
    """Read a ``GenerativeModel`` written by ``save_model`` (validated again, arrays bit-identical).

    Raises:
        FormatError: the file is damaged, truncated, not an aif model file, from another format version, or
            its arrays fail the model's checks. FileNotFoundError: no file at ``path``.
    """
    from .model import GenerativeModel

    meta, arrays = _read(path, "model")
    with _malformed(path):
        model = _Decoder(arrays, Path(path))(meta["root"], "model")
    if not isinstance(model, GenerativeModel):
        raise FormatError(f"{path}: the root entry is a {type(model).__name__}, not a GenerativeModel")
    return model


def save_agent(path, agent) -> None:
    """Write an ``aif.Agent`` (settings, model, random generator and current beliefs) to ``path``.

    Raises:
        TypeError: an attribute holds a value that cannot be saved without pickle (the message names it).
    """
    from .agent import Agent

    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be an aif.Agent, got {type(agent).__name__}")
    cls = type(agent)
    if not _is_aif_class(cls):
        raise TypeError(f"cannot save a {cls.__module__}.{cls.__qualname__}: only aif's own Agent classes")
    encoder = _Encoder()
    init_names = [f.name for f in dataclasses.fields(agent) if f.init]
    init = {name: encoder(getattr(agent, name), f"agent.{name}") for name in init_names}
    # Everything else the agent holds is its running state (prior, qs, q_pi, G, terms, action, t, ...).
    state = {name: encoder(value, f"agent.{name}") for name, value in vars(agent).items()
             if name not in init_names}
    root = {"class": f"{cls.__module__}:{cls.__qualname__}", "init": init, "state": state}
    _write(path, "agent", root, encoder)


def load_agent(path):
    """Read an agent written by ``save_agent``; it continues exactly where the saved agent stood.

    Raises:
        FormatError: as ``load_model``, or the file's agent has settings this version does not know.
    """
    from .agent import Agent

    path = Path(path)
    meta, arrays = _read(path, "agent")
    root = meta["root"]
    if not isinstance(root, dict) or not {"class", "init", "state"} <= set(root):
        raise FormatError(f"{path}: the agent entry lacks its class, settings or state")
    cls = _aif_class(root["class"], path, "agent")
    if not issubclass(cls, Agent):
        raise FormatError(f"{path}: the agent entry names {root['class']!r}, which is not an aif Agent")
    decode = _Decoder(arrays, path)
    with _malformed(path):
        init = {name: decode(node, f"agent.{name}") for name, node in root["init"].items()}
        agent = _construct(cls, init, path, "agent")
        for name, node in root["state"].items():
            setattr(agent, name, decode(node, f"agent.{name}"))
    return agent


__all__ = ["FormatError", "FORMAT_VERSION", "save_model", "load_model", "save_agent", "load_agent"]
