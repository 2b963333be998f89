"""pymdp 1.0's environments run by an aif.Agent and by pymdp 1.0's Agent, side by side.

    python examples/pymdp_envs.py                          # every environment, the demos' settings
    python examples/pymdp_envs.py --quick                  # short episodes, small horizons
    python examples/pymdp_envs.py --quick --env tmaze      # one environment (repeat --env for more)

Each environment of ``aif.envs`` that ports one of pymdp 1.0's (``SimplifiedTMaze``, ``PymdpTMaze`` = pymdp's
``TMaze``, ``GeneralizedTMaze``, ``GraphWorld``, ``CueChaining``), and ``GridWorld``, with the agent of the pymdp
demo that runs it (``env.generative_model()``, the demo's policy length, gamma and action selection):

1. pymdp 1.0: its ``Agent`` and ``pymdp.envs.rollout`` in pymdp's own environment class (a ``PymdpEnv`` of our
   arrays for ``GridWorld``), a batch of episodes, in float64.
2. The same episodes in aif: ``aif.Agent.pymdp`` (pymdp 1.0's inference and EFE, the same gamma and selection)
   reads pymdp's observations one by one. At each step its q(pi) is compared with pymdp's, and its action with
   the one pymdp took; where they differ (a tie broken the other way, or a sampled action) it continues from
   pymdp's action, so that both keep seeing the same world.
3. Episode statistics: each library runs its own episodes with its own random numbers (``aif.rollout`` in the
   ``aif.envs`` environment); the mean return per episode uses the environment's reward for both.

Then pymdp's knapsack demo: q(pi) of the 2**5 joint actions from ``aif.envs.knapsack`` beside pymdp's Agent with
``B_action_dependencies``, and the packing each picks beside the brute-force best.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import aif
from aif.envs import (
    CueChaining,
    GeneralizedTMaze,
    GraphWorld,
    GridWorld,
    PymdpTMaze,
    SimplifiedTMaze,
    connected_clusters,
    knapsack,
    maze_matrix,
)


def jax64():
    """JAX in float64, before pymdp builds anything: the comparisons are to rounding, not to float32."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


@dataclass
class Case:
    """One environment and its agent, in both libraries."""

    env: Any  # the aif.envs environment
    horizon: int  # policy length
    gamma: float
    stochastic: bool  # the demo's action selection
    pymdp_env: Callable[[], tuple[Any, Any]]  # -> (pymdp environment, env_params or None)
    options: list = field(default_factory=list)  # reset options of aif's episodes, one per pymdp batch entry


def simplified_tmaze(quick: bool) -> Case:
    """examples/experimental/sophisticated_inference/si_tmaze_SIvalidation.ipynb, its vanilla agent."""
    from pymdp import envs

    settings = dict(reward_condition=0, cue_validity=0.95, reward_probability=1.0, dependent_outcomes=True)
    return Case(SimplifiedTMaze(**settings), 2, 3.0, False, lambda: (envs.SimplifiedTMaze(**settings), None))


def tmaze(quick: bool) -> Case:
    """examples/envs/tmaze_demo.ipynb, part 1 (pymdp's Agent defaults: gamma = 1, deterministic)."""
    from pymdp import envs

    settings = dict(reward_probability=1.0, punishment_probability=1.0, cue_validity=1.0, dependent_outcomes=False)
    return Case(PymdpTMaze(**settings), 2, 1.0, False, lambda: (envs.TMaze(**settings), None))


def generalized_tmaze(quick: bool) -> Case:
    """examples/envs/generalized_tmaze_demo.ipynb: the reward cells drawn from a split of PRNGKey(0), a horizon
    of 5 (3125 policies), gamma = 4, sampled actions; ``quick``: the 3x3 maze and a horizon of 2."""
    import jax.random as jr
    from pymdp.envs.generalized_tmaze import GeneralizedTMazeEnv, parse_maze

    maze = maze_matrix(small=quick)
    info = parse_maze(maze, jr.split(jr.PRNGKey(0))[1])
    env = GeneralizedTMaze(maze, reward_locations=np.asarray(info["reward_locations"]))
    return Case(env, 2 if quick else 5, 4.0, True, lambda: (GeneralizedTMazeEnv(info), None))


def graph_world(quick: bool) -> Case:
    """examples/envs/graph_worlds_demo.ipynb: two episodes, the object at 3 and 5, the agent at 0 and 1."""
    import jax.random as jr
    import networkx as nx
    from pymdp import envs

    edges, _ = connected_clusters(3, 2)
    objects, agents = [3, 5], [0, 1]

    def theirs():
        graph = nx.Graph(edges)
        env = envs.GraphEnv(graph)
        return env, env.generate_env_params(graph, jr.PRNGKey(0), objects, agents)

    options = [{"object_location": o, "agent_location": a} for o, a in zip(objects, agents, strict=True)]
    return Case(GraphWorld(edges), 2, 1.0, False, theirs, options)


