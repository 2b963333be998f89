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
import hashlib
import importlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .agent import Agent
from .errors import AifError, ParameterError, StrategyError
from .model import GenerativeModel

FORMAT_NAME = "aif"
FORMAT_VERSION = 3  # 2: sha256 checksums of every array; 3: and of the whole file, in the zip comment
SEAL = b"aif-sha256:"  # the zip comment: SEAL + the hex sha256 of every byte of the file before the digest
META_KEY = "__aif_meta__"
MAX_BYTES = 4 * 2**30  # default limit of read_archive: file size and the sum of the entries unpacked
MAX_ENTRIES = 100_000

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


def encode(value: Any, arrays: dict[str, np.ndarray], where: str = "value") -> Any:
    """``value`` (scalars, lists, tuples, str-keyed dicts, arrays, NumPy generators, aif dataclasses such as
    settings objects and models) as a JSON node; its arrays are added to ``arrays`` under new keys ``a<n>``.
    A ``TypeError`` names ``where`` for anything else (no pickle, no foreign class)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value  # repr round-trips every float64 exactly (NaN and infinities as JSON extensions)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"cannot save {where}: arrays must be numeric (got dtype {value.dtype}); aif files "
                            f"hold no pickled objects")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, list):
        return [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"cannot save {where}: dictionary keys must be strings, got {bad[0]!r}")
        return {"__dict__": {k: encode(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, np.random.Generator):
        name = type(value.bit_generator).__name__
        if name not in BIT_GENERATORS:
            raise TypeError(f"cannot save {where}: bit generator {name} is not one of {BIT_GENERATORS}")
        return {"__generator__": name, "state": encode(value.bit_generator.state, arrays, f"{where}.state")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__.partition(".")[0] != "aif":
            raise TypeError(f"cannot save {where}: {cls.__module__}.{cls.__qualname__} is not an aif class")
        init = {f.name: encode(getattr(value, f.name), arrays, f"{where}.{f.name}")
                for f in dataclasses.fields(value) if f.init}
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": init}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not supported")


def decode(node: Any, arrays: dict[str, np.ndarray], where: str = "value", path: str | os.PathLike = "") -> Any:
    """The value ``encode`` turned into ``node`` (its arrays looked up in ``arrays``). Only dataclasses defined
    in ``aif`` are built, with only their known constructor fields; anything else is a ``FormatError`` naming
    ``path`` and ``where``."""
    try:
        return _decode(node, arrays, where, path)
    except FormatError:
        raise
    except RecursionError:
        raise FormatError(f"{path}: the metadata is nested too deeply to be an aif file") from None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        raise FormatError(f"{path}: malformed metadata ({type(err).__name__}: {err})") from err


def _decode(node: Any, arrays: dict[str, np.ndarray], where: str, path: str | os.PathLike) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, f"{where}[{i}]", path) for i, v in enumerate(node)]
    if not isinstance(node, dict) or len(node) == 0:
        raise FormatError(f"{path}: unreadable entry at {where}")
    if "__array__" in node:
        key = node["__array__"]
        if key not in arrays:
            raise FormatError(f"{path}: the array {key!r} of {where} is missing from the file")
        return arrays[key]
    if "__tuple__" in node:
        return tuple(_decode(v, arrays, f"{where}[{i}]", path) for i, v in enumerate(node["__tuple__"]))
    if "__dict__" in node:
        return {k: _decode(v, arrays, f"{where}[{k!r}]", path) for k, v in node["__dict__"].items()}
    if "__generator__" in node:
        name = node["__generator__"]
        if name not in BIT_GENERATORS:
            raise FormatError(f"{path}: {where} names bit generator {name!r}, not one of {BIT_GENERATORS}")
        bit_generator = getattr(np.random, name)()
        try:
            bit_generator.state = _decode(node["state"], arrays, f"{where}.state", path)
        except (TypeError, ValueError, KeyError) as err:
            raise FormatError(f"{path}: the random generator state of {where} is invalid: {err}") from None
        return np.random.Generator(bit_generator)
    if "__dataclass__" in node:
        cls = _aif_class(node["__dataclass__"], path, where)
        kwargs = {k: _decode(v, arrays, f"{where}.{k}", path) for k, v in node["fields"].items()}
        return _construct(cls, kwargs, path, where)
    raise FormatError(f"{path}: unknown entry {sorted(node)} at {where}")


def _aif_class(name: str, path: str | os.PathLike, where: str) -> type:
    """The aif dataclass ``module:qualname``; nothing outside ``aif`` is ever imported."""
    module, _, qualname = str(name).partition(":")
    if module.partition(".")[0] != "aif" or not qualname:
        raise FormatError(f"{path}: {where} names the class {name!r}, which is not an aif class")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise FormatError(f"{path}: {where} names the class {name!r}, which this version of aif does not have "
                          f"(the file comes from an incompatible version)") from None
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise FormatError(f"{path}: {where} names {name!r}, which is not an aif dataclass")
    return obj


def _construct(cls: type, kwargs: dict[str, Any], path: str | os.PathLike, where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
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
# Archives


def digest(x: np.ndarray) -> str:
    """The sha256 (hex) of an array's dtype, shape and bytes: the checksum stored for every array."""
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    h.update(x.tobytes())
    return h.hexdigest()


