"""pymdp 1.0's demo notebooks run by pymdp 1.0 and by aif, side by side.

    python examples/pymdp_demos.py                               # every demo, the notebooks' settings (or close)
    python examples/pymdp_demos.py --quick                       # short episodes, small batches
    python examples/pymdp_demos.py --quick --demo inductive      # one demo (repeat --demo for more)

Each demo builds the notebook's model and runs the notebook's cells in pymdp 1.0 (float64 JAX), then computes the
same numbers with aif (``aif.Agent.pymdp`` or the matching function) and prints them beside pymdp's with the
largest difference. Where the notebook runs an episode, aif's agent reads pymdp's observations one by one and
continues from pymdp's action wherever its own choice differs (a sampled action, a tie), so that both keep seeing
the same world; its q(pi) is compared at every step. A difference that is not rounding is explained on its row.

The notebooks (pymdp's ``examples/``):

- ``model-construction``: ``api/model_construction_tutorial.ipynb``: the grid and the orchard models built from
  labels (``aif.compile_model``), the grid agents' first choice, the orchard agent's episode.
- ``inference-methods``: ``inference_and_learning/inference_methods_comparison.ipynb``: online variational
  filtering and its smoother (``aif.filter_states`` + ``aif.smooth``), MMP, VMP and exact HMM smoothing
  (``aif.forward_backward``) on the notebook's two-factor sequence.
- ``inductive``: ``inductive_inference/inductive_inference_example.ipynb``: I and q(pi) of
  ``update_posterior_policies_inductive`` (``aif.InductiveCost``).
- ``inductive-gridworld``: ``inductive_inference/inductive_inference_gridworld.ipynb``: agents planning one step
  ahead with inductive inference reach the far corner of a 7 x 7 grid (``aif.InductiveCost.from_goals``).
- ``learning``: ``learning/learning_gridworld.ipynb``: agents that learn B offline from smoothed beliefs, driven
  by parameter information gain, at several action precisions (``aif.Learning(online=False, smoothing=True)``).
- ``sophisticated``: ``experimental/sophisticated_inference/si_*.ipynb``: ``si_policy_search`` on the simplified
  T-maze, the graph world and the generalised T-maze (``aif.planning.SophisticatedInference.pymdp``).
- ``mcts``: ``experimental/sophisticated_inference/mcts_*.ipynb``: tree search on the generalised T-maze and the
  graph world (``aif.planning.MCTS``; pymdp hands the tree to mctx's Gumbel MuZero, a different search).
- ``action-dependency``: ``advanced/complex_action_dependency.ipynb``: several action factors per state factor and
  a factor driven by none (``aif.ActionFactors``, ``Agent(actions=...)``).

Not here: ``model_fitting/*`` and ``advanced/pymdp_with_neural_encoder.ipynb`` (other scripts), the environment
demos (``examples/pymdp_envs.py``), and ``legacy/`` (pymdp.legacy, ``tests/test_agreement_pymdp.py``).
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import aif
from aif.efe import InductiveCost, InfoGain, Novelty, Utility
from aif.learning import WNORM_EXACT
from aif.planning import MCTS, SophisticatedInference


def jax64():
    """JAX in float64, before pymdp builds anything: the comparisons are to rounding, not to float32."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


@dataclass
class Row:
    """One compared quantity of a demo: aif's value beside pymdp's."""

    demo: str
    what: str
    aif: str  # aif's value, in short
    pymdp: str  # pymdp's value, in short
    diff: float | None  # max |aif - pymdp|; None where pymdp defines no number to compare
    note: str = ""


def max_diff(ours: Any, theirs: Any) -> float:
    """The largest absolute difference between two arrays or two lists of arrays of the same shapes."""
    if isinstance(ours, (list, tuple)):
        return max((max_diff(x, y) for x, y in zip(ours, theirs, strict=True)), default=0.0)
    return float(np.max(np.abs(np.asarray(ours, float) - np.asarray(theirs, float)), initial=0.0))


def short(x: Any, digits: int = 3) -> str:
    """An array in a few numbers."""
    flat = np.ravel(np.asarray(x, float))
    text = np.array2string(np.round(flat[:6], digits), separator=", ")
    return text[:-1] + ", ...]" if flat.size > 6 else text


def unbatch(arrays: Any, b: int = 0) -> list[np.ndarray]:
    """Entry ``b`` of the batch of each of pymdp's arrays, as NumPy."""
    return [np.asarray(x)[b] for x in arrays]


def pymdp_rollout(agent: Any, env: Any, steps: int, seed: int, **kwargs: Any) -> tuple[Any, dict]:
    """pymdp 1.0's ``rollout``: its last carry, and observations ``(B, T + 1, M)``, actions ``(B, T + 1, F)``, q(pi)
    ``(B, T + 1, P)`` and states ``(B, T + 1, F)`` as NumPy."""
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp.envs.rollout import rollout

    # rollout starts from an int32 "no action"; in float64 JAX the agent's actions are int64, and the scan needs its
    # carry to keep one type: start from an int64 one.
    carry = {"action": -jnp.ones((agent.batch_size, len(agent.num_controls)), dtype=jnp.int64),
             **kwargs.pop("initial_carry", {})}
    last, info = rollout(agent, env, steps, jr.PRNGKey(seed), initial_carry=carry, **kwargs)
    return last, {"obs": np.stack([np.asarray(o)[:, :, 0] for o in info["observation"]], -1).astype(int),
                  "actions": np.asarray(info["action"]).astype(int), "q_pi": np.asarray(info["qpi"]),
                  "states": np.stack([np.asarray(s) for s in info["env_state"]], -1).astype(int)}