def cue_chaining(quick: bool) -> Case:
    """examples/envs/cue_chaining_demo.ipynb (policy_len 4; ``quick``: 2)."""
    from pymdp import envs

    return Case(CueChaining(), 2 if quick else 4, 1.0, False, lambda: (envs.CueChainingEnv(), None))


def grid_world(quick: bool) -> Case:
    """aif's GridWorld (pymdp's own GridWorld orders its actions differently): pymdp runs a PymdpEnv of its arrays."""
    import jax.numpy as jnp
    from pymdp.envs.env import make

    env = GridWorld((4, 4), start=(0, 0), goals=[(3, 3)], walls=[(1, 1), (2, 1)], terminate_at_goal=False)
    arrays = [[jnp.asarray(x) for x in xs] for xs in (env.A, env.B, env.D)]
    return Case(env, 2 if quick else 4, 1.0, False,
                lambda: (make(*arrays, env.A_dependencies, env.B_dependencies)[0], None))


CASES = {"simplified-tmaze": simplified_tmaze, "tmaze": tmaze, "generalized-tmaze": generalized_tmaze,
         "graph-world": graph_world, "cue-chaining": cue_chaining, "grid-world": grid_world}


def pymdp_episodes(case: Case, model: aif.GenerativeModel, steps: int, batch: int, seed: int) -> dict:
    """pymdp 1.0's Agent and rollout: observations, actions (T + 1 of each), q(pi) (B, T + 1, P), states."""
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp.agent import Agent
    from pymdp.envs.rollout import rollout

    env, params = case.pymdp_env()
    if params is not None:
        batch = params["D"][0].shape[0]
    stack = lambda arrays: [jnp.broadcast_to(jnp.asarray(x), (batch, *x.shape)) for x in arrays]  # noqa: E731
    agent = Agent(stack(model.A), stack(model.B), stack(model.C), stack(model.D), A_dependencies=model.A_dependencies,
                  B_dependencies=model.B_dependencies, policy_len=case.horizon, gamma=case.gamma,
                  action_selection="stochastic" if case.stochastic else "deterministic", batch_size=batch)
    # rollout starts from an int32 "no action"; in float64 JAX the agent's actions are int64, and the scan
    # needs its carry to keep one type: start from an int64 one.
    start = {"action": -jnp.ones((batch, model.num_factors), dtype=jnp.int64)}
    _, info = rollout(agent, env, steps, jr.PRNGKey(seed), initial_carry=start, env_params=params)
    return {"obs": np.stack([np.asarray(o)[:, :, 0] for o in info["observation"]], -1).astype(int),
            "actions": np.asarray(info["action"]).astype(int), "q_pi": np.asarray(info["qpi"]),
            "states": np.stack([np.asarray(s) for s in info["env_state"]], -1).astype(int)}


