"""Figures of what an agent believed, weighed and did. Every function returns a ``matplotlib`` figure.

- ``plot_beliefs``: posterior over each factor's states across time, one heatmap per factor.
- ``plot_efe_terms``: the expected free energy of each policy split into its terms (stacked bars).
- ``plot_grid_path``: the agent's path on a grid, with walls and landmarks.
- ``plot_tmaze_summary``: where the agent went and what it got over many T-maze trials.
- ``plot_grid_maps``: what an agent with a map (``aif.maps``) knew of the layout at a few moments, where it went,
  and where its plan wanted it (the latent goal).

The functions take arrays (most often fields of an ``aif.rollout.Trajectory``), not agents or
environments, so they work for any model. Save with ``fig.savefig(path)``; in scripts and tests without a
display, select the Agg backend first (``matplotlib.use("Agg")``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .checks import as_numbers, check_integer, check_pair, check_probability, check_sequence
from .errors import BeliefError, ParameterError

# Contribution of each term to G: value terms lower it, cost terms raise it (see aif.control).
TERM_SIGN = {"utility": -1.0, "state_info_gain": -1.0, "pA_info_gain": -1.0, "pB_info_gain": -1.0,
             "risk": 1.0, "ambiguity": 1.0}
TERM_LABEL = {"utility": "−utility (pragmatic)", "state_info_gain": "−state info gain (epistemic)",
              "pA_info_gain": "−info gain about A", "pB_info_gain": "−info gain about B",
              "risk": "risk", "ambiguity": "ambiguity"}


def _figure(width, height):
    # Figure() rather than pyplot.figure(): nothing is registered with pyplot, so figures made in a loop are
    # freed with their last reference and no GUI backend is touched.
    return Figure(figsize=(width, height), layout="constrained")


def plot_beliefs(qs: Sequence[ArrayLike], factor_names: Sequence[str] | None = None,
                 state_names: Sequence[Sequence[str]] | None = None, title: str = "Beliefs over time") -> Figure:
    """Heatmaps of q(s_f) over time, one panel per factor.

    Args:
        qs: one array ``(T, num_states[f])`` per factor (``Trajectory.qs``).
        factor_names: a name per factor (default ``factor 0``, ...).
        state_names: per factor, a list of state names or ``None`` (default: indices).
    """
    arrays = [as_numbers(q, f"qs[{f}]", BeliefError) for f, q in enumerate(check_sequence(qs, "qs", BeliefError))]
    for f, q in enumerate(arrays):
        if q.ndim != 2 or q.size == 0:
            raise BeliefError(f"qs[{f}] has shape {q.shape}, expected (T, num_states[{f}]) with T >= 1")
        check_probability(q, f"qs[{f}]", BeliefError)
    factor_names = factor_names or [f"factor {f}" for f in range(len(arrays))]
    names_of: Sequence[Sequence[str] | None] = state_names or [None] * len(arrays)
    if not arrays or len(factor_names) != len(arrays) or len(names_of) != len(arrays):
        raise ParameterError(f"qs, factor_names and state_names must have one entry per factor, got {len(arrays)}, "
                             f"{len(factor_names)} and {len(names_of)}")
    heights = [max(1.2, 0.25 * q.shape[1]) for q in arrays]
    fig = _figure(max(5.0, 0.35 * arrays[0].shape[0] + 3), min(2.0 + sum(heights), 14))
    axes = fig.subplots(len(arrays), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, q, name, names in zip(axes, arrays, factor_names, names_of, strict=True):
        im = ax.imshow(q.T, aspect="auto", origin="upper", vmin=0.0, vmax=1.0, cmap="viridis",
                       interpolation="nearest")
        ax.set_title(name, fontsize=10, loc="left")
        ax.set_ylabel("state")
        if names is not None and len(names) <= 40:
            ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xticks(range(q.shape[0]))
        fig.colorbar(im, ax=ax, label="q(s)", fraction=0.04)
    axes[-1].set_xlabel("step")
    fig.suptitle(title)
    return fig


def plot_efe_terms(terms: Mapping[str, ArrayLike], policy_labels: Sequence[str] | None = None,
                   components: Sequence[str] = ("utility", "state_info_gain"), max_policies: int = 16,
                   title: str = "Expected free energy by policy") -> Figure:
    """Stacked bars of each policy's EFE terms, as contributions to G (lower is better).

    Value terms (utility, information gains) enter G with a minus sign and cost terms (risk, ambiguity) with
    a plus sign; the bars show the signed contributions and a black tick marks their sum, G.

    Args:
        terms: name -> ``(P,)`` (``agent.terms`` or ``Trajectory.step_terms(t)``).
        policy_labels: a label per policy (default: its index).
        components: the terms to stack: ``("utility", "state_info_gain")`` (pragmatic and epistemic
            value) or ``("risk", "ambiguity")``; both sum to the same G.
        max_policies: show at most this many policies, those with the lowest G.
    """
    max_policies = check_integer(max_policies, "max_policies")
    if not isinstance(terms, Mapping) or isinstance(components, str) or not components:
        raise ParameterError(f"terms must map names to (P,) arrays and components be a tuple of names, got "
                             f"{terms!r:.100} and {components!r}")
    for name in components:
        if name not in terms or name not in TERM_SIGN:
            raise ParameterError(f"components names {name!r}, which is not one of the terms {sorted(terms)}")
    parts = {name: TERM_SIGN[name] * as_numbers(terms[name], f"terms[{name!r}]", ParameterError) for name in components}
    if len({x.shape for x in parts.values()}) != 1 or next(iter(parts.values())).ndim != 1 or not all(
            np.isfinite(x).all() for x in parts.values()):
        raise ParameterError(f"the terms {list(components)} must be finite arrays of one shape (P,)")
    G = np.sum(list(parts.values()), axis=0)
    labels = [str(i) for i in range(len(G))] if policy_labels is None else \
        check_sequence(policy_labels, "policy_labels", ParameterError)
    if len(labels) != len(G):
        raise ParameterError(f"policy_labels has {len(labels)} labels but there are {len(G)} policies")
    order = np.argsort(G, kind="stable")[:max_policies]
    fig = _figure(max(6.0, 0.55 * len(order) + 4), 4.0)
    ax = fig.subplots()
    x = np.arange(len(order))
    up, down = np.zeros(len(order)), np.zeros(len(order))
    for name, values in parts.items():
        v = values[order]
        bottom = np.where(v >= 0, up, down)
        ax.bar(x, v, bottom=bottom, label=TERM_LABEL.get(name, name), width=0.7)
        up += np.maximum(v, 0)
        down += np.minimum(v, 0)
    ax.scatter(x, G[order], marker="_", s=400, color="black", zorder=3, label="G")
    ax.axhline(0.0, color="grey", lw=0.8)
    shown = [labels[i] for i in order]
    crowded = len(order) > 6 or sum(len(lab) for lab in shown) > 40
    ax.set_xticks(x, shown, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_xlabel("policy (lowest G first)")
    ax.set_ylabel("contribution to G (nats)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_grid_path(cells: Sequence[tuple[int, int]], shape: tuple[int, int], walls: Sequence[tuple[int, int]] = (),
                   landmarks: Mapping[str, ArrayLike] | None = None, title: str = "Path") -> Figure:
    """The agent's path on a grid.

    Args:
        cells: visited cells in order, ``[(row, col), ...]`` (``[env.cell(o) for o in
            trajectory.observations[:, 0]]`` for the grid environments).
        shape: ``(rows, cols)``.
        walls: wall cells, drawn dark.
        landmarks: name -> list of cells (e.g. ``{"goal": [(6, 6)], "cue": [(2, 0)]}``), drawn as labelled
            markers.
    """
    rows, cols = check_pair(shape, "shape")
    if rows < 1 or cols < 1:
        raise ParameterError(f"shape must hold two positive sizes, got {shape!r}")
    grid = np.zeros((rows, cols))
    for r, c in _cells(walls, "walls", (rows, cols)):
        grid[r, c] = 1.0
    fig = _figure(max(3.0, 0.6 * cols + 1.5), max(3.0, 0.6 * rows + 1.0))
    ax = fig.subplots()
    ax.imshow(grid, cmap=ListedColormap(["#f4f4f4", "#404040"]), vmin=0, vmax=1, origin="upper")
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="#c8c8c8", lw=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    markers = iter(["*", "s", "D", "^", "P", "X", "o"])
    if not isinstance(landmarks or {}, Mapping):
        raise ParameterError(f"landmarks must map names to lists of cells, got {landmarks!r:.100}")
    for (name, where), marker in zip((landmarks or {}).items(), markers, strict=False):  # markers outnumber them
        cells_at = _cells(where, f"landmarks[{name!r}]", (rows, cols))
        ax.scatter(cells_at[:, 1], cells_at[:, 0], marker=marker, s=220, label=name, zorder=2, edgecolor="black")
    path = _cells(cells, "cells", (rows, cols)).astype(float)
    if not len(path):
        raise ParameterError("cells must hold at least one cell")
    # A small offset per step keeps revisits and back-and-forth moves visible.
    jitter = np.linspace(-0.12, 0.12, len(path))[:, None] if len(path) > 1 else np.zeros((1, 1))
    ax.plot(path[:, 1] + jitter[:, 0], path[:, 0] + jitter[:, 0], "-", color="tab:red", lw=2, zorder=3)
    ax.scatter(path[:, 1], path[:, 0], c=np.arange(len(path)), cmap="autumn", s=40, zorder=4,
               edgecolor="black", label="path (early→late)")
    ax.scatter([path[0, 1]], [path[0, 0]], marker="o", s=160, facecolor="none", edgecolor="blue", lw=2,
               zorder=5, label="start")
    ax.set_title(f"{title} ({len(path) - 1} moves)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_grid_maps(types: Sequence[ArrayLike], poses: Sequence[tuple[int, int, int]],
                   goals: Sequence[ArrayLike | None] | None = None, paths: Sequence[ArrayLike] | None = None,
                   titles: Sequence[str] | None = None) -> Figure:
    """Snapshots of an ``aif.maps.GridMap`` belief, one panel each, cropped to the cells seen in any of them.

    Args:
        types: per snapshot, the map's cell types ``(M, M)`` (``GridMap.types``: 0 unseen, 2 wall, 8 goal, ...),
            indexed ``[x, y]`` (x drawn to the right, y down).
        poses: per snapshot, the agent's ``(x, y, d)`` (``GridMap.pose``), drawn as a triangle pointing its way.
        goals: per snapshot, ``None`` or the latent goal over cells ``(M, M)``, a distribution (e.g. ``p*(s) ∝
            exp V(s)`` of ``MapPlan.value`` summed over headings), shaded over the map.
        paths: per snapshot, the cells visited so far ``(n, 2)``.
        titles: a title per panel.
    """
    n = len(check_sequence(types, "types", ParameterError))
    if len(poses) != n or any(len(x) != n for x in (goals, paths, titles) if x is not None):
        raise ParameterError(f"types, poses, goals, paths and titles must have one entry per snapshot ({n})")
    maps = [np.asarray(t) for t in types]
    if n == 0 or any(m.ndim != 2 or m.shape != maps[0].shape or not np.issubdtype(m.dtype, np.integer) for m in maps):
        raise ParameterError("types must hold at least one integer (M, M) map, all of one shape")
    seen = np.argwhere(np.any([m != 0 for m in maps], 0))
    seen = seen if len(seen) else np.array([[0, 0], np.array(maps[0].shape) - 1])  # nothing seen: the whole map
    (x0, y0), (x1, y1) = seen.min(0) - 1, seen.max(0) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    fig = _figure(3.2 * n + 0.6, 3.6)
    axes = np.atleast_1d(fig.subplots(1, n))
    # unseen, empty/floor, wall, goal, other objects
    palette = ListedColormap(["#bdbdbd", "#ffffff", "#3a3a3a", "#2ca02c", "#9467bd"])
    kind = np.zeros(11, int)
    kind[[1, 3]], kind[2], kind[8], kind[[4, 5, 6, 7, 9]] = 1, 2, 3, 4
    arrows = {0: ">", 1: "v", 2: "<", 3: "^"}
    for k, ax in enumerate(axes):
        crop = maps[k][x0:x1, y0:y1]
        ax.imshow(kind[np.clip(crop, 0, 10)].T, cmap=palette, vmin=0, vmax=4, origin="upper")
        if goals is not None and goals[k] is not None:
            g = as_numbers(goals[k], f"goals[{k}]", ParameterError)
            if g.shape != maps[0].shape or not np.isfinite(g).all() or (g < 0).any():
                raise ParameterError(f"goals[{k}] must be non-negative finite weights of shape {maps[0].shape}")
            g = g[x0:x1, y0:y1]
            shade = np.ma.masked_less(g / max(g.max(), 1e-300), 0.02)
            ax.imshow(shade.T, cmap="Oranges", alpha=0.75, vmin=0, vmax=1, origin="upper")
        if paths is not None and np.size(paths[k]):
            path = np.asarray(paths[k], float).reshape(-1, 2)
            ax.plot(path[:, 0] - x0, path[:, 1] - y0, "-", color="tab:blue", lw=1.5)
        x, y, d = poses[k]
        ax.scatter([x - x0], [y - y0], marker=arrows[int(d) % 4], s=90, color="tab:red", edgecolor="black",
                   zorder=3)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    return fig


def _cells(x, name, shape):
    """``(n, 2)`` int cells inside a ``shape`` grid, from one cell or a list of them (``ParameterError``)."""
    a = as_numbers(x, name, ParameterError, None)
    a = a.reshape(-1, 2) if a.ndim == 1 and a.size == 2 else np.zeros((0, 2), int) if a.size == 0 else a
    if a.ndim != 2 or a.shape[1] != 2 or not np.issubdtype(a.dtype, np.integer) or (a < 0).any() or \
            (a >= shape).any():
        raise ParameterError(f"{name} must be (row, col) cells inside the {shape[0]}x{shape[1]} grid, got {x!r:.200}")
    return a


def tmaze_rates(summary: Mapping[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """The T-maze rates as counts: name -> ``(trials that did it, trials it is a share of)``.

    ``summary`` is ``aif.envs.summarize_tmaze``'s result. ``cue first`` and ``entered an arm`` count over
    all trials; ``condition's arm first`` and ``rewarded on first arm`` over the trials that entered an arm
    (a trial that stayed out of the arms is neither right nor wrong about them).
    """
    entered = np.asarray(summary["first_arm"]) >= 0
    K, n = len(entered), int(entered.sum())
    return {"cue first": (int(np.sum(summary["cue_first"])), K),
            "entered an arm": (n, K),
            "condition's arm first": (int(np.sum(np.asarray(summary["correct_arm"])[entered])), n),
            "rewarded on first arm": (int(np.sum(np.asarray(summary["first_arm_reward"])[entered] > 0)), n)}


def plot_tmaze_summary(locations: ArrayLike, conditions: ArrayLike, rewards: ArrayLike,
                       location_names: Sequence[str] = ("centre", "right", "left", "cue"),
                       title: str = "T-maze over trials") -> Figure:
    """Where the agent went in each T-maze trial, and the rates that sum it up (1000x700 pixels at dpi 100).

    Args:
        locations: int ``(K, T + 1)``: the location observed at each step of each trial (start included).
        conditions: int ``(K,)``: the reward condition of each trial (0 right, 1 left).
        rewards: ``(K, T)``: the reward after each action.

    Left: one row per trial, one column per step, coloured by location; the condition is marked at the
    right. Right: ``tmaze_rates``, each bar labelled with its count.
    """
    from .envs.tmaze import summarize_tmaze

    rates = tmaze_rates(summarize_tmaze(locations, conditions, rewards))  # checks the arrays
    locations, conditions = np.asarray(locations), np.asarray(conditions)
    K, T1 = locations.shape
    fig = _figure(10.0, 7.0)
    ax_grid, ax_rates = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    cmap = ListedColormap(["#dddddd", "#4c72b0", "#dd8452", "#55a868"])
    ax_grid.imshow(locations, cmap=cmap, vmin=-0.5, vmax=3.5, aspect="auto", interpolation="nearest")
    ax_grid.set_xlabel("step")
    ax_grid.set_ylabel("trial")
    ax_grid.set_xticks(range(T1))
    ax_grid.set_yticks(range(0, K, max(1, K // 10)))
    if K <= 40:  # beyond that the letters would overlap
        for k, c in enumerate(conditions):
            ax_grid.text(T1 - 0.4, k, "R" if c == 0 else "L", va="center", fontsize=7)
    handles = [ax_grid.bar(0, 0, color=cmap(i), label=n) for i, n in enumerate(location_names)]
    # Above the panel, in one row: beside the data it describes, covering none of it.
    ax_grid.legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(handles),
                   frameon=False, title="location per step" + (" (R/L at the right: reward condition)"
                                                               if K <= 40 else ""), title_fontsize=9)
    names = list(rates)
    shares = [done / total if total else 0.0 for done, total in rates.values()]
    y = np.arange(len(names))
    bars = ax_rates.barh(y, shares, color=["#55a868", "#8172b3", "#4c72b0", "#c44e52"], height=0.6)
    ax_rates.bar_label(bars, [f" {done}/{total}" if total else " no arm entered" for done, total in rates.values()],
                       fontsize=9)
    ax_rates.set_yticks(y, [n if n in ("cue first", "entered an arm") else f"{n}\n(of those in an arm)" for n in names])
    ax_rates.invert_yaxis()  # first rate on top
    ax_rates.set_xlim(0, 1.3)  # room for the labels right of a full bar
    ax_rates.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax_rates.set_xlabel("share of trials")
    fig.suptitle(title)
    return fig


__all__ = ["plot_beliefs", "plot_efe_terms", "plot_grid_path", "plot_tmaze_summary", "tmaze_rates"]
