"""Models built from labels (aif.labels) against pymdp 1.0's pymdp.distribution.

The same code fills a pymdp 1.0 model and an aif one (the two share the indexing syntax), on pymdp's own test and
examples (test/test_distribution.py, examples/api/model_construction_tutorial.ipynb,
examples/advanced/complex_action_dependency.ipynb, examples/envs/knapsack_demo.ipynb) and on random descriptions;
the built model must equal what pymdp 1.0's Agent(**model) holds: A, B (control axes flattened), C, D,
dependencies and policies.
"""

import itertools

import numpy as np
import pytest

import aif
from aif.errors import ModelError, ObservationError, PolicyError
from aif.labels import Distribution, compile_model

TOL = 1e-12  # the arrays are copied, never computed: anything but rounding in normalize is a bug


@pytest.fixture(scope="module")
def pymdp1():
    """pymdp 1.0's distribution module and Agent, with float64 JAX."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from pymdp import distribution
    from pymdp.agent import Agent
    return distribution, Agent


def max_diff(xs, ys):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(xs, ys, strict=True))


# ----------------------------------------------------------------------------------------------------------
# Distribution: indexing by label, as pymdp's test/test_distribution.py and on random keys

LOCATIONS, CONTROLS = ["A", "B", "C", "D"], ["up", "down"]


def test_distribution_slices_as_pymdp_test():
    t = Distribution({"location": LOCATIONS}, {"location": LOCATIONS, "control": CONTROLS}, np.zeros((4, 4, 2)))
    assert t["A", "B", "up"] == 0.0
    assert t[:, "B", "up"].shape == (4,)
    assert t["A", "B", :].shape == (2,)
    assert t[:, "B", :].shape == (4, 2)
    assert t[:, :, :].shape == (4, 4, 2)
    assert t[0, "B", 0] == 0.0
    t["A", "B", "up"] = 0.5
    assert t["A", "B", "up"] == 0.5 and t.data[0, 1, 0] == 0.5
    t[:, "B", "up"] = np.ones(4)
    assert np.all(t[:, "B", "up"] == 1.0)
    # get/set by axis name (pymdp's get(batch, event) is get(given=, event=) here)
    assert t.get(event={"location": "A"}, given={"location": "B"}).shape == (2,)
    assert t.get(given={"control": "up"}).shape == (4, 4)
    t.set(0.7, event={"location": "A"}, given={"location": 1, "control": "up"})
    assert t.get(event={"location": "A"}, given={"location": "B", "control": "up"}) == 0.7
    t.set(np.ones(2), event={"location": "A"}, given={"location": "B"})
    assert np.all(t.get(event={"location": "A"}, given={"location": "B"}) == 1.0)
    with pytest.raises(ModelError, match=r"shape \(3, 4, 2\), expected \(4, 4, 2\)"):
        t.data = np.zeros((3, 4, 2))
    t.data = np.ones((4, 4, 2))  # the same shape is accepted
    assert t.data.sum() == 32


def random_key(rng, labels_per_axis, for_write):
    """One index per axis: a label, a position, the full slice, or a list of labels/positions (some axes left out)."""
    key = []
    for labels in labels_per_axis:
        kind = rng.integers(4)
        if kind == 0:
            key.append(labels[rng.integers(len(labels))])
        elif kind == 1:
            key.append(int(rng.integers(len(labels))))
        elif kind == 2:
            key.append(slice(None))
        else:
            chosen = rng.choice(len(labels), size=rng.integers(1, len(labels) + 1), replace=False)
            key.append([labels[i] if rng.random() < 0.5 else int(i) for i in chosen])
    return tuple(key[:rng.integers(1, len(key) + 1)]) if not for_write else tuple(key)


def test_distribution_indexing_matches_pymdp_on_random_keys(pymdp1):
    distribution, _ = pymdp1
    rng = np.random.default_rng(0)
    axes = [("s", ["a", "b", "c"]), ("s", ["a", "b", "c"]), ("u", ["x", "y"]), ("v", [0, 1, 2, 3])]
    data = rng.random((3, 3, 2, 4))
    ours = Distribution(dict(axes[:1]), dict(axes[1:]), data)
    theirs = distribution.Distribution(dict(axes[:1]), dict(axes[1:]), data.copy())
    labels = [labels for _, labels in axes]
    for _ in range(200):
        key = random_key(rng, labels, for_write=False)
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=str(key))
        key = random_key(rng, labels, for_write=True)
        value = rng.random(np.shape(theirs[key]))
        ours[key] = value
        theirs[key] = value
        np.testing.assert_array_equal(ours.data, theirs.data, err_msg=str(key))
    ours.normalize()
    theirs.normalize()
    np.testing.assert_allclose(ours.data, theirs.data, rtol=0, atol=TOL)


def test_distribution_errors_name_axis_and_labels():
    t = Distribution({"location": LOCATIONS}, {"location": LOCATIONS, "control": CONTROLS})
    with pytest.raises(ModelError, match=r"'E' is not a label of axis 'location' .* \['A', 'B', 'C', 'D'\]"):
        t["E", "A", "up"]
    with pytest.raises(ModelError, match="'left' is not a label of axis 'control'"):
        t["A", "B", "left"] = 1.0
    with pytest.raises(ModelError, match="4 indices .* 3 axes"):
        t["A", "B", "up", 0]
    with pytest.raises(ModelError, match="position 7 is out of range for axis 'location'"):
        t[7]
    with pytest.raises(ModelError, match="'speed' is not a given axis"):
        t.get(given={"speed": 0})
    with pytest.raises(ModelError, match="slices take positions"):
        t["A":"C"]
    with pytest.raises(ModelError, match=r"values of shape \(3,\) do not fit the selection of shape \(4,\)"):
        t[:, "B", "up"] = np.ones(3)
    with pytest.raises(ModelError, match="values written to .* must be numbers"):
        t.set("high", event={"location": "A"})
    with pytest.raises(ModelError, match="repeats the label 'A'"):
        Distribution({"location": ["A", "A"]})
    with pytest.raises(ModelError, match="integer label 5 at position 1"):
        Distribution({"n": [0, 5]})
    t.data = np.full((4, 4, 2), 0.25)
    t["A", "C", "down"] = 0.0
    with pytest.raises(ModelError, match=r"B\['location'\] sums to 0.75 over 'location' at location='C', "
                                         r"control='down'"):
        t.check_columns("B['location']")
    t[:, "C", "down"] = 0.0
    with pytest.raises(ModelError, match="column summing to 0"):
        t.normalize()  # pymdp divides by zero here and writes NaN


# ----------------------------------------------------------------------------------------------------------
# compile_model on pymdp's test and examples


def test_compile_shapes_as_pymdp_test(pymdp1):
    distribution, _ = pymdp1
    description = {
        "observations": {"observation_1": {"size": 10, "depends_on": ["factor_1"]},
                         "observation_2": {"elements": ["A", "B"], "depends_on": ["factor_1"]}},
        "controls": {"control_1": {"size": 2}, "control_2": {"elements": ["X", "Y"]}},
        "states": {"factor_1": {"elements": ["II", "JJ", "KK"], "depends_on": ["factor_1", "factor_2"],
                                "controlled_by": ["control_1", "control_2"]},
                   "factor_2": {"elements": ["foo", "bar"], "depends_on": ["factor_2"],
                                "controlled_by": ["control_2"]}},
    }
    ours, theirs = compile_model(description), distribution.compile_model(description)
    assert [b.shape for b in ours.B] == [b.data.shape for b in theirs.B] == [(3, 3, 2, 2, 2), (2, 2, 2)]
    assert [a.shape for a in ours.A] == [a.data.shape for a in theirs.A] == [(10, 3), (2, 3)]
    assert ours.B_action_dependencies == theirs.B_action_dependencies == [[0, 1], [1]]
    assert ours.num_controls == theirs.num_controls == [2, 2]
    for kind in "ABCDH":
        assert max_diff([x.data for x in getattr(ours, kind)], [x.data for x in getattr(theirs, kind)]) == 0
    assert ours.A[0][:, "II"].shape == (10,) and ours.A[1][1, :].shape == (3,)


def fill_grid(model):
    """examples/api/model_construction_tutorial.ipynb, example 1 (works on either package's model)."""
    for p in ["left", "center_left", "center_right", "right"]:
        model.A["position_obs"][p, p] = 1.0
    for to, frm in [("center_left", "left"), ("center_right", "center_left"), ("right", "center_right"),
                    ("right", "right")]:
        model.B["position"][to, frm, "move_right"] = 1.0
    for to, frm in [("left", "left"), ("left", "center_left"), ("center_left", "center_right"),
                    ("center_right", "right")]:
        model.B["position"][to, frm, "move_left"] = 1.0
    model.C["position_obs"]["center_left"] = 1.0


GRID = {"observations": {"position_obs": {"elements": ["left", "center_left", "center_right", "right"],
                                          "depends_on": ["position"]}},
        "controls": {"movement": {"elements": ["move_left", "move_right"]}},
        "states": {"position": {"elements": ["left", "center_left", "center_right", "right"],
                                "depends_on": ["position"], "controlled_by": ["movement"]}}}

ITEMS = ["orchard", "apple"]
FORAGING = {
    "observations": {
        "location_obs": {"size": 3, "depends_on": ["location_state"]},
        "item_obs": {"elements": ITEMS, "depends_on": ["location_state", "left_state", "center_state", "right_state"]},
        "reward_obs": {"elements": ["no_reward", "reward"], "depends_on": ["reward_state"]}},
    "controls": {"move": {"elements": ["stay", "move_left", "move_right"]}, "eat": {"elements": ["noop", "eat"]}},
    "states": {
        "location_state": {"size": 3, "depends_on": ["location_state"], "controlled_by": ["move"]},
        "reward_state": {"elements": ["no_reward", "reward"], "controlled_by": ["eat"],
                         "depends_on": ["reward_state", "location_state", "left_state", "center_state", "right_state"]},
        "left_state": {"elements": ITEMS, "depends_on": ["left_state", "location_state"], "controlled_by": ["eat"]},
        "center_state": {"elements": ITEMS, "depends_on": ["center_state", "location_state"], "controlled_by": ["eat"]},
        "right_state": {"elements": ITEMS, "depends_on": ["right_state", "location_state"], "controlled_by": ["eat"]}},
}


def fill_foraging(model):
    """examples/api/model_construction_tutorial.ipynb, example 2, cell by cell."""
    model.A["location_obs"].data = np.eye(3)
    model.A["reward_obs"].data = np.eye(2)
    for item in ITEMS:
        model.A["item_obs"][item, 0, item, :, :] = 1.0
        model.A["item_obs"][item, 1, :, item, :] = 1.0
        model.A["item_obs"][item, 2, :, :, item] = 1.0
    model.A["item_obs"].data = model.A["item_obs"].data + 1e-3
    for to, frm, action in [(0, 0, "stay"), (1, 0, "move_right"), (2, 0, "move_left"), (0, 1, "move_left"),
                            (1, 1, "stay"), (2, 1, "move_right"), (0, 2, "move_right"), (1, 2, "move_left"),
                            (2, 2, "stay")]:
        model.B["location_state"][to, frm, action] = 1.0
    R = model.B["reward_state"]
    R["no_reward", "no_reward", 0, "apple", :, :, "noop"] = 1.0
    R["no_reward", "no_reward", 1, :, "apple", :, "noop"] = 1.0
    R["no_reward", "no_reward", 2, :, :, "apple", "noop"] = 1.0
    R["no_reward", "no_reward", 0, "orchard", :, :, :] = 1.0
    R["no_reward", "no_reward", 1, :, "orchard", :, :] = 1.0
    R["no_reward", "no_reward", 2, :, :, "orchard", :] = 1.0
    for loc in range(3):
        R["no_reward", "reward", loc, :, :, :, :] = 1.0
    R["reward", "no_reward", 0, "orchard", :, :, "eat"] = 0.0
    R["reward", "no_reward", 1, :, "orchard", :, "eat"] = 0.0
    R["reward", "no_reward", 2, :, :, "orchard", "eat"] = 0.0
    R["no_reward", "no_reward", 0, "apple", :, :, "eat"] = 0.0
    R["no_reward", "no_reward", 1, :, "apple", :, "eat"] = 0.0
    R["no_reward", "no_reward", 2, :, :, "apple", "eat"] = 0.0
    R["reward", "no_reward", 0, "apple", :, :, "eat"] = 1.0
    R["reward", "no_reward", 1, :, "apple", :, "eat"] = 1.0
    R["reward", "no_reward", 2, :, :, "apple", "eat"] = 1.0
    for i, state in enumerate(["left_state", "center_state", "right_state"]):
        model.B[state]["orchard", "orchard", :, :] = 1.0 - 1 / 3
        model.B[state]["apple", "orchard", :, :] = 1 / 3
        model.B[state]["apple", "apple", i, "noop"] = 1.0
        model.B[state]["orchard", "apple", i, "eat"] = 1.0
        model.B[state].data = model.B[state].data + 1e-3
    model.C["reward_obs"]["reward"] = 1.0
    for table in [*model.A, *model.B]:
        table.normalize()


def complex_action_description(s2_controls):
    return {"observations": {"o1": {"elements": ["A", "B", "C", "D"], "depends_on": ["s1"]}},
            "controls": {"c1": {"elements": ["up", "down"]}, "c2": {"elements": ["left", "right", "stay"]}},
            "states": {"s1": {"elements": ["A", "B", "C", "D"], "depends_on": ["s1"], "controlled_by": ["c1", "c2"]},
                       "s2": {"elements": ["A", "B", "C", "D"], "depends_on": ["s2"], "controlled_by": s2_controls}}}


def fill_complex_action(model, description):
    """examples/advanced/complex_action_dependency.ipynb (both of its models)."""
    for x in "ABCD":
        model.A["o1"][x, x] = 1.0
    for i, state in enumerate(description["states"]):
        controls = itertools.product(*[description["controls"][c]["elements"]
                                       for c in description["states"][state]["controlled_by"]])
        for control in controls:
            for to, frm in [("B", "A"), ("C", "B"), ("D", "C"), ("D", "D")]:
                model.B[i][(to, frm, *control)] = 1.0


def knapsack_description(num_items):
    states = {f"s_{i}": {"elements": ["not enclude", "include"], "depends_on": [f"s_{i}"],
                         "controlled_by": [f"a_{i}"]} for i in range(num_items)}
    states["z"] = {"elements": ["not violated", "violated"], "depends_on": ["z"],
                   "controlled_by": [f"a_{i}" for i in range(num_items)]}
    return {"observations": {k: {"elements": v["elements"], "depends_on": [k]} for k, v in states.items()},
            "controls": {f"a_{i}": {"elements": ["not enclude", "include"]} for i in range(num_items)},
            "states": states}


def fill_knapsack(model, weights, capacity):
    """examples/envs/knapsack_demo.ipynb: identity A and item B, the capacity constraint as z's B."""
    n = len(weights)
    for a in model.A:
        a.data = np.eye(len(a.data))
    for i in range(n):
        mat = model.B[i].data
        for j in range(mat.shape[1]):
            mat[:, j] = np.eye(len(mat))
        model.B[i].data = mat
    indices = np.indices((2,) * n)
    total = np.sum((indices == 1) * np.asarray(weights).reshape((-1,) + (1,) * n), axis=0)
    violated = np.where(total > capacity, 1, 0)
    model.B[-1].data = np.stack([np.stack((1 - violated, violated), axis=0)] * 2, axis=1)


def pymdp_agent_arrays(Agent, theirs, policy_len):
    """What pymdp 1.0's Agent(**model) holds, from the functions its constructor calls on a compiled model
    (pymdp/agent.py, Agent.__init__: _construct_dependencies -> get_dependencies, _flatten_B_action_dims,
    control._construct_policies_tuple, _construct_flattend_policies_tuple). Building the Agent itself runs its
    _validate, which compiles some thirty small JAX programs (over a second per structure), for the same arrays."""
    from types import SimpleNamespace

    from pymdp import control
    from pymdp.distribution import get_dependencies

    A_deps, B_deps = get_dependencies(theirs.A, theirs.B)
    shell = SimpleNamespace(num_controls_multi=theirs.num_controls)
    B, _, action_maps = Agent._flatten_B_action_dims(shell, [b.data for b in theirs.B], None,
                                                     theirs.B_action_dependencies)
    multi = control._construct_policies_tuple(theirs.num_controls, theirs.num_controls, policy_len, None)
    policies = Agent._construct_flattend_policies_tuple(shell, multi, action_maps)
    return dict(A=[a.data for a in theirs.A], B=B, C=[c.data for c in theirs.C], D=[d.data for d in theirs.D],
                H=[h.data for h in theirs.H], A_dependencies=A_deps, B_dependencies=B_deps,
                policies=np.asarray(policies))


def compare_with_pymdp(Agent, ours, theirs, policy_len):
    """aif's built model and policies against pymdp 1.0's: every array, the dependencies and the policies."""
    model, ref = ours.to_model(), pymdp_agent_arrays(Agent, theirs, policy_len)
    assert model.A_dependencies == ref["A_dependencies"] and model.B_dependencies == ref["B_dependencies"]
    np.testing.assert_array_equal(ours.policies(policy_len), ref["policies"])
    return max(max_diff(model.A, ref["A"]), max_diff(model.B, ref["B"]), max_diff(model.C, ref["C"]),
               max_diff(model.D, ref["D"]), max_diff([h.data for h in ours.H], ref["H"]))


def test_pymdp_examples_build_the_same_model(pymdp1):
    distribution, Agent = pymdp1
    worst = 0.0
    cases = [(GRID, fill_grid), (FORAGING, fill_foraging)]
    for s2_controls in (["c1"], []):
        description = complex_action_description(s2_controls)
        cases.append((description, lambda m, d=description: fill_complex_action(m, d)))
    rng = np.random.default_rng(3)
    weights, capacity = 4 + rng.uniform(0, 5, size=4), 16.0
    cases.append((knapsack_description(4), lambda m: fill_knapsack(m, weights, capacity)))
    for description, fill in cases:
        ours, theirs = compile_model(description), distribution.compile_model(description)
        fill(ours)
        fill(theirs)
        for kind in "ABCD":
            worst = max(worst, max_diff([x.data for x in getattr(ours, kind)], [x.data for x in getattr(theirs, kind)]))
        for policy_len in (1, 2):
            worst = max(worst, compare_with_pymdp(Agent, ours, theirs, policy_len))
    print("pymdp 1.0 examples, max |diff| of A, B, C, D, H:", worst)
    assert worst < TOL


def test_tutorial_grid_agent_moves_to_preference():
    """The tutorial's agent at "left", preferring "center_left", moves right; from "right" it moves left."""
    labelled = compile_model(GRID)
    fill_grid(labelled)
    model = labelled.to_model()
    for start, move in (("left", "move_right"), ("right", "move_left")):
        agent = aif.Agent.pymdp(model, policies=labelled.policies(1), gamma=10.0)
        action = agent.step(labelled.observation({"position_obs": start}))
        assert labelled.controls_of(action) == {"movement": move}


def test_shared_control_policies_and_decoding():
    """A control that drives several factors: policies keep the factors' actions consistent; action() and
    controls_of() are inverse; the foraging model's 'eat' drives four factors."""
    labelled = compile_model(FORAGING)
    policies = labelled.policies(2)
    assert policies.shape == (36, 2, 5)  # (3 moves x 2 eats) ** 2 steps, 5 factors
    assert np.all(policies[..., 1:] == policies[..., 1:2])  # every factor driven by 'eat' takes the same action
    for move, eat in itertools.product(labelled.controls["move"], labelled.controls["eat"]):
        action = labelled.action({"move": move, "eat": eat})
        assert labelled.controls_of(action) == {"move": move, "eat": eat}
        assert any((p[0] == action).all() for p in policies)
    with pytest.raises(PolicyError, match="control 'eat'"):
        labelled.controls_of(np.array([0, 0, 1, 0, 0]))  # 'eat' = noop for one factor, eat for another
    with pytest.raises(PolicyError, match="one label for each control"):
        labelled.action({"move": "stay"})
    with pytest.raises(ObservationError, match="'pear' is not an outcome of modality 'item_obs'"):
        labelled.observation({"location_obs": 0, "item_obs": "pear", "reward_obs": "reward"})


# ----------------------------------------------------------------------------------------------------------
# Random descriptions


def random_description(rng):
    """1-3 factors (each depending on itself first, then others), 1-3 controls each driving some factor, 1-3
    modalities; labels as strings or sizes, dependencies in random order."""
    nf, nu, nm = (int(x) for x in rng.integers(1, 4, size=3))
    states = [f"s{f}" for f in range(nf)]
    controls = [f"u{c}" for c in range(nu)]

    def labels(prefix, n):
        return {"size": n} if rng.random() < 0.3 else {"elements": [f"{prefix}_{i}" for i in range(n)]}

    drivers = [[] for _ in range(nf)]
    for c in controls:
        for f in rng.choice(nf, size=rng.integers(1, nf + 1), replace=False):
            drivers[f].append(c)
    description = {"states": {}, "controls": {c: labels(c, int(rng.integers(1, 4))) for c in controls},
                   "observations": {}}
    for f, name in enumerate(states):
        others = [s for s in states if s != name]
        deps = [name] + [others[i] for i in rng.permutation(len(others))[:rng.integers(0, len(others) + 1)]]
        description["states"][name] = {**labels(name, int(rng.integers(2, 4))), "depends_on": deps,
                                       "controlled_by": [drivers[f][i] for i in rng.permutation(len(drivers[f]))]}
    for m in range(nm):
        deps = [states[i] for i in rng.permutation(nf)[:rng.integers(1, nf + 1)]]
        description["observations"][f"o{m}"] = {**labels(f"o{m}", int(rng.integers(2, 4))), "depends_on": deps}
    return description


def columns(rng, shape):
    x = rng.random(shape) + 0.05
    return x / x.sum(axis=0)


def test_random_descriptions_build_the_same_model(pymdp1):
    distribution, Agent = pymdp1
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(16):
        description = random_description(rng)
        ours, theirs = compile_model(description), distribution.compile_model(description)
        for kind, make in (("A", columns), ("B", columns), ("C", lambda r, s: r.normal(size=s)),
                           ("D", columns), ("H", columns)):
            for x, y in zip(getattr(ours, kind), getattr(theirs, kind), strict=True):
                x.data = make(rng, x.shape)
                y.data = x.data.copy()
        worst = max(worst, compare_with_pymdp(Agent, ours, theirs, policy_len=int(rng.integers(1, 3))))
    print("pymdp 1.0 on random descriptions, max |diff|:", worst)
    assert worst < TOL


# ----------------------------------------------------------------------------------------------------------
# Errors in descriptions and tables


@pytest.mark.parametrize("change, message", [
    (lambda d: d["states"]["position"].update(depend_on=["position"]), "unknown key 'depend_on'"),
    (lambda d: d["states"]["position"].update(controlled_by=["jump"]), "names 'jump', which is not a control"),
    (lambda d: d["observations"]["position_obs"].update(depends_on=["place"]), "names 'place', which is not"),
    (lambda d: d["observations"]["position_obs"].pop("depends_on"), "needs 'depends_on'"),
    (lambda d: d["states"]["position"].update(size=4), "exactly one of 'elements'"),
    (lambda d: d["controls"].update(wait={"size": 2}), "control 'wait' drives no state factor"),
    (lambda d: d["controls"].update(position={"size": 2}), "names both a state factor and a control"),
    (lambda d: d["states"]["position"].update(elements=["left", "left"]), "repeats the label 'left'"),
    (lambda d: d.pop("states"), "must have 'observations' and 'states'"),
])
def test_description_errors(change, message):
    description = {kind: {name: dict(spec) for name, spec in section.items()} for kind, section in GRID.items()}
    change(description)
    with pytest.raises(ModelError, match=message):
        compile_model(description)


def test_defaults_and_table_errors_in_to_model():
    """depends_on defaults to the factor itself, controlled_by to none (one control of size 1 in the model); a
    table whose columns do not sum to one is named with the labels of the column."""
    labelled = compile_model({"observations": {"o": {"elements": ["x", "y"], "depends_on": ["s"]}},
                              "states": {"s": {"elements": ["p", "q"]}}})
    assert labelled.B_dependencies == [["s"]] and labelled.controlled_by == [[]]
    assert labelled.B["s"].shape == (2, 2) and labelled.policies(3).shape == (1, 3, 1)
    labelled.A["o"].data = np.eye(2)
    with pytest.raises(ModelError, match=r"B\['s'\] sums to 0 over 's' at s='p'"):
        labelled.to_model()
    labelled.B["s"].data = np.eye(2)
    model = labelled.to_model()
    assert model.B[0].shape == (2, 2, 1) and model.num_controls == [1]
    labelled.D["s"]["p"] = 2.0
    with pytest.raises(ModelError, match=r"D\['s'\] sums to 2.5"):
        labelled.to_model()
    with pytest.raises(ModelError, match="A has no table 'z'"):
        labelled.A["z"]