def replay(agent: aif.Agent, observations: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aif's Agent on pymdp's observations ``(T, M)``, taking pymdp's actions ``(T, F)``: q(pi) ``(T, P)`` and
    whether its own choice was pymdp's ``(T,)``."""
    agent.reset()
    q_pi, same = [], []
    for obs, action in zip(observations, actions, strict=True):
        agent.infer_states(obs.tolist())
        q_pi.append(agent.infer_policies()[0])
        same.append(np.array_equal(agent.sample_action(), action))
        if not same[-1]:  # follow pymdp's action: the next prior is the one pymdp's agent carries
            agent.reset(prior=aif.predict(agent.model, agent.qs, action))
    return np.array(q_pi), np.array(same)


def aif_agent(case: Case, model: aif.GenerativeModel, seed: int) -> aif.Agent:
    """pymdp 1.0's agent in aif: its inference and EFE (``Agent.pymdp``), the demo's horizon, gamma and selection."""
    mode = "stochastic" if case.stochastic else "deterministic"
    return aif.Agent.pymdp(model, case.horizon, gamma=case.gamma, mode=mode, rng=np.random.default_rng(seed))


def compare(name: str, case: Case, steps: int, batch: int) -> None:
    """One row of the table: pymdp's episodes, aif's replay of them, and each library's own episodes."""
    env, model = case.env, case.env.generative_model()
    t0 = time.perf_counter()
    theirs = pymdp_episodes(case, model, steps, batch, seed=0)
    t_pymdp = time.perf_counter() - t0
    batch = theirs["obs"].shape[0]
    agent = aif_agent(case, model, seed=0)
    diff, same = 0.0, 0
    t0 = time.perf_counter()
    for b in range(batch):
        q_pi, agreed = replay(agent, theirs["obs"][b], theirs["actions"][b])
        diff = max(diff, float(np.abs(q_pi - theirs["q_pi"][b]).max()))
        same += int(agreed.sum())
    t_replay = time.perf_counter() - t0
    # returns over the first `steps` actions: rewards of the observations after them
    ret_pymdp = np.mean([sum(env.reward(tuple(s), o) for s, o in zip(theirs["states"][b, 1:], theirs["obs"][b, 1:],
                                                                      strict=True)) for b in range(batch)])
    ret_aif = np.mean([aif.rollout(agent, env, steps, seed=b, options=case.options[b] if case.options else None)
                       .total_reward for b in range(batch)])
    print(f"| {name} | {model.num_states} | {case.horizon} ({len(agent.policies)}) | {batch} x {steps + 1} | "
          f"{diff:.1e} | {same}/{batch * (steps + 1)} | {ret_aif:+.2f} | {ret_pymdp:+.2f} | "
          f"{t_replay:.1f} s | {t_pymdp:.1f} s |", flush=True)


def compare_knapsack(num_items: int = 5, capacity: float = 20.0) -> None:
    """examples/envs/knapsack_demo.ipynb: pymdp builds its model from names and flattens the joint action."""
    import jax.nn as nn
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp import distribution
    from pymdp.agent import Agent

    key_w, key_r = jr.split(jr.PRNGKey(0))
    weights = np.asarray(capacity / num_items + jr.uniform(key_w, (num_items,), minval=0.0, maxval=5.0))
    values = np.asarray(jr.uniform(key_r, (num_items,), minval=0.0, maxval=1.0))
    ours = knapsack(weights, values, capacity)

    # The demo's model, cell by cell.
    states = {f"s_{i}": {"elements": ["not enclude", "include"], "depends_on": [f"s_{i}"],
                         "controlled_by": [f"a_{i}"]} for i in range(num_items)}
    states["z"] = {"elements": ["not violated", "violated"], "depends_on": ["z"],
                   "controlled_by": [f"a_{i}" for i in range(num_items)]}
    theirs = distribution.compile_model({
        "observations": {k: {"elements": v["elements"], "depends_on": [k]} for k, v in states.items()},
        "controls": {f"a_{i}": {"elements": ["not enclude", "include"]} for i in range(num_items)},
        "states": states})
    for a in theirs.A:
        a.data = np.eye(len(a.data))
    for i in range(num_items):
        b = theirs.B[i].data
        for j in range(b.shape[1]):
            b[:, j] = np.eye(len(b))
        theirs.B[i].data = b
    total = np.sum((np.indices((2,) * num_items) == 1) * weights.reshape((-1,) + (1,) * num_items), axis=0)
    exceeded = np.where(total > capacity, 1, 0)
    theirs.B[-1].data = np.stack([np.stack((1 - exceeded, exceeded), axis=0)] * 2, axis=1)
    C = list(nn.softmax(np.stack([np.zeros_like(values), values], axis=-1), axis=-1)) + [np.array([1.0, 0.0])]
    agent = Agent(theirs.A, theirs.B, C, B_action_dependencies=theirs.B_action_dependencies,
                  num_controls=theirs.num_controls)
    q_theirs, _ = agent.infer_policies([jnp.expand_dims(d, 0) for d in agent.D])

    # aif: the policy posterior of pymdp 1.0's EFE (raw C, gamma = 1) from the uniform D, as the demo scores it.
    G, _ = aif.expected_free_energy(ours.model, ours.model.D, ours.policies, options=aif.EFEOptions.pymdp())
    q_ours = aif.policy_posterior(G, None, 1.0)
    pick_ours = ours.items(ours.policies[np.argmax(q_ours), 0])
    pick_theirs = np.asarray(agent.decode_multi_actions(agent.sample_action(q_theirs, rng_key=jr.split(
        jr.PRNGKey(0), 1))))[0]
    print(f"\nknapsack ({num_items} items, capacity {capacity}): max |q(pi) aif - pymdp| = "
          f"{np.abs(q_ours - np.asarray(q_theirs[0])).max():.1e} over {len(q_ours)} joint actions")
    print(f"  packing: aif {pick_ours.tolist()}, pymdp {pick_theirs.astype(int).tolist()}, "
          f"brute force {ours.best().tolist()} (weights {np.round(weights, 2).tolist()}, "
          f"values {np.round(values, 2).tolist()})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 steps, 2 episodes, small horizons")
    parser.add_argument("--env", action="append", help="run only this environment (repeatable); 'knapsack' too")
    args = parser.parse_args(argv)
    jax64()
    steps, batch = (3, 2) if args.quick else (10, 8)
    chosen = args.env or [*CASES, "knapsack"]
    unknown = [n for n in chosen if n not in CASES and n != "knapsack"]
    if unknown:
        parser.error(f"unknown environment {unknown[0]!r}; choose from {[*CASES, 'knapsack']}")
    print("| environment | states | horizon (policies) | episodes x steps | max abs q(pi) diff | same action "
          "| mean return aif | mean return pymdp | aif replay time | pymdp rollout time (with compilation) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name in chosen:
        if name != "knapsack":
            compare(name, CASES[name](args.quick), steps, batch)
    if "knapsack" in chosen:
        compare_knapsack()


if __name__ == "__main__":
    main()
