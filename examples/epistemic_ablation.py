"""Does the learned EFE Q-function collapse onto one action as its epistemic weight grows? The grid world from images.

    python examples/epistemic_ablation.py                  # 3x3 grid, weights 0, 0.1, 1, 10, seeds 0-2
    python examples/epistemic_ablation.py --quick          # small settings, as in the tests

Champion et al. ("Deconstructing deep active inference") found that deep active-inference agents with a
learned critic collapsed onto a single action once the epistemic term entered the critic's target. Here the
critic is ``aif_deep.QFunction`` on the beliefs of a learned ``NeuralModel`` (the grid world of
``examples/gridworld_from_images.py``: a 3x3 grid seen as 8x8 binary images with 5% of the pixels flipped,
+1 at the bottom-right corner, where the episode ends). For every seed the model is learned once from random
walks; then, for every epistemic weight w, a Q-function is trained by temporal differences to

    G_phi(qs, a) <- g_w(qs, a) + discount * V_target(predict(qs, a)),
    g_w = -utility - w * state_info_gain,          V(qs) = -T ln sum_a exp(-G(qs, a) / T),

(``aif_deep.train_qfunction`` with ``weighted_targets`` below; the one-step terms come from
``aif_deep.evaluate_policies``, the image modality's information gain is its sampled estimate) on the same
pool of beliefs: the posteriors along the walks, one-hot beliefs and random mixtures. The Q-function then acts
alone, as an amortised one-step policy: beliefs are filtered from the images (``infer_states``, ``predict``)
and a ~ q(a | qs) = softmax(-gamma G_phi(qs, .)), from the same random start cells for every weight.

It prints, per weight (mean over seeds): the goal-reach rate, the mean steps of the episodes that reached
it, the mean policy entropy H[q(a | qs)], the entropy of the action frequencies pooled over all episodes
(ln 5 = 1.61 nats for uniform actions; 0 if one action is taken everywhere) and the largest share of one
action. Collapse would show as an action share near 1 and a pooled action entropy near 0.

The recorded results of the default command (3 seeds x 50 episodes per weight):
benchmarks/results/epistemic_ablation.md.
"""

import argparse
import os
import time

import numpy as np
import torch

import aif
import aif_deep
from aif.envs import AgentWrapper, GridWorld
from aif_deep.episodes import collect_random
from aif_deep.images import NoisyGridImages
from aif_deep.neural import Bernoulli, NeuralModel
from aif_deep.qfunction import QFunction, QSettings, belief_pool, train_qfunction
from aif_deep.training import TrainSettings, train_best_of

FLIP = 0.05
DISCOUNT = 0.9
ACTIONS = 5  # GridWorld: up, down, left, right, stay


def image_env(size, image, terminate_at_goal=True):
    return NoisyGridImages(AgentWrapper(GridWorld((size, size), terminate_at_goal=terminate_at_goal)),
                           (image, image), flip=FLIP)


def learn_model(size, image, walks, steps, tries, seed, progress):
    """A NeuralModel trained on random walks seen as images (as in examples/gridworld_from_images.py)."""
    buffer, _ = collect_random(image_env(size, image, terminate_at_goal=False), walks, 20,
                               np.random.default_rng(seed))
    model, _, _ = train_best_of(
        lambda k: NeuralModel([size * size], [ACTIONS], [Bernoulli((image, image))], reward_preference=4.0,
                              seed=seed + k),
        buffer, TrainSettings(steps=steps, batch_size=32, length=8, lr=1e-2, seed=seed, progress=progress),
        tries=tries)
    return model, buffer


def weighted_targets(model, weight, discount):
    """TD targets with g_w = -utility - w * state_info_gain: linear in w, so y_w = y_0 + w (y_1 - y_0) from the
    targets without and with the information gain (``aif_deep.td_targets``)."""
    def targets(target, qs):
        y0 = aif_deep.td_targets(target, model, qs, discount, terms=(aif.Utility(),))
        y1 = aif_deep.td_targets(target, model, qs, discount, terms=(aif.Utility(), aif.InfoGain()))
        return y0 + weight * (y1 - y0)
    return targets


def train_weighted_q(model, pool, weight, steps, seed, progress):
    """A QFunction trained by ``aif_deep.train_qfunction`` on g_w = -utility - w * state_info_gain; returns it and
    the mean of its last 50 squared TD errors."""
    qf = QFunction(model.num_states, model.num_controls, temperature=1.0, seed=seed)
    settings = QSettings(steps=steps, batch_size=64, lr=3e-3, discount=DISCOUNT, tau=0.05, seed=seed,
                         progress=progress)
    history = train_qfunction(qf, model, pool, settings, weighted_targets(model, weight, DISCOUNT))
    return qf, float(np.mean(history[-50:]))


