"""Models built from names: named factors, modalities and controls, labelled states, outcomes and actions, and
tables read and written by label (pymdp 1.0's ``pymdp.distribution``: ``Distribution`` and ``compile_model``).

A description names every variable and what it depends on (the same dictionary pymdp 1.0 reads)::

    description = {
        "observations": {"position_obs": {"elements": ["left", "right"], "depends_on": ["position"]}},
        "controls": {"move": {"elements": ["go_left", "go_right"]}},
        "states": {"position": {"elements": ["left", "right"], "depends_on": ["position"],
                                "controlled_by": ["move"]}},
    }
    labelled = compile_model(description)            # tables of zeros (A, B), zeros (C), uniform (D, H)
    labelled.A["position_obs"]["left", "left"] = 1.0
    labelled.A["position_obs"]["right", "right"] = 1.0
    labelled.B["position"]["left", :, "go_left"] = 1.0     # (next state, previous state, control)
    labelled.B["position"]["right", :, "go_right"] = 1.0
    labelled.C["position_obs"]["right"] = 2.0
    model = labelled.to_model()                      # an aif.GenerativeModel, checked label by label
    agent = aif.Agent(model, policies=labelled.policies(horizon=2))
    action = agent.step(labelled.observation({"position_obs": "left"}))
    labelled.controls_of(action)                     # {"move": "go_right"}

Tables (``Distribution``) have one ``event`` axis (the outcome, or the next state) and ``given`` axes (what it is
conditioned on), in this order: ``A[m]``: ``(O_m, *states in depends_on)``; ``B[f]``: ``(S_f, *states in
depends_on, *controls in controlled_by)``; ``C[m]``: ``(O_m,)``; ``D[f]``, ``H[f]``: ``(S_f,)``.

The controls are action factors (``aif.actions.ActionFactors``, ``LabelledModel.actions``): a factor controlled by
several controls gets one control axis in the built model, their joint action in C order (the last control
fastest), and a factor controlled by none gets one of size 1, as pymdp 1.0's ``Agent`` flattens
``B_action_dependencies``. ``LabelledModel.policies`` lists the policies over the controls themselves (pymdp 1.0's
``agent.policies``): when a control drives several factors, the factors' actions stay consistent, which per-factor
enumeration would not guarantee; select actions from such policies with ``Selection(sampling="full")``, as pymdp
1.0 does.

Where this differs from pymdp 1.0 (each a silent failure there, an error or a definition here): a factor that
does not list itself in ``depends_on`` gets its table (pymdp drops it, so B no longer lines up with the states);
``depends_on`` defaults to the factor itself and ``controlled_by`` to none (pymdp: no table, or a ``KeyError``);
the keys of a variable may come in any order (pymdp needs ``elements`` or ``size`` before ``depends_on``); a
misspelt key, an unknown name, a repeated label, a control that drives no factor or a state that shares a
control's name is an error; a slice such as ``1:3`` selects what it says (pymdp reads any slice as ``:``);
``normalize`` refuses a column of zeros (pymdp writes NaN).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .actions import ActionFactors
from .checks import COLUMN_TOL, as_numbers, check_finite, check_integer, first_index
from .errors import ModelError, ObservationError, PolicyError
from .model import GenerativeModel
from .utils import normalize

Label = Hashable
KINDS = {"observations": ("elements", "size", "depends_on"), "controls": ("elements", "size"),
         "states": ("elements", "size", "depends_on", "controlled_by")}


def _is_position(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_labels(labels: Any, owner: str) -> tuple:
    """Distinct hashable labels; an integer label must equal its position (integers index by position)."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence | np.ndarray):
        raise ModelError(f"the labels of {owner} must be a list, got {labels!r}")
    labels = tuple(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    if not labels:
        raise ModelError(f"{owner} has no labels: it needs at least one")
    for i, x in enumerate(labels):
        if not isinstance(x, Hashable) or isinstance(x, (bool, np.bool_)):
            raise ModelError(f"label {x!r} of {owner} (position {i}) is not a usable label: use strings")
        if _is_position(x) and x != i:
            raise ModelError(f"{owner} has the integer label {x} at position {i}: integers index by position, so "
                             "an integer label must equal its position (use strings, or 'size')")
    if len(set(labels)) < len(labels):
        repeated = next(x for i, x in enumerate(labels) if x in labels[:i])
        raise ModelError(f"{owner} repeats the label {repeated!r}: labels must be distinct")
    return labels


class Distribution:
    """A table with a named, labelled axis per variable: ``p(event | given)``, the event axis first.

    pymdp 1.0's ``Distribution`` (its ``batch`` is ``given`` here). Entries are read and written by label:
    ``d["left", "right", "up"]`` names one entry per axis in order (event, then given), ``d.get(event={...},
    given={...})`` by axis name. On every axis an index may be a label, a position (an integer: integers are
    positions), a slice of positions, or a list of labels or positions; lists on several axes select the block
    they span (not its diagonal), and axes left out are taken whole. Values are broadcast into the selection as
    NumPy assigns. Reading without lists returns a view.

    Args:
        event: ``{name: labels}``, the one event axis (the outcome, or the next state).
        given: ``{name: labels}``, the axes it is conditioned on, in order; a name may repeat the event's
            (``B[f]`` is conditioned on the factor's own previous state) but not another given axis'.
        data: the table, of shape ``(len(labels) for each axis)``; zeros when absent.

    Raises:
        ModelError: names, labels or data that do not fit together; an unknown label or name when indexing.
    """

    def __init__(self, event: Mapping[str, Sequence[Label]], given: Mapping[str, Sequence[Label]] | None = None,
                 data: Any = None) -> None:
        given = {} if given is None else given
        if not isinstance(event, Mapping) or len(event) != 1:
            raise ModelError(f"event must be one {{name: labels}} entry (the outcome, or the next state), got "
                             f"{event!r}")
        if not isinstance(given, Mapping):
            raise ModelError(f"given must be a {{name: labels}} mapping, got {given!r}")
        self.event = {str(k): _check_labels(v, f"event axis {k!r}") for k, v in event.items()}
        self.given = {str(k): _check_labels(v, f"given axis {k!r}") for k, v in given.items()}
        self._axes = [*self.event.items(), *self.given.items()]
        self._positions = [{x: i for i, x in enumerate(labels)} for _, labels in self._axes]
        self._data = np.zeros(self.shape)
        if data is not None:
            self.data = data

    @property
    def shape(self) -> tuple[int, ...]:
        """One length per axis: ``(len(event labels), *len(given labels))``."""
        return tuple(len(labels) for _, labels in self._axes)

    @property
    def axes(self) -> list[tuple[str, tuple]]:
        """``(name, labels)`` per axis, event first."""
        return list(self._axes)

    @property
    def data(self) -> np.ndarray:
        """The table (float64), of shape ``shape``; changing it in place changes the table."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        value = as_numbers(value, f"the data of {self._name()}", ModelError)
        if value.shape != self.shape:
            raise ModelError(f"the data of {self._name()} has shape {value.shape}, expected {self.shape} "
                             f"(axes {[name for name, _ in self._axes]})")
        self._data = value.copy()

    def __getitem__(self, key: Any) -> Any:
        return self._data[self._index(self._positional(key))]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._write(self._index(self._positional(key)), value)

    def get(self, *, event: Mapping[str, Any] | None = None, given: Mapping[str, Any] | None = None) -> Any:
        """The entries named by axis: ``event={name: index}``, ``given={name: index}`` (an index as in ``d[...]``)."""
        return self._data[self._index(self._named(event, given))]

    def set(self, values: Any, *, event: Mapping[str, Any] | None = None,
            given: Mapping[str, Any] | None = None) -> None:
        """Write ``values`` (broadcast) into the entries named by axis, as ``get`` selects them."""
        self._write(self._index(self._named(event, given)), values)

    def normalize(self) -> None:
        """Scale every column (each index of the given axes) to sum to 1; a column of zeros is a ``ModelError``."""
        self._data = normalize(self._data)

    def check_columns(self, label: str) -> None:
        """Each column a distribution (non-negative, finite, summing to 1 within ``checks.COLUMN_TOL``), else a
        ``ModelError`` that names ``label`` and the column by its labels."""
        check_finite(self._data, label)
        sums = self._data.sum(axis=0)
        off = np.abs(sums - 1.0) > COLUMN_TOL
        if np.any(off):
            idx = first_index(np.atleast_1d(off))
            where = ", ".join(f"{name}={labels[i]!r}" for (name, labels), i in zip(self._axes[1:], idx, strict=False))
            raise ModelError(f"{label} sums to {np.atleast_1d(sums)[idx]:.6g} over {self._axes[0][0]!r}"
                             f"{' at ' + where if where else ''}: every column must sum to 1 (within {COLUMN_TOL}); "
                             "fill it or call .normalize()")

    def __repr__(self) -> str:
        return f"Distribution(event={self.event}, given={self.given})\n{self._data}"

    # -- indexing ------------------------------------------------------------------------------------------

    def _write(self, index: tuple, values: Any) -> None:
        values = as_numbers(values, f"the values written to {self._name()}", ModelError)
        try:
            self._data[index] = values
        except ValueError:
            raise ModelError(f"values of shape {values.shape} do not fit the selection of shape "
                             f"{self._data[index].shape} in {self._name()}") from None

    def _name(self) -> str:
        given = ", ".join(self.given)
        return f"p({next(iter(self.event))}{' | ' + given if given else ''})"

    def _position(self, axis: int, x: Any) -> int:
        name, labels = self._axes[axis]
        if _is_position(x):
            if not -len(labels) <= x < len(labels):
                raise ModelError(f"position {x} is out of range for axis {name!r} of {self._name()} with "
                                 f"{len(labels)} labels")
            return int(x)
        try:
            return self._positions[axis][x]
        except (KeyError, TypeError):
            raise ModelError(f"{x!r} is not a label of axis {name!r} of {self._name()}; its labels are "
                             f"{list(labels)}") from None

    def _resolve(self, axis: int, x: Any) -> Any:
        if isinstance(x, slice):
            for bound in (x.start, x.stop, x.step):
                if bound is not None and not _is_position(bound):
                    raise ModelError(f"slice {x} on axis {self._axes[axis][0]!r} of {self._name()}: slices take "
                                     "positions (integers); select labels with a list")
            return x
        if isinstance(x, (list, np.ndarray)):
            return [self._position(axis, v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
        return self._position(axis, x)

    def _positional(self, key: Any) -> list:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > len(self._axes):
            raise ModelError(f"{len(key)} indices for {self._name()}, which has {len(self._axes)} axes "
                             f"{[name for name, _ in self._axes]}")
        return [self._resolve(a, x) for a, x in enumerate(key)] + [slice(None)] * (len(self._axes) - len(key))

    def _named(self, event: Mapping[str, Any] | None, given: Mapping[str, Any] | None) -> list:
        parts: list = [slice(None)] * len(self._axes)
        for role, keys, offset, axes in (("event", event, 0, self.event), ("given", given, 1, self.given)):
            if keys is None:
                continue
            if not isinstance(keys, Mapping):
                raise ModelError(f"{role} must be a {{name: index}} mapping, got {keys!r}")
            names = list(axes)
            for name, x in keys.items():
                if name not in axes:
                    raise ModelError(f"{name!r} is not a {role} axis of {self._name()}; its {role} axes are {names}")
                a = offset + names.index(name)
                parts[a] = self._resolve(a, x)
        return parts

    def _index(self, parts: list) -> tuple:
        """A NumPy index: basic indexing (views) without lists; with lists, one output axis per list or slice,
        in the axes' order, so that lists on several axes select their block."""
        if not any(isinstance(p, list) for p in parts):
            return tuple(parts)
        n_out = sum(isinstance(p, (list, slice)) for p in parts)
        out, dim = [], 0
        for axis, p in enumerate(parts):
            if isinstance(p, (list, slice)):
                positions = np.asarray(p, dtype=int) if isinstance(p, list) else np.arange(self.shape[axis])[p]
                shape = [1] * n_out
                shape[dim] = -1
                out.append(positions.reshape(shape))
                dim += 1
            else:
                out.append(p)
        return tuple(out)


class Tables:
    """The tables of one kind (A, B, C, D or H), by name (``tables["position"]``) or position (``tables[0]``)."""

    def __init__(self, tables: Mapping[str, Distribution], kind: str) -> None:
        self._tables, self._kind = dict(tables), kind

    def __getitem__(self, key: str | int) -> Distribution:
        if isinstance(key, str) and key in self._tables:
            return self._tables[key]
        n = len(self._tables)
        if _is_position(key) and -n <= int(key) < n:
            return list(self._tables.values())[int(key)]
        raise ModelError(f"{self._kind} has no table {key!r}; its tables are {list(self._tables)} (or positions "
                         f"{-n} to {n - 1})")

    def __iter__(self) -> Iterator[Distribution]:
        return iter(self._tables.values())

    def __len__(self) -> int:
        return len(self._tables)

    def keys(self) -> list[str]:
        """The tables' names, in order."""
        return list(self._tables)


class LabelledModel:
    """A generative model described by names and labels, with tables to fill (``compile_model`` builds one).

    Attributes:
        states, observations, controls: ``{name: labels}`` of the factors, modalities and controls, in order.
        A_dependencies, B_dependencies: per modality / factor, the names of the factors it depends on.
        controlled_by: per factor, the names of the controls that drive it (pymdp's ``B_action_dependencies``
            by name; ``B_action_dependencies`` gives them as indices).
        actions: the controls as ``aif.actions.ActionFactors`` (flattening B, policies, encoding and decoding
            actions, the probabilities of the first actions).
        A, B, C, D, H: the tables (``Tables`` of ``Distribution``), by name or position. ``H`` (uniform) is
            pymdp 1.0's prior preference over states (for ``aif.planning.inductive_matrix``); the built model does
            not hold it.
    """

    def __init__(self, states: Mapping[str, tuple], observations: Mapping[str, tuple], controls: Mapping[str, tuple],
                 A_dependencies: list[list[str]], B_dependencies: list[list[str]],
                 controlled_by: list[list[str]]) -> None:
        self.states, self.observations, self.controls = dict(states), dict(observations), dict(controls)
        self.A_dependencies, self.B_dependencies, self.controlled_by = A_dependencies, B_dependencies, controlled_by
        S, O = self.states, self.observations
        self.A = Tables({m: Distribution({m: O[m]}, {g: S[g] for g in deps})
                         for m, deps in zip(O, A_dependencies, strict=True)}, "A")
        self.B = Tables({f: Distribution({f: S[f]}, {**{g: S[g] for g in deps}, **{c: self.controls[c] for c in cs}})
                         for f, deps, cs in zip(S, B_dependencies, controlled_by, strict=True)}, "B")
        self.C = Tables({m: Distribution({m: O[m]}) for m in O}, "C")
        self.D = Tables({f: Distribution({f: S[f]}, data=np.full(len(S[f]), 1.0 / len(S[f]))) for f in S}, "D")
        self.H = Tables({f: Distribution({f: S[f]}, data=np.full(len(S[f]), 1.0 / len(S[f]))) for f in S}, "H")
        self.actions = ActionFactors(self.num_controls, self.B_action_dependencies, names=list(self.controls))

    @property
    def num_controls(self) -> list[int]:
        """Labels per control, in order (pymdp 1.0's ``num_controls`` of the description)."""
        return [len(labels) for labels in self.controls.values()]

    @property
    def B_action_dependencies(self) -> list[list[int]]:
        """Per factor, the indices of the controls that drive it (pymdp 1.0's ``B_action_dependencies``)."""
        names = list(self.controls)
        return [[names.index(c) for c in cs] for cs in self.controlled_by]

    def to_model(self) -> GenerativeModel:
        """The ``aif.GenerativeModel`` of the tables, after checking each column by its labels.

        ``B[f]``'s control axes become one axis of ``prod(len(controls))`` joint actions (C order; 1 without
        controls); the dependencies become factor indices. Each call copies the tables.

        Raises:
            ModelError: a column of A or B, or D, that is not a distribution (named by table and labels), or
                whatever ``GenerativeModel`` refuses.
        """
        factors = list(self.states)
        for kind in ("A", "B", "D"):
            for name, table in zip(getattr(self, kind).keys(), getattr(self, kind), strict=True):
                table.check_columns(f"{kind}[{name!r}]")
        return GenerativeModel(A=[a.data for a in self.A], B=self.actions.flatten_B([b.data for b in self.B]),
                               C=[c.data for c in self.C], D=[d.data for d in self.D],
                               A_dependencies=[[factors.index(g) for g in deps] for deps in self.A_dependencies],
                               B_dependencies=[[factors.index(g) for g in deps] for deps in self.B_dependencies])

    def policies(self, horizon: int = 1) -> np.ndarray:
        """Every sequence of ``horizon`` joint control actions, as per-factor actions of the built model.

        ``self.actions.policies(horizon)``: the control sequences enumerated as ``aif.enumerate_policies(num_controls,
        horizon)`` (the last control of the last step fastest), each factor's action the joint index of its controls
        (0 for a factor without controls): pymdp 1.0's ``agent.policies`` for a model with ``B_action_dependencies``.

        Returns:
            int array ``(prod(num_controls) ** horizon, horizon, num_factors)``, for ``aif.Agent(policies=...)``.
        """
        return self.actions.policies(horizon)

    def action(self, controls: Mapping[str, Label]) -> np.ndarray:
        """The built model's action ``(num_factors,)`` for one label per control (``{"move": "go_left", ...}``)."""
        if not isinstance(controls, Mapping) or set(controls) != set(self.controls):
            raise PolicyError(f"action needs one label for each control {list(self.controls)}, got {controls!r}")
        chosen = []
        for c, labels in self.controls.items():
            if controls[c] not in labels:
                raise PolicyError(f"{controls[c]!r} is not a label of control {c!r}; its labels are {list(labels)}")
            chosen.append(labels.index(controls[c]))
        return self.actions.encode(np.array(chosen, dtype=int))

    def controls_of(self, action: Any) -> dict[str, Label]:
        """The label of each control in a built model's action ``(num_factors,)`` (the inverse of ``action``).

        Raises:
            PolicyError: an action out of range, or factors that disagree about a control they share (an action
                no policy of ``policies`` takes).
        """
        if np.ndim(action) != 1:
            raise PolicyError(f"action must be integers of shape ({len(self.states)},), one per factor; got {action!r}")
        chosen = self.actions.decode(action)  # (num_controls,)
        return {c: labels[int(i)] for (c, labels), i in zip(self.controls.items(), chosen, strict=True)}

    def observation(self, labels: Mapping[str, Label]) -> list[int]:
        """The outcome index of each modality, from one label per modality (``{"position_obs": "left"}``)."""
        if not isinstance(labels, Mapping) or set(labels) != set(self.observations):
            raise ObservationError(f"observation needs one label for each modality {list(self.observations)}, "
                                   f"got {labels!r}")
        out = []
        for m, outcomes in self.observations.items():
            if labels[m] not in outcomes:
                raise ObservationError(f"{labels[m]!r} is not an outcome of modality {m!r}; its outcomes are "
                                       f"{list(outcomes)}")
            out.append(outcomes.index(labels[m]))
        return out


def _variable(kind: str, name: Any, spec: Any) -> tuple:
    """The labels of one variable of the description."""
    owner = f"{kind[:-1] if kind != 'states' else 'state factor'} {name!r}"
    if not isinstance(name, str) or not name:
        raise ModelError(f"the names in description[{kind!r}] must be non-empty strings, got {name!r}")
    if not isinstance(spec, Mapping):
        raise ModelError(f"description[{kind!r}][{name!r}] must be a mapping, got {spec!r}")
    unknown = [k for k in spec if k not in KINDS[kind]]
    if unknown:
        raise ModelError(f"{owner} has the unknown key {unknown[0]!r}; its keys are {list(KINDS[kind])}")
    if ("elements" in spec) == ("size" in spec):
        raise ModelError(f"{owner} needs exactly one of 'elements' (labels) and 'size' (a count)")
    if "size" in spec:
        return tuple(range(check_integer(spec["size"], f"the size of {owner}", error=ModelError)))
    return _check_labels(spec["elements"], owner)


def _names(spec: Mapping, key: str, known: Mapping, owner: str, what: str, default: list[str]) -> list[str]:
    names = spec.get(key, default)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ModelError(f"{key} of {owner} must be a list of {what} names, got {names!r}")
    for n in names:
        if not isinstance(n, str) or n not in known:
            raise ModelError(f"{key} of {owner} names {n!r}, which is not a {what}; the {what}s are {list(known)}")
    if len(set(names)) < len(names):
        raise ModelError(f"{key} of {owner} repeats a name: {list(names)}")
    return list(names)


def compile_model(description: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> LabelledModel:
    """A ``LabelledModel`` from a description of named variables (pymdp 1.0's ``compile_model``).

    Args:
        description: ``{"observations": {...}, "controls": {...}, "states": {...}}`` ("controls" may be left
            out): each maps a variable's name to a mapping with ``"elements"`` (its labels) or ``"size"`` (labels
            ``0 .. size - 1``), and:

            - an observation: ``"depends_on"``, the state factors it depends on (the axes of its ``A``, in order);
            - a state factor: ``"depends_on"``, the factors its next state depends on (default: itself), and
              ``"controlled_by"``, the controls that drive it (default: none).

    Returns:
        A ``LabelledModel`` whose A and B tables are zeros, C zeros, D and H uniform (as pymdp's): fill them by
        label, then ``to_model()``.

    Raises:
        ModelError: a missing or unknown key, an unknown name, repeated labels, a name shared by a state factor and a
            control (both index ``B``'s given axes), or what ``aif.actions.ActionFactors`` refuses of the controls (a
            control that drives no factor).
    """
    if not isinstance(description, Mapping):
        raise ModelError(f"description must be a mapping of 'observations', 'controls' and 'states', got "
                         f"{type(description).__name__}")
    unknown = [k for k in description if k not in KINDS]
    if unknown or "states" not in description or "observations" not in description:
        raise ModelError(f"description must have 'observations' and 'states' (and may have 'controls'), got "
                         f"{list(description)}")
    sections = {kind: description.get(kind, {}) for kind in KINDS}
    for kind, section in sections.items():
        if not isinstance(section, Mapping) or (kind != "controls" and not section):
            raise ModelError(f"description[{kind!r}] must be a non-empty mapping of names to variables")
    labels = {kind: {name: _variable(kind, name, spec) for name, spec in section.items()}
              for kind, section in sections.items()}
    states, observations, controls = labels["states"], labels["observations"], labels["controls"]
    shared = [n for n in states if n in controls]
    if shared:
        raise ModelError(f"{shared[0]!r} names both a state factor and a control: B's given axes are named by both")
    for m, spec in sections["observations"].items():
        if "depends_on" not in spec:
            raise ModelError(f"observation {m!r} needs 'depends_on', the state factors it depends on")
    A_dependencies = [_names(spec, "depends_on", states, f"observation {m!r}", "state factor", default=[])
                      for m, spec in sections["observations"].items()]
    B_dependencies = [_names(spec, "depends_on", states, f"state factor {f!r}", "state factor", default=[f])
                      for f, spec in sections["states"].items()]
    controlled_by = [_names(spec, "controlled_by", controls, f"state factor {f!r}", "control", default=[])
                     for f, spec in sections["states"].items()]
    return LabelledModel(states, observations, controls, A_dependencies, B_dependencies, controlled_by)


__all__ = ["Distribution", "LabelledModel", "Tables", "compile_model"]
