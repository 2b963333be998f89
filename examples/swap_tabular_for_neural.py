"""One agent loop, three models: the true tabular model, the same model in PyTorch, and a learned neural model.

    python examples/swap_tabular_for_neural.py            # trains the neural model (under a minute on a CPU)
    python examples/swap_tabular_for_neural.py --quick    # small settings, as in the tests
    python examples/swap_tabular_for_neural.py --out swap.png

The task: a 3x3 grid world, start in the top-left corner, +1 on reaching the bottom-right corner (the
episode ends there). The loop (``aif.rollout`` in ``run``) is the same for the three agents; only the lines
that build the environment's view, the model and the agent differ:

1. ``aif.Agent`` with the true tabular model (the location is observed as an index; C prefers the goal).
2. ``aif_deep.Agent`` with that model lifted to torch (``aif_deep.TabularModel.from_aif``).
3. ``aif_deep.Agent`` with an ``aif_deep.NeuralModel`` learned from the grid rendered as noisy 8x8 binary
   images: encoder, transition network, Bernoulli decoder and a reward head (its preferences are over the
   reward), trained on random walks by minimising the sequence VFE (best of three runs by their VFE).

It prints, for each agent, the path, the steps to the goal and the reward, and for the neural model the
latent-location accuracy (classes matched to locations with the Hungarian algorithm); it plots the three
paths side by side.
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.envs import AgentWrapper, GridWorld  # noqa: E402
from aif_deep.episodes import collect_random  # noqa: E402
from aif_deep.images import NoisyGridImages  # noqa: E402
from aif_deep.neural import Bernoulli, NeuralModel  # noqa: E402
from aif_deep.training import TrainSettings, match_classes, train_best_of  # noqa: E402

SHAPE = (3, 3)
HORIZON = 4  # the goal is 4 moves from the start: the planner must see it
STEPS = 8


def run(agent, env, steps, seed):
    """The loop all three agents share (observe, infer, plan, act): ``aif.rollout``, whichever the agent and
    whether the environment shows indices or images. Returns the visited cells and the total reward."""
    trajectory = aif.rollout(agent, env, steps, seed=seed)
    return list(trajectory.states[:, 0]), trajectory.total_reward


def learn_neural_model(quick, seed=0):
    """Random walks seen as noisy images, and a NeuralModel trained on them; returns (model, accuracy)."""
    rng = np.random.default_rng(seed)
    data_env = NoisyGridImages(AgentWrapper(GridWorld(SHAPE, terminate_at_goal=False)), (8, 8), flip=0.05)
    buffer, states = collect_random(data_env, 20 if quick else 60, 20, rng)
    t0 = time.perf_counter()
    # Three runs, keeping the lowest VFE: latent clustering has local optima, and the VFE spots them.
    model, result, vfes = train_best_of(
        lambda k: NeuralModel([SHAPE[0] * SHAPE[1]], [5], [Bernoulli((8, 8))], reward_preference=4.0, seed=seed + k),
        buffer, TrainSettings(steps=250 if quick else 600, batch_size=32, length=8, lr=1e-2, seed=seed,
                              progress=not quick), tries=3)
    seconds = time.perf_counter() - t0
    images = torch.as_tensor(np.concatenate([e[0][0] for e in buffer.episodes]))
    true = np.concatenate(states)
    with torch.no_grad():
        pred = model.messages([images])[0].argmax(-1).numpy()
    accuracy, _, _ = match_classes(pred, true, model.num_states[0])
    print(f"neural model: 3 x {result.step} steps in {seconds:.1f} s, VFE per step of each run "
          f"{', '.join(f'{v:.2f}' for v in vfes)} nats; latent-location accuracy of the best {accuracy:.3f}")
    return model, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small training run (for the tests)")
    parser.add_argument("--out", default=None, help="where to save the figure (default: not saved)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    task = GridWorld(SHAPE)
    true_model = task.generative_model(preference="goal", goal_preference=4.0)

    runs = {}
    with torch.no_grad():
        # 1. aif.Agent with the true tabular model
        env = AgentWrapper(GridWorld(SHAPE))
        agent = aif.Agent(true_model, policy_horizon=HORIZON)
        runs["aif.Agent, true model"] = run(agent, env, STEPS, args.seed)

        # 2. aif_deep.Agent with the tabular model lifted to torch
        env = AgentWrapper(GridWorld(SHAPE))
        agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(true_model, device="cpu"), policy_horizon=HORIZON)
        runs["aif_deep.Agent, tabular"] = run(agent, env, STEPS, args.seed)

    # 3. aif_deep.Agent with a neural model learned from noisy images
    model, accuracy = learn_neural_model(args.quick, args.seed)
    with torch.no_grad():
        env = NoisyGridImages(AgentWrapper(GridWorld(SHAPE)), (8, 8), flip=0.05)
        agent = aif_deep.Agent(model, policy_horizon=HORIZON)
        runs["aif_deep.Agent, neural (images)"] = run(agent, env, STEPS, args.seed)

    for name, (locations, total) in runs.items():
        path = " -> ".join(str(divmod(int(s), SHAPE[1])) for s in locations)
        print(f"{name:34s} steps {len(locations) - 1}, reward {total:.0f}: {path}")

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    for ax, (name, (locations, total)) in zip(axes, runs.items(), strict=True):
        rc = np.array([divmod(int(s), SHAPE[1]) for s in locations])
        ax.plot(rc[:, 1], rc[:, 0], "o-", color="tab:blue")
        ax.plot(*task.start[::-1], "s", color="tab:green", ms=14, alpha=0.4, label="start")
        ax.plot(*task.goals[0][::-1], "*", color="tab:red", ms=18, alpha=0.6, label="goal")
        ax.set_xlim(-0.5, SHAPE[1] - 0.5)
        ax.set_ylim(SHAPE[0] - 0.5, -0.5)
        ax.set_xticks(range(SHAPE[1]))
        ax.set_yticks(range(SHAPE[0]))
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{name}\n{len(locations) - 1} steps, reward {total:.0f}", fontsize=9)
    axes[0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    if args.out:
        fig.savefig(args.out, dpi=120)
        print(f"saved {args.out}")
    plt.close(fig)
    return runs, accuracy


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