def act_from_q(qf, model, size, image, starts, max_steps, gamma, seed):
    """Episodes acting from q(a | qs) = softmax(-gamma G_phi(qs, .)) alone: reached ``(E,)``, steps ``(E,)``,
    H[q(a | qs)] per step, action counts ``(A,)`` pooled over the episodes."""
    rng = np.random.default_rng(seed)
    reached, taken, entropies, counts = [], [], [], np.zeros(ACTIONS)
    for i, s in enumerate(starts):
        env = image_env(size, image)
        obs, _ = env.reset(seed=seed + i, options={"state": (int(s),)})
        prior, done, t = model.prior(), False, 0
        with torch.no_grad():
            while not done and t < max_steps:
                qs = aif_deep.infer_states(model, [torch.as_tensor(obs[0])], prior)
                p = torch.softmax(-gamma * qf(qs), -1).double().numpy()
                p /= p.sum()
                a = int(rng.choice(ACTIONS, p=p))
                entropies.append(float(-(p * np.log(np.clip(p, 1e-300, None))).sum()))
                counts[a] += 1
                obs, _, terminated, truncated, _ = env.step(np.array([a]))
                prior = aif_deep.predict(model, qs, torch.tensor([a]))
                done, t = terminated or truncated, t + 1
        reached.append(bool(terminated))
        taken.append(t)
    return np.array(reached), np.array(taken), np.array(entropies), counts


def _entropy(p):
    p = np.asarray(p, float) / np.sum(p)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 1.0, 10.0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per weight and seed")
    p.add_argument("--q-steps", type=int, default=1500, help="TD steps per Q-function")
    p.add_argument("--gamma", type=float, default=16.0, help="precision of q(a | qs) (aif_deep.Agent's default)")
    p.add_argument("--quick", action="store_true", help="small settings (for the tests)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    n, image = 3, 8
    walks, train_steps, tries = (40, 250, 1) if args.quick else (60, 600, 2)
    if args.quick:
        args.seeds, args.episodes, args.q_steps = min(args.seeds, 1), min(args.episodes, 8), min(args.q_steps, 200)
    progress = not args.no_progress and not args.quick
    grid = GridWorld((n, n))
    goal = grid.index(grid.goals[0])
    max_steps = 2 * int(grid.distances().max()) + 2

    start = time.perf_counter()
    rows = {w: [] for w in args.weights}
    for seed in range(args.seeds):
        model, buffer = learn_model(n, image, walks, train_steps, tries, seed, progress)
        rng = np.random.default_rng(seed)
        pool = belief_pool(model, buffer, rng)
        starts = rng.choice(np.delete(np.arange(n * n), goal), size=args.episodes)
        for w in args.weights:
            qf, td = train_weighted_q(model, pool, w, args.q_steps, seed, progress)
            reached, taken, H, counts = act_from_q(qf, model, n, image, starts, max_steps, args.gamma, seed)
            rows[w].append(dict(reach=reached.mean(), steps=taken[reached].mean() if reached.any() else np.nan,
                                Hq=H.mean(), Ha=_entropy(counts), share=counts.max() / counts.sum(), td=td,
                                counts=counts))
            print(f"  done: seed {seed}, w={w:g}: reached {reached.mean():.2f}, H[q(a|qs)] {H.mean():.3f}, "
                  f"action counts {counts.astype(int).tolist()}, last TD error {td:.4f}", flush=True)
    wall = time.perf_counter() - start

    print(f"{n}x{n} grid from {image}x{image} images, {args.seeds} seed(s) x {args.episodes} episodes from random "
          f"starts, at most {max_steps} steps; Q-function alone, gamma {args.gamma:g}, {args.q_steps} TD steps")
    print("  weight | reached | mean steps (reached) | H[q(a|qs)] | pooled action entropy | largest action share"
          " | last TD error   (means over seeds; entropies in nats, ln 5 = 1.609)")
    summary = {}
    for w, rs in rows.items():
        m = {k: float(np.nanmean([r[k] for r in rs])) for k in ("reach", "steps", "Hq", "Ha", "share", "td")}
        summary[w] = m
        print(f"  {w:6g} | {m['reach']:7.2f} | {m['steps']:20.2f} | {m['Hq']:10.3f} | {m['Ha']:21.3f} | "
              f"{m['share']:20.2f} | {m['td']:.4f}")
    print(f"wall time {wall:.0f} s ({os.cpu_count()} CPU cores, torch on the CPU, one thread)")
    return summary


if __name__ == "__main__":
    main()