def replay(agent: aif.Agent, observations: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aif's Agent on pymdp's observations ``(T, M)``, taking pymdp's actions ``(T, F)``: q(pi) ``(T, P)`` and
    whether its own choice was pymdp's ``(T,)``. The episode stays recorded (a learning agent learns from it)."""
    agent.reset()
    q_pi, same = [], []
    for obs, action in zip(observations, actions, strict=True):
        agent.infer_states(obs.tolist())
        q_pi.append(agent.infer_policies()[0])
        same.append(np.array_equal(agent.sample_action(), action))
        if not same[-1]:  # follow pymdp's action: the step taken, and the prior pymdp's agent carries
            agent.action = action
            agent.prior = aif.predict(agent.model, agent.qs, action)
    return np.array(q_pi), np.array(same)


def episode_rows(demo: str, what: str, agents: list[aif.Agent], theirs: dict) -> list[Row]:
    """Replay each of pymdp's episodes (one agent per batch entry) and compare q(pi) at every step; where an action
    differs, say whether it was sampled or a tie in q(pi) (its two largest values equal to 1e-12)."""
    diff, same, ties, q_first = 0.0, 0, True, None
    for b, agent in enumerate(agents):
        q_pi, agreed = replay(agent, theirs["obs"][b], theirs["actions"][b])
        diff = max(diff, max_diff(q_pi, theirs["q_pi"][b]))
        same += int(agreed.sum())
        top_two = np.sort(theirs["q_pi"][b][~agreed], axis=-1)[:, -2:]
        ties &= bool(np.all(top_two[:, 1] - top_two[:, 0] < 1e-12))
        q_first = q_pi[-1] if q_first is None else q_first
    batch, steps = theirs["obs"].shape[:2]
    sampled = agents[0].selection.mode == "stochastic"
    note = "" if same == batch * steps else (
        "sampled: each library draws its own random numbers" if sampled else
        "ties in q(pi) broken the other way (equal to rounding)" if ties else "different choices")
    return [Row(demo, f"{what}: q(pi), {batch} episodes x {steps} steps", short(q_first),
                short(theirs["q_pi"][0, -1]), diff),
            Row(demo, f"{what}: aif chose pymdp's action", f"{same}/{batch * steps}", "", None, note)]


# ---------------------------------------------------------------------------------------------------------------
# api/model_construction_tutorial.ipynb

POSITIONS = ["left", "center_left", "center_right", "right"]
GRID = {"observations": {"position_obs": {"elements": POSITIONS, "depends_on": ["position"]}},
        "controls": {"movement": {"elements": ["move_left", "move_right"]}},
        "states": {"position": {"elements": POSITIONS, "depends_on": ["position"], "controlled_by": ["movement"]}}}
ITEMS = ["orchard", "apple"]
ORCHARD = {
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


def fill_grid(model: Any) -> None:
    """The tutorial's first model, cell by cell (the same code fills pymdp's model and aif's)."""
    for p in POSITIONS:
        model.A["position_obs"][p, p] = 1.0
    for to, frm in [("center_left", "left"), ("center_right", "center_left"), ("right", "center_right"),
                    ("right", "right")]:
        model.B["position"][to, frm, "move_right"] = 1.0
    for to, frm in [("left", "left"), ("left", "center_left"), ("center_left", "center_right"),
                    ("center_right", "right")]:
        model.B["position"][to, frm, "move_left"] = 1.0
    model.C["position_obs"]["center_left"] = 1.0


def fill_orchard(model: Any) -> None:
    """The tutorial's second model: apples that grow and are eaten for a reward, with its 1e-3 noise."""
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
    for location in range(3):
        R["no_reward", "reward", location, :, :, :, :] = 1.0
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
        model.B[state]["orchard", "orchard", :, :] = 1.0 - 1 / 3  # no apple grows
        model.B[state]["apple", "orchard", :, :] = 1 / 3  # an apple grows
        model.B[state]["apple", "apple", i, "noop"] = 1.0  # the apple stays unless eaten from its cell
        model.B[state]["orchard", "apple", i, "eat"] = 1.0
        model.B[state].data = model.B[state].data + 1e-3
    model.C["reward_obs"]["reward"] = 1.0
    for table in [*model.A, *model.B]:
        table.normalize()


def model_construction(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    from pymdp.agent import Agent
    from pymdp.distribution import compile_model
    from pymdp.envs import PymdpEnv

    demo, rows = "model-construction", []
    ours, theirs = aif.compile_model(GRID), compile_model(GRID)
    fill_grid(ours)
    fill_grid(theirs)
    rows.append(Row(demo, "grid: A, B, C, D tables", "", "", max_diff(
        [t.data for k in "ABCD" for t in getattr(ours, k)], [t.data for k in "ABCD" for t in getattr(theirs, k)])))
    # three agents (gamma 10) that see "left", "center_right" and "right" choose their move
    starts = [0, 2, 3]
    agent = Agent(**theirs, batch_size=3, gamma=10.0)
    qs = agent.infer_states([jnp.array([[s] for s in starts])], [jnp.expand_dims(d, 1) for d in agent.D])
    q_theirs, _ = agent.infer_policies([q[:, 0] for q in qs])
    labels = GRID["controls"]["movement"]["elements"]
    moves_theirs = [labels[int(a[0])] for a in np.asarray(agent.sample_action(q_theirs))]
    q_ours, moves_ours = [], []
    for s in starts:
        mine = aif.Agent.pymdp(ours.to_model(), policies=ours.policies(1), gamma=10.0)
        moves_ours.append(ours.controls_of(mine.step([s]))["movement"])
        q_ours.append(mine.q_pi)
    rows.append(Row(demo, "grid: q(pi) of 3 agents (gamma 10)", short(q_ours), short(q_theirs),
                    max_diff(q_ours, q_theirs)))
    rows.append(Row(demo, "grid: moves from left, center_right, right", str(moves_ours), str(moves_theirs), None,
                    "" if moves_ours == moves_theirs else "different moves"))

    ours, theirs = aif.compile_model(ORCHARD), compile_model(ORCHARD)
    fill_orchard(ours)
    fill_orchard(theirs)
    rows.append(Row(demo, "orchard: A, B, C, D tables", "", "", max_diff(
        [t.data for k in "ABCD" for t in getattr(ours, k)], [t.data for k in "ABCD" for t in getattr(theirs, k)])))
    # its agent (gamma 1, actions from the full posterior) in the environment of the same model
    agent = Agent(**theirs, learn_A=False, learn_B=False, gamma=1.0, sampling_mode="full")
    _, episode = pymdp_rollout(agent, PymdpEnv(**theirs), 3 if quick else 10, seed=0)
    model = ours.to_model()
    mine = aif.Agent.pymdp(model, actions=ours.actions)
    rows += episode_rows(demo, "orchard agent", [mine], episode)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# inference_and_learning/inference_methods_comparison.ipynb

def inference_methods(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    from pymdp.agent import Agent
    from pymdp.algos import hmm_smoother_scan_colstoch
    from pymdp.inference import smoothing_ovf
    from pymdp.maths import log_stable

    demo, rows = "inference-methods", []
    # The notebook's model: a 3-cycle and a 2-cycle, one outcome that only (state 2, state 0) makes likely.
    A_1 = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    A_2 = np.array([[1.0, 1.0], [1.0, 0.0]])
    A = A_1[..., None] * A_2[:, None]
    A = A / A.sum(0)  # (2, 3, 2)
    B = [np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])[..., None],
         np.array([[0.0, 1.0], [1.0, 0.0]])[..., None]]
    D = [np.full(3, 1 / 3), np.full(2, 1 / 2)]
    model = aif.GenerativeModel([A], B, C=[np.zeros(2)], D=D, A_dependencies=[[0, 1]])
    obs_idx = [0, 0, 0, 1]
    T = len(obs_idx)
    obs = [np.eye(2)[obs_idx]]  # (T, 2): pymdp's categorical observations
    actions = np.zeros((T - 1, 2), dtype=int)

    batch = 2
    stack = lambda xs: [jnp.broadcast_to(jnp.asarray(x), (batch, *x.shape)) for x in xs]  # noqa: E731
    settings = dict(A=stack([A]), B=stack(B), C=stack(model.C), D=stack(D), E=jnp.ones((batch, 1)), policy_len=3,
                    categorical_obs=True, action_selection="deterministic", sampling_mode="full", num_iter=16,
                    batch_size=batch)
    # online variational filtering: pymdp's FPI at each step from the predicted prior, then smoothing_ovf
    agent = Agent(**settings, inference_algo="ovf")
    prior, history = agent.D, None
    for t in range(T):
        seen = [jnp.broadcast_to(jnp.asarray(o[: t + 1]), (batch, t + 1, 2)) for o in obs]
        beliefs = agent.infer_states(seen, prior, qs_hist=history)
        prior = agent.update_empirical_prior(jnp.zeros((batch, 2), dtype=int), beliefs)
        history = beliefs
    filtered_theirs = unbatch(beliefs)
    smoothed_theirs, _ = smoothing_ovf(filtered_theirs, unbatch(agent.B), jnp.asarray(actions))
    filtered = aif.filter_states(model, [[o] for o in obs_idx], actions, method=aif.FixedPoint.pymdp())
    smoothed = aif.smooth(model, filtered.qs, actions)
    rows.append(Row(demo, "OVF: filtered q(s_t)", short(filtered.qs[0][-1]), short(filtered_theirs[0][-1]),
                    max_diff(filtered.qs, filtered_theirs)))
    rows.append(Row(demo, "OVF: smoothed q(s_t) (smoothing_ovf)", short(smoothed.qs[0][0]),
                    short(smoothed_theirs[0][0]), max_diff(smoothed.qs, smoothed_theirs)))
    # MMP and VMP over the whole sequence, 16 iterations
    for name, method, note in [
            ("mmp", aif.MarginalMessagePassing.pymdp(num_iter=16), ""),
            ("vmp", aif.VariationalMessagePassing(), "")]:
        agent = Agent(**settings, inference_algo=name, control_fac_idx=None)
        theirs = unbatch(agent.infer_states([jnp.broadcast_to(jnp.asarray(obs[0]), (batch, T, 2))], agent.D,
                                            past_actions=jnp.broadcast_to(jnp.asarray(actions), (batch, T - 1, 2))))
        qs_seq, _ = aif.infer_sequence(model, [[o] for o in obs_idx], actions, np.zeros((1, 0, 2), dtype=int),
                                       method=method)
        ours = [q[0] for q in qs_seq]
        rows.append(Row(demo, f"{name.upper()}: q(s_t) over the sequence", short(ours[0][0]), short(theirs[0][0]),
                        max_diff(ours, theirs), note if max_diff(ours, theirs) > 1e-8 else ""))
    # exact smoothing of the joint HMM (the notebook's hmm_smoother_scan_colstoch on kron(B_1, B_2))
    log_lik = jnp.asarray(obs[0]) @ log_stable(jnp.asarray(A.reshape(2, 6)))
    _, _, _, joint, _ = hmm_smoother_scan_colstoch(jnp.kron(D[0], D[1]), jnp.kron(B[0][..., 0], B[1][..., 0]), log_lik)
    joint = np.asarray(joint).reshape(T, 3, 2)
    theirs = [joint.sum(2), joint.sum(1)]
    exact = aif.forward_backward(model, [[o] for o in obs_idx], actions)
    rows.append(Row(demo, "exact: smoothed q(s_t) (joint HMM)", short(exact.qs[0][0]), short(theirs[0][0]),
                    max_diff(exact.qs, theirs)))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# inductive_inference/inductive_inference_example.ipynb

def inductive(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    import jax.random as jr
    from jax import nn
    from pymdp import control

    demo = "inductive"
    num_states, num_controls, num_obs = [5, 3], [2, 2], [5, 3]
    policies = np.array([[[0, 1], [1, 1], [0, 0]], [[1, 0], [0, 0], [1, 1]]])
    # the notebook's random model, drawn with its keys
    key = jr.PRNGKey(1)
    keys = jr.split(key, 2)
    qs = [np.asarray(jr.dirichlet(k, 0.1 * jr.uniform(k, (n,)))) for k, n in zip(keys, num_states, strict=True)]
    A = [np.eye(n) for n in num_obs]
    keys = jr.split(keys[-1], 2)
    b = [jr.uniform(keys[f], shape=(num_controls[f], num_states[f], num_states[f])) for f in range(2)]
    B = [np.asarray(jnp.swapaxes(jr.dirichlet(keys[f], jnp.where(b[f] < 0.75, 1e-5, b[f])), 2, 0)) for f in range(2)]
    modality_keys = jr.split(keys[-1], 2)
    C = [np.asarray(nn.one_hot(jr.randint(modality_keys[m], (1,), 0, num_obs[m]), num_obs[m]))[0] for m in range(2)]
    H = [np.where(np.asarray(jr.uniform(k, (n,))) < 0.75, 0.0, 1.0) for k, n in zip(jr.split(key, 2), num_states,
                                                                                    strict=True)]
    jax_arrays = lambda xs: [jnp.asarray(x) for x in xs]  # noqa: E731
    I_theirs = control.generate_I_matrix(jax_arrays(H), jax_arrays(B), 0.5, 3)
    q_theirs, neg_efe = control.update_posterior_policies_inductive(
        jnp.asarray(policies), jax_arrays(qs), jax_arrays(A), jax_arrays(B), jax_arrays(C), jnp.ones(2),
        [jnp.ones_like(a) for a in A], [jnp.ones_like(x) for x in B], [[0], [1]], [[0], [1]], I_theirs, gamma=16.0,
        use_utility=True, use_inductive=True, inductive_epsilon=1e-3)

    model = aif.GenerativeModel(A, B, C=C, D=[np.full(n, 1 / n) for n in num_states], A_dependencies=[[0], [1]])
    cost = InductiveCost.from_goals(model, H, depth=3, threshold=0.5, epsilon=1e-3)
    G, _ = aif.expected_free_energy(model, qs, policies, terms=(Utility(), InfoGain(), cost),
                                    options=aif.EFEOptions.pymdp())
    q_pi = aif.policy_posterior(G, None, 16.0)
    return [Row(demo, "I (inductive matrices)", short(cost.I[0]), short(I_theirs[0]), max_diff(cost.I, I_theirs)),
            Row(demo, "G = -neg_efe of the 2 policies", short(G), short(-np.asarray(neg_efe)),
                max_diff(G, -np.asarray(neg_efe))),
            Row(demo, "q(pi) (gamma 16)", short(q_pi, 6), short(q_theirs, 6), max_diff(q_pi, q_theirs))]


# ---------------------------------------------------------------------------------------------------------------
# inductive_inference/inductive_inference_gridworld.ipynb

def inductive_gridworld(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    import jax.random as jr
    from jax import nn, vmap
    from pymdp import control
    from pymdp.agent import Agent
    from pymdp.envs import GridWorld

    demo, rows = "inductive-gridworld", []
    shape = (7, 7)
    env = GridWorld(shape=shape, initial_position=(3, 3), include_stay=False)
    goal = env.coords_to_index(shape=shape, coord=(6, 6))
    num_states, num_controls = [b.shape[0] for b in env.B], [b.shape[-1] for b in env.B]
    batch = 2 if quick else 5
    model = aif.GenerativeModel([np.asarray(a) for a in env.A], [np.asarray(b) for b in env.B],
                                C=[np.eye(num_states[0])[goal]], D=[np.asarray(d) for d in env.D])
    H = [np.eye(num_states[0])[goal]]
    # from the middle, depth 7 (7 steps); from the upper-left corner, depth 14 (14 steps)
    for start, depth, steps in [((3, 3), 7, 7)] + ([] if quick else [((0, 0), 14, 14)]):
        start_index = env.coords_to_index(shape=shape, coord=start)
        D = [np.eye(num_states[0])[start_index]]
        agent = Agent([jnp.broadcast_to(jnp.asarray(a), (batch, *a.shape)) for a in model.A],
                      [jnp.broadcast_to(jnp.asarray(b), (batch, *b.shape)) for b in model.B],
                      [jnp.broadcast_to(jnp.asarray(c), (batch, *c.shape)) for c in model.C],
                      [jnp.broadcast_to(jnp.asarray(d), (batch, *d.shape)) for d in D],
                      batch_size=batch, policies=control.construct_policies(num_states, num_controls, policy_len=1),
                      policy_len=1, inductive_depth=depth, inductive_threshold=0.1,
                      H=[jnp.broadcast_to(nn.one_hot(goal, num_states[0]), (batch, num_states[0]))],
                      use_utility=True, use_states_info_gain=False, use_param_info_gain=False, use_inductive=True)
        init_obs, init_state = vmap(env.reset)(jr.split(jr.PRNGKey(1), batch),
                                               state=[jnp.full(batch, start_index)])
        steps = 3 if quick else steps
        _, episode = pymdp_rollout(agent, env, steps, seed=0,
                                   initial_carry={"observation": init_obs, "env_state": init_state})
        ours = aif.GenerativeModel(model.A, model.B, model.C, D)
        terms = (Utility(), InductiveCost.from_goals(ours, H, depth=depth, threshold=0.1))
        agents = [aif.Agent.pymdp(ours, 1, efe_terms=terms) for _ in range(batch)]
        rows += episode_rows(demo, f"from {start}, depth {depth}", agents, episode)
        path = [env.index_to_coords(shape=shape, idx=int(s)) for s in episode["states"][0, :, 0]]
        rows.append(Row(demo, f"from {start}: pymdp's path (episode 0)", "", str([tuple(map(int, p)) for p in path]),
                        None))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# learning/learning_gridworld.ipynb

def learning(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    import jax.random as jr
    from jax import vmap
    from pymdp.agent import Agent
    from pymdp.envs import GridWorld

    demo, rows = "learning", []
    env = GridWorld(shape=(7, 7), initial_position=(3, 3), include_stay=False)
    A = [np.asarray(a) for a in env.A]
    S = env.B[0].shape[0]
    pB = [np.ones_like(np.asarray(env.B[0])) / S]  # flat counts: the agent knows nothing of its moves
    model = aif.GenerativeModel(A, [pB[0] / pB[0].sum(0)], C=[np.zeros(A[0].shape[0])], D=[np.full(S, 1 / S)],
                                pB=pB)
    batch, steps, blocks = (2, 4, 1) if quick else (4, 50, 3)
    alphas = [0.4] if quick else [0.0, 0.4, 0.8]  # the notebook: 0, 0.2, ..., 0.8
    terms = (InfoGain(), Novelty("B", WNORM_EXACT))
    keys = jr.split(jr.PRNGKey(0), blocks * (batch + 1)).reshape((blocks, batch + 1, -1))
    for alpha in alphas:
        theirs = Agent(model.A, model.B, model.C, model.D, E=None, pA=None, pB=pB, policy_len=3, use_utility=False,
                       use_states_info_gain=True, use_param_info_gain=True, gamma=jnp.ones(batch),
                       alpha=jnp.ones(batch) * alpha, categorical_obs=False, action_selection="stochastic",
                       inference_algo="exact", num_iter=1, learn_A=False, learn_B=True, learn_D=False,
                       batch_size=batch, learning_mode="offline")
        ours = [aif.Agent.pymdp(model, 3, alpha=alpha, mode="stochastic", inference=aif.Exact(), efe_terms=terms,
                                learning=aif.Learning(learn_A=False, learn_B=True, online=False, smoothing=True,
                                                      mask_zeros=False), rng=np.random.default_rng(b))
                for b in range(batch)]
        q_diff, pB_diff, kl_ours, kl_theirs = 0.0, 0.0, 0.0, 0.0
        for block in range(blocks):
            init_obs, init_state = vmap(env.reset)(keys[block, :-1])
            last, episode = pymdp_rollout(theirs, env, steps, int(block), initial_carry={
                "observation": init_obs, "env_state": init_state})
            # pymdp_rollout draws from PRNGKey(block); the notebook from the block's last key: same rule, other draws
            theirs = last["agent"]
            for b, agent in enumerate(ours):
                q_pi, _ = replay(agent, episode["obs"][b], episode["actions"][b])
                q_diff = max(q_diff, max_diff(q_pi, episode["q_pi"][b]))
                agent.learn()
                pB_diff = max(pB_diff, max_diff(agent.model.pB[0], np.asarray(theirs.pB[0][b])))
        truth = 1e4 * np.asarray(env.B[0]) + 1e-4  # the notebook's ground-truth counts
        kl_ours = np.mean([kl_dirichlet(agent.model.pB[0], truth).sum() for agent in ours])
        kl_theirs = np.mean([kl_dirichlet(np.asarray(theirs.pB[0][b]), truth).sum() for b in range(batch)])
        what = f"alpha {alpha}, {batch} agents x {blocks} blocks of {steps + 1} steps"
        rows.append(Row(demo, f"{what}: q(pi) at every step", "", "", q_diff))
        rows.append(Row(demo, f"{what}: learned pB", short(ours[0].model.pB[0][:, 0, 0]),
                        short(np.asarray(theirs.pB[0][0][:, 0, 0])), pB_diff))
        rows.append(Row(demo, f"{what}: KL[pB || truth] (relative diff)", f"{kl_ours:.4f}", f"{kl_theirs:.4f}",
                        abs(kl_ours - kl_theirs) / kl_theirs))
    return rows


def kl_dirichlet(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """KL[Dir(alpha) || Dir(beta)] of each column (axis 0): the notebook's ``kl_div_dirichlet``."""
    from scipy.special import digamma, gammaln

    a0, b0 = alpha.sum(0), beta.sum(0)
    return (gammaln(a0) - gammaln(b0) + (gammaln(beta) - gammaln(alpha)
                                         + (alpha - beta) * (digamma(alpha) - digamma(a0))).sum(0))


# ---------------------------------------------------------------------------------------------------------------
# experimental/sophisticated_inference/si_*.ipynb and mcts_*.ipynb

def model_of(env: Any, C: list, D: list) -> aif.GenerativeModel:
    """The agent's model of a pymdp environment: its A and B, the notebook's C and D."""
    return aif.GenerativeModel([np.asarray(a) for a in env.A], [np.asarray(b) for b in env.B], C=C, D=D,
                               A_dependencies=env.A_dependencies, B_dependencies=env.B_dependencies)


def pymdp_agent(model: aif.GenerativeModel, **kwargs: Any) -> Any:
    """pymdp 1.0's Agent of ``model`` (one step ahead: the searches plan deeper)."""
    import jax.numpy as jnp
    from pymdp.agent import Agent

    return Agent(*[[jnp.asarray(x) for x in xs] for xs in (model.A, model.B, model.C, model.D)],
                 A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies, policy_len=1, **kwargs)


def graph_world(preference: float, object_weight: float) -> tuple[Any, aif.GenerativeModel]:
    """The SI and MCTS notebooks' graph world (two clusters of 3 around nodes 0 and 3; the object at 4, next to 3)
    and its agent's model: C prefers seeing the object, D puts weight 100 on the agent at 0 and ``object_weight`` on
    the object at 4 (1 elsewhere)."""
    from pymdp.envs import GraphEnv
    from pymdp.envs.graph_worlds import generate_connected_clusters

    graph, _ = generate_connected_clusters(cluster_size=3, connections=2)
    env = GraphEnv(graph, object_location=4, agent_location=0)
    C = [np.zeros(a.shape[0]) for a in env.A]
    C[1][1] = preference
    D = [np.ones(d.shape[0]) for d in env.D]
    D[0][0], D[1][4] = 100.0, object_weight
    return env, model_of(env, C, [d / d.sum() for d in D])


def pymdp_si() -> Any:
    """pymdp 1.0's ``pymdp/planning/si.py`` with its hard-coded 32-bit dtypes made 64-bit.

    The module fixes ``jnp.float32`` (children probabilities, the prune penalty) and ``jnp.int32`` (tree indices,
    depths); with ``jax_enable_x64`` its ``lax.cond`` branches then disagree in dtype and tracing fails (a pymdp
    bug), and in float32 its probabilities would round at 1e-7. The source is loaded with exactly those dtype names
    replaced and nothing else changed (as ``tests/test_sophisticated.py`` does).
    """
    import inspect
    import sys
    import types

    import pymdp.planning.si as si

    source = inspect.getsource(si)
    module = types.ModuleType("pymdp_si_float64")
    module.__file__ = si.__file__
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(source.replace("jnp.float32", "jnp.float64").replace("jnp.int32", "jnp.int64"), si.__file__, "exec"),
         module.__dict__)
    return module


def sophisticated(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp.envs import SimplifiedTMaze
    from pymdp.envs.generalized_tmaze import GeneralizedTMazeEnv, get_maze_matrix, parse_maze

    demo, rows = "sophisticated", []
    si_policy_search = pymdp_si().si_policy_search

    # si_tmaze_SIvalidation.ipynb: horizon 2, nothing pruned, gamma 3, deterministic
    env = SimplifiedTMaze(reward_condition=0, cue_validity=0.95, reward_probability=1.0, dependent_outcomes=True)
    C = [np.zeros(a.shape[0]) for a in env.A]
    C[1][1:] = [2.0, -6.0]
    model = model_of(env, C, [np.full(b.shape[0], 1 / b.shape[0]) for b in env.B])
    none = dict(policy_prune_threshold=0.0, observation_prune_threshold=0.0, entropy_stop_threshold=0.0,
                gamma=3.0, max_branching=10)
    search = si_policy_search(horizon=2, max_nodes=5000, kl_threshold=-1, prune_penalty=512, topk_obsspace=10000,
                              neg_efe_stop_threshold=1e10, **none)
    _, episode = pymdp_rollout(pymdp_agent(model, gamma=3.0, sampling_mode="full"), env, 2 if quick else 3, 0,
                               policy_search=search)
    planner = SophisticatedInference.pymdp(2, **none)
    rows += episode_rows(demo, "T-maze, horizon 2", [aif.Agent.pymdp(model, 1, gamma=3.0, planner=planner)], episode)
    if quick:
        return rows

    # si_graph_world.ipynb: si_policy_search(horizon=3) with its defaults, 5 steps
    env, model = graph_world(10.0, 100.0)
    _, episode = pymdp_rollout(pymdp_agent(model), env, 5, 0, policy_search=si_policy_search(horizon=3))
    agent = aif.Agent.pymdp(model, 1, planner=SophisticatedInference.pymdp(3))
    rows += episode_rows(demo, "graph world, horizon 3", [agent], episode)

    # si_generalized_tmaze.ipynb: one search from the first observation, horizons 3 and 1, gamma 5
    key, subkey = jr.split(jr.PRNGKey(0))
    info = parse_maze(get_maze_matrix(small=True), subkey)
    env = GeneralizedTMazeEnv(info)
    init_obs, _ = env.reset(key)
    C = [np.zeros(a.shape[0]) for a in env.A]
    C[2 + info["num_cues"]][1:] = [2.0, -3.0]
    D = [np.full(b.shape[0], 1 / b.shape[0]) for b in env.B]
    D[0] = np.asarray(env.D[0])
    model = model_of(env, C, D)
    agent = pymdp_agent(model)
    obs = [int(np.asarray(o).ravel()[0]) for o in init_obs]
    qs_theirs = agent.infer_states([jnp.asarray([[o]]) for o in obs], agent.D)
    qs = aif.infer_states(model, obs, model.D, aif.FixedPoint.pymdp())
    for horizon in (3, 1):
        q_theirs, _ = si_policy_search(horizon=horizon, entropy_stop_threshold=0.0, gamma=5)(agent, qs_theirs,
                                                                                            jr.PRNGKey(0))
        plan = SophisticatedInference.pymdp(horizon, entropy_stop_threshold=0.0, gamma=5.0).plan(model, qs)
        q_ours = aif.policy_posterior(plan.G, None, 5.0)  # the search's q(u) = softmax(-gamma G)
        q_theirs = np.asarray(q_theirs)[0, : len(q_ours)]
        rows.append(Row(demo, f"generalised T-maze, horizon {horizon}: q(u) at the start", short(q_ours),
                        short(q_theirs), max_diff(q_ours, q_theirs)))
    return rows


def mcts(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    import jax.random as jr

    demo, rows = "mcts", []
    # mcts_graph_world.ipynb: the agent at 0 (nodes 1, 2, 3 next to it), the object believed at 4 (next to 3)
    _, model = graph_world(1.0, 10.0)
    agent = pymdp_agent(model)
    num_actions = model.num_controls[0]
    settings = dict(options=aif.EFEOptions.pymdp(), inference=aif.FixedPoint.pymdp(), observation_prune_threshold=0.0)
    # A budget that covers the tree makes the search exhaustive: sophisticated inference's values with nothing pruned.
    # Depth 2 (depth 3 has 129416 nodes, past what pymdp's si_policy_search holds).
    exhaustive = MCTS(depth=2, simulations=10**6, **settings).plan(model, model.D)
    unpruned = dict(policy_prune_threshold=0.0, observation_prune_threshold=0.0, entropy_stop_threshold=0.0)
    full = SophisticatedInference.pymdp(2, max_branching=None, **unpruned).plan(model, model.D)
    rows.append(Row(demo, "graph world, depth 2: MCTS with a budget covering the tree, G from D (aif's SI beside it)",
                    short(exhaustive.G), short(full.G), None,
                    f"max |MCTS - SI| = {max_diff(exhaustive.G, full.G):.1e}: aif against aif"))
    # pymdp's SI from the same belief, its max_branching (10) capping the 14 outcome pairs below each move in both;
    # the unpruned tree holds 5,071 nodes (4,616 beliefs, 455 actions): pymdp's 5,000 would stop it short
    si = pymdp_si().si_policy_search(horizon=2, max_nodes=6000, max_branching=10, gamma=1.0, **unpruned)
    q_si, _ = si(agent, [jnp.expand_dims(d, 1) for d in agent.D], jr.PRNGKey(0))
    q_si = np.asarray(q_si)[0, :num_actions]
    capped = SophisticatedInference.pymdp(2, max_branching=10, **unpruned).plan(model, model.D)
    q_capped = aif.policy_posterior(capped.G, None, 1.0)
    rows.append(Row(demo, "graph world, depth 2: SI q(u) from D, max_branching 10 (pymdp: si_policy_search)",
                    short(q_capped), short(q_si), max_diff(q_capped, q_si),
                    ""))
    # the notebook's search: 1024 simulations to depth 3
    simulations = 64 if quick else 1024
    plan = MCTS(depth=3, simulations=simulations, **settings).plan(model, model.D)
    rows.append(Row(demo, f"graph world: MCTS, {simulations} simulations: q(u)", short(aif.policy_posterior(
        plan.G, None, 1.0)), "", None))
    note = ("pymdp hands the tree to mctx's Gumbel MuZero: sampled outcomes, and a step's value weighted by the "
            "probability of the one outcome sampled (its recurrent_fn's discount); aif.planning.MCTS backs up "
            "sophisticated inference's expectation over outcomes (PUCT selection). No shared number: the moves")
    if quick:  # compiling Gumbel MuZero's search takes minutes
        rows.append(Row(demo, f"graph world: first move ({simulations} simulations)", str(int(plan.action[0])),
                        "(not run with --quick)", None, note))
        return rows
    import mctx
    from pymdp.planning.mcts import make_aif_recurrent_fn

    root = mctx.RootFnOutput(prior_logits=jnp.log(agent.E), value=jnp.zeros(agent.batch_size), embedding=agent.D)
    out = mctx.gumbel_muzero_policy(agent, jr.PRNGKey(111), root, make_aif_recurrent_fn(),
                                    num_simulations=simulations, max_depth=3)
    weights = np.asarray(out.action_weights)[0]
    rows.append(Row(demo, f"graph world: first move ({simulations} simulations); pymdp's action weights",
                    f"{int(plan.action[0])}", f"{int(np.argmax(weights))} {short(weights)}", None, note))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# advanced/complex_action_dependency.ipynb

def action_description(s2_controls: list[str]) -> dict:
    return {"observations": {"o1": {"elements": ["A", "B", "C", "D"], "depends_on": ["s1"]}},
            "controls": {"c1": {"elements": ["up", "down"]}, "c2": {"elements": ["left", "right", "stay"]}},
            "states": {"s1": {"elements": ["A", "B", "C", "D"], "depends_on": ["s1"], "controlled_by": ["c1", "c2"]},
                       "s2": {"elements": ["A", "B", "C", "D"], "depends_on": ["s2"],
                              "controlled_by": s2_controls}}}


def action_dependency(quick: bool) -> list[Row]:
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp import distribution
    from pymdp.agent import Agent

    demo, rows = "action-dependency", []
    # s2 driven by c1, then by no control (``quick``: the first only)
    for s2_controls in [["c1"]] + ([] if quick else [[]]):
        description = action_description(s2_controls)
        tables = []
        for compile_model in (aif.compile_model, distribution.compile_model):
            model = compile_model(description)
            for x in "ABCD":
                model.A["o1"][x, x] = 1.0
            for i, state in enumerate(description["states"]):
                for control in itertools.product(*[description["controls"][c]["elements"]
                                                   for c in description["states"][state]["controlled_by"]]):
                    for to, frm in [("B", "A"), ("C", "B"), ("D", "C"), ("D", "D")]:
                        model.B[i][(to, frm, *control)] = 1.0
            tables.append(model)
        ours, theirs = tables
        agent = Agent(theirs.A, theirs.B, B_action_dependencies=theirs.B_action_dependencies,
                      num_controls=theirs.num_controls)
        # the notebook's dummy history: a random policy's action, a random observation
        action_key, obs_key = jr.split(jr.PRNGKey(0))
        action = agent.policies[jr.choice(action_key, len(agent.policies))]
        observation = [jr.randint(obs_key, (1, 1), 0, d) for d in agent.num_obs]
        prior = agent.update_empirical_prior(action, [jnp.expand_dims(d, 0) for d in agent.D])
        qs = agent.infer_states(observations=observation, empirical_prior=prior)
        q_theirs, _ = agent.infer_policies(qs)
        multi_theirs = np.asarray(agent.decode_multi_actions(agent.sample_action(q_theirs)))[0]

        model = ours.to_model()
        mine = aif.Agent.pymdp(model, actions=ours.actions)
        prior_ours = aif.predict(model, model.D, np.asarray(action)[0])  # the policy's one step, per factor
        mine.reset(prior=prior_ours)
        mine.step([int(np.asarray(o).ravel()[0]) for o in observation])
        what = f"s2 controlled by {s2_controls or 'nothing'}"
        rows.append(Row(demo, f"{what}: flattened B", str([b.shape for b in model.B]),
                        str([tuple(b.shape[1:]) for b in agent.B]), max_diff(model.B, unbatch(agent.B))))
        rows.append(Row(demo, f"{what}: prior and posterior", short(mine.qs[0]), short(np.asarray(qs[0])[0, -1]),
                        max(max_diff(prior_ours, unbatch(prior)),
                            max_diff(mine.qs, [np.asarray(q)[0, -1] for q in qs]))))
        rows.append(Row(demo, f"{what}: q(pi) over {len(mine.policies)} joint actions", short(mine.q_pi),
                        short(q_theirs[0]), max_diff(mine.q_pi, q_theirs[0])))
        rows.append(Row(demo, f"{what}: action per control", str(mine.multi_action.tolist()),
                        str(multi_theirs.astype(int).tolist()), None,
                        "" if np.array_equal(mine.multi_action, multi_theirs) else "different actions"))
    return rows


DEMOS: dict[str, Callable[[bool], list[Row]]] = {
    "model-construction": model_construction, "inference-methods": inference_methods, "inductive": inductive,
    "inductive-gridworld": inductive_gridworld, "learning": learning, "sophisticated": sophisticated,
    "mcts": mcts, "action-dependency": action_dependency}


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short episodes, small batches, fewer settings")
    parser.add_argument("--demo", action="append", help=f"run only this demo (repeatable): {', '.join(DEMOS)}")
    args = parser.parse_args(argv)
    chosen = args.demo or list(DEMOS)
    unknown = [n for n in chosen if n not in DEMOS]
    if unknown:
        parser.error(f"unknown demo {unknown[0]!r}; choose from {list(DEMOS)}")
    jax64()
    rows: list[Row] = []
    print("| demo | quantity | aif | pymdp 1.0 | max abs diff | note |")
    print("|---|---|---|---|---:|---|")
    for name in chosen:
        t0 = time.perf_counter()
        for row in DEMOS[name](args.quick):
            rows.append(row)
            diff = "" if row.diff is None else f"{row.diff:.1e}"
            print(f"| {row.demo} | {row.what} | {row.aif} | {row.pymdp} | {diff} | {row.note} |", flush=True)
        print(f"| {name} | (time, both libraries, with pymdp's compilation) | | | | {time.perf_counter() - t0:.1f} s |",
              flush=True)
    return rows


if __name__ == "__main__":
    main()