def write_archive(path: str | os.PathLike, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (numeric NumPy arrays under names that do not start with ``__``) and ``meta`` (a JSON
    dict) to ``path`` as one ``.npz`` archive: the entry ``__aif_meta__`` holds the header (``format``
    "aif", ``format_version``, ``aif_version``, ``kind``), ``meta``'s keys and ``sha256``: one checksum per
    array; the zip comment holds the sha256 of the whole file before it (so a flipped byte anywhere, zip headers
    included, is found). Written beside the target and renamed, so a crash never leaves a truncated file at
    ``path``."""
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "aif_version": _aif_version(), "kind": kind}
    clash = sorted(set(meta) & (set(header) | {"sha256"}))
    if clash or any(k.startswith("__") for k in arrays):
        raise TypeError(f"write_archive: meta may not set {clash} and array names may not start with '__'")
    entries = {k: np.asarray(v) for k, v in arrays.items()}
    bad = [k for k, v in entries.items() if v.dtype.kind not in "biufc"]
    if bad:
        raise TypeError(f"write_archive: the array {bad[0]!r} is not numeric; aif files hold no pickled objects")
    header.update(meta, sha256={k: digest(v) for k, v in entries.items()})
    entries[META_KEY] = np.array(json.dumps(header))  # a unicode array: stored without pickle
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **entries)  # type: ignore[arg-type]
    target = _path(path)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)  # unique: 0600
    try:
        os.fchmod(fd, target.stat().st_mode & 0o777 if target.exists() else 0o644)  # as an ordinary file
        with os.fdopen(fd, "wb") as fh:
            fh.write(seal(buffer.getvalue()))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _path(path: Any) -> Path:
    """A file name (a ``str`` or ``os.PathLike`` without NUL bytes) as a ``Path``, else ``ParameterError``."""
    if not isinstance(path, (str, os.PathLike)) or "\0" in str(path):
        raise ParameterError(f"path must be a file name (a str or os.PathLike), got {path!r}")
    return Path(path)


def seal(archive: bytes) -> bytes:
    """The zip ``archive`` with its comment set to ``SEAL`` and the sha256 of every byte before the digest."""
    buffer = io.BytesIO(archive)
    with zipfile.ZipFile(buffer, "a") as zf:  # rewrites only the end record, now with the comment
        zf.comment = SEAL + b"0" * 64
    body = buffer.getvalue()[:-64]
    return body + hashlib.sha256(body).hexdigest().encode()


def read_archive(path: str | os.PathLike, kind: str, max_bytes: int = MAX_BYTES
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of an archive ``write_archive`` wrote with this ``kind`` (``meta`` without the header
    keys). Refused with a ``FormatError`` before anything is allocated: a file, or the sum of its entries
    unpacked, above ``max_bytes`` (default ``MAX_BYTES``, 4 GiB); more than ``MAX_ENTRIES`` entries. Refused
    after reading: a damaged or truncated file, another format, version or kind, an array whose sha256
    differs from the stored one, a missing or extra array. ``FileNotFoundError``: no file at ``path``."""
    path = _path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise FormatError(f"{path} is {size} bytes, above the limit max_bytes={max_bytes}")
    sealed = False
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # bounded: a device such as /dev/zero reports size 0
        if len(raw) > max_bytes:
            raise FormatError(f"{path} holds more than max_bytes={max_bytes} bytes")
        sealed = raw[-75:-64] == SEAL and hashlib.sha256(raw[:-64]).hexdigest().encode() == raw[-64:]
        if zipfile.is_zipfile(io.BytesIO(raw)):
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                infos = archive.infolist()
            unpacked = sum(i.file_size for i in infos)
            if len(infos) > MAX_ENTRIES or unpacked > max_bytes:
                raise FormatError(f"{path} holds {len(infos)} entries of {unpacked} bytes unpacked, above the "
                                  f"limits MAX_ENTRIES={MAX_ENTRIES} and max_bytes={max_bytes}")
        if not sealed and raw[-75:-64] == SEAL:
            raise FormatError(f"{path} is damaged or not an aif save file (it fails its whole-file sha256 checksum)")
        data = np.load(io.BytesIO(raw), allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise FormatError(f"{path} is a single .npy array, not an aif save file (an .npz archive)")
        with data:
            if META_KEY not in data.files:
                raise FormatError(f"{path} is not an aif save file: it has no {META_KEY!r} entry")
            meta = json.loads(str(data[META_KEY][()]))
            arrays = {k: data[k] for k in data.files if k != META_KEY}
    except FormatError:
        raise
    except Exception as err:  # noqa: BLE001 -- whatever a damaged zip or JSON raises (ValueError, BadZipFile,
        # zlib.error, NotImplementedError for a flipped compression method, ...) is a damaged file here
        raise FormatError(f"{path} is damaged or not an aif save file ({type(err).__name__}: {err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise FormatError(f"{path} is not an aif save file: its metadata has no format {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(f"{path} has format version {version!r} (written by aif {meta.get('aif_version')}); "
                          f"this aif ({_aif_version()}) reads format version {FORMAT_VERSION} only")
    if not sealed:
        raise FormatError(f"{path} is damaged or not an aif save file (it fails its whole-file sha256 checksum)")
    if meta.get("kind") != kind:
        loader = LOADERS.get(meta.get("kind"), "the loader of that kind")  # type: ignore[arg-type]
        raise FormatError(f"{path} holds a {meta.get('kind')!r}, not a {kind!r}; read it with {loader}")
    sums = meta.pop("sha256", None)
    if not isinstance(sums, dict):
        raise FormatError(f"{path}: the metadata has no sha256 checksums")
    for key in sorted(set(sums) - set(arrays)):
        raise FormatError(f"{path}: the array {key!r} is missing from the file")
    for key, x in arrays.items():
        if sums.get(key) != digest(x):
            raise FormatError(f"{path}: the array {key!r} fails its sha256 checksum (the file is damaged or was "
                              f"edited)")
    for key in ("format", "format_version", "aif_version", "kind"):
        meta.pop(key, None)
    return meta, arrays


LOADERS = {"model": "aif.io.load_model", "agent": "aif.io.load_agent", "aif_deep.agent": "aif_deep.load_agent",
           "aif_deep.replay_buffer": "aif_deep.load_buffer", "aif_deep.training": "aif_deep.load_checkpoint"}


def _aif_version() -> str:
    from . import __version__

    return __version__


def save_model(path: str | os.PathLike, model: GenerativeModel) -> None:
    """Write a ``GenerativeModel`` to ``path`` (an ``.npz`` archive; the name is used as given).

    Every constructor argument is saved: A, B, C, D, E, the Dirichlet counts (pA, pB, pD, pE, pC) and the
    dependencies. A new optional argument such as pE or pC keeps the format version: files without it load as
    before, and a file that sets it is refused by an older aif with a ``FormatError`` naming it.
    """
    if not isinstance(model, GenerativeModel):
        raise StrategyError(f"model must be an aif.GenerativeModel, got {type(model).__name__}")
    arrays: dict[str, np.ndarray] = {}
    write_archive(path, "model", {"root": encode(model, arrays, "model")}, arrays)


def _root(path: str | os.PathLike, kind: str) -> tuple[Any, dict[str, np.ndarray]]:
    meta, arrays = read_archive(path, kind)
    if "root" not in meta:
        raise FormatError(f"{path}: the metadata has no 'root' entry")
    return meta["root"], arrays


def load_model(path: str | os.PathLike) -> GenerativeModel:
    """Read a ``GenerativeModel`` written by ``save_model`` (validated again, arrays bit-identical).

    Raises:
        FormatError: the file is damaged, truncated, not an aif model file, from another format version, or
            its arrays fail the model's checks. FileNotFoundError: no file at ``path``.
    """
    root, arrays = _root(path, "model")
    model = decode(root, arrays, "model", path)
    if not isinstance(model, GenerativeModel):
        raise FormatError(f"{path}: the root entry is a {type(model).__name__}, not a GenerativeModel")
    return model


def save_agent(path: str | os.PathLike, agent: Agent) -> None:
    """Write an ``aif.Agent`` (settings, model, random generator and current beliefs) to ``path``.

    Raises:
        TypeError: an attribute holds a value that cannot be saved without pickle (the message names it).
    """
    if not isinstance(agent, Agent):
        raise StrategyError(f"agent must be an aif.Agent, got {type(agent).__name__}")
    arrays: dict[str, np.ndarray] = {}
    init_names = [f.name for f in dataclasses.fields(agent) if f.init]
    init = {name: encode(getattr(agent, name), arrays, f"agent.{name}") for name in init_names}
    # Everything else the agent holds is its running state (prior, qs, q_pi, G, terms, action, t, ...); its
    # private cycle object is rebuilt from the settings.
    state = {name: encode(value, arrays, f"agent.{name}") for name, value in vars(agent).items()
             if name not in init_names and not name.startswith("_")}
    write_archive(path, "agent", {"root": {"init": init, "state": state}}, arrays)


def load_agent(path: str | os.PathLike) -> Agent:
    """Read an agent written by ``save_agent``; it continues exactly where the saved agent stood. Only the
    Agent's constructor arguments and the state attributes a new Agent has are set from the file.

    Raises:
        FormatError: as ``load_model``, or the file's agent has settings or state this version does not know.
    """
    root, arrays = _root(path, "agent")
    if not isinstance(root, dict) or not {"init", "state"} <= set(root):
        raise FormatError(f"{path}: the agent entry lacks its settings or state")
    init = {name: decode(node, arrays, f"agent.{name}", path) for name, node in root["init"].items()}
    agent = _construct(Agent, init, path, "agent")
    unknown = sorted(set(root["state"]) - set(vars(agent)))
    if unknown:
        raise FormatError(f"{path}: the agent's state sets {unknown}, which an aif.Agent does not have")
    for name, node in root["state"].items():
        setattr(agent, name, decode(node, arrays, f"agent.{name}", path))
    return agent


__all__ = ["FormatError", "FORMAT_VERSION", "MAX_BYTES", "MAX_ENTRIES", "write_archive", "read_archive",
           "encode", "decode", "digest", "seal", "save_model", "load_model", "save_agent", "load_agent"]
