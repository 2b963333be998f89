"""The T-maze from images: a neural agent goes to the cue first, because its learned networks say the cue informs.

    python examples/tmaze_from_images.py              # full settings (minutes on a CPU)
    python examples/tmaze_from_images.py --quick      # small settings, as in the tests
    python examples/tmaze_from_images.py --out tmaze.png

The task is ``aif.envs.TMaze`` as in pymdp's demo: the agent starts in the centre, one upper arm is baited
(reward with probability 0.98, loss otherwise), and the cue at the bottom tells which. The tabular agent
(``aif.Agent``, true model, policy horizon 2) goes to the cue, then to the baited arm: the cue tells the
context for sure (0.69 nats), an arm only through a reward that is right 98% of the time (0.60 nats).

The neural agent sees the maze through ``aif_deep.images.NoisyTMazeImages``: 9x9 binary images (the
location as a block of a T, and at the cue location a block on the side the cue points to, 5% of the pixels
flipped) beside the reward outcome as a categorical modality with the tabular C over it (the wrapper's
docstring says why the reward is not drawn). Its ``NeuralModel`` has two latent factors, location (4
classes) and context (2 classes), learned from random-action episodes by minimising the sequence VFE; no
label says which class is which location or context.

The tricks that make it learn (``KLWeight(5)``, ``DetachCarriedMessage()``, ``EncoderFlip(0.03)``; see
``aif_deep.training``) and the recorded results of this command over seeds 0-14, with and without them:
benchmarks/results/tmaze_from_images.md and benchmarks/results/training_tricks.md.

It prints: the training (one run; see ``SETTINGS``) and the latent accuracy (filtered beliefs'
classes matched to the true location, and to the true (location, context) once the context has been shown,
with the Hungarian algorithm); the learned transition's probability of keeping the context; then, for 100
trials each, the rate of going to the cue first and of a reward in the first arm entered, for the tabular
agent, the neural agent, and both without the epistemic term (``efe_terms=(aif.Utility(),)``): without it the
cue is worth nothing, the tabular agent stays in the centre (every policy ties), and the neural one's margin
of the cue over the arms is near zero, so small differences of its learned utilities decide its first move.
It also prints how far the first belief about the context is from 1/2: the centre shows no context, and the
neural agent bets on an arm when its encoder reads one anyway.
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.envs import AgentWrapper, TMaze  # noqa: E402
from aif.envs.tmaze import summarize_tmaze  # noqa: E402
from aif_deep.episodes import collect_episodes  # noqa: E402
from aif_deep.images import NoisyTMazeImages  # noqa: E402
from aif_deep.neural import Bernoulli, Categorical, NeuralModel  # noqa: E402
from aif_deep.training import DetachCarriedMessage, EncoderFlip, KLWeight, TrainSettings, match_classes, train_best_of  # noqa: E402

HORIZON = 2  # pymdp's T-maze demo
TRIAL_STEPS = 3  # cue, arm, and one more step
IMAGE_SHAPE = (9, 9)
FLIP = 0.05
EPISODE_STEPS = 8  # random actions per training episode (and per training window)
# Tricks (--kl-weight 5, DetachCarriedMessage, --encoder-flip 0.03): see aif_deep.training (without them
# the model reads a context into the pixel noise of the centre image and the agent bets on an arm). tries 1:
# the lowest VFE does not pick the best agent here (benchmarks/results/tmaze_from_images.md).
SETTINGS = {
    "full": dict(episodes=1000, steps=3000, lr=3e-3, tries=1, trials=100),
    "quick": dict(episodes=1000, steps=600, lr=1e-2, tries=1, trials=30),
}


def make_env(true_model):
    """The T-maze as images: observations ``(image (9, 9), reward index)``, actions ``(location, 0)``."""
    return NoisyTMazeImages(AgentWrapper.for_model(TMaze(), true_model), IMAGE_SHAPE, flip=FLIP)


def run_trials(agent, env, trials, seed, desc, progress=True):
    """``trials`` episodes of ``TRIAL_STEPS`` actions (the same loop for every agent): the T-maze summary, with
    ``start_context_gap``, the mean |q(context 0) - 1/2| after the first observation (it carries no evidence),
    and ``cue_margin``, the mean over trials of min G over arm-first policies minus min G over cue-first
    policies at the first step (nats; positive: the cue is preferred)."""
    locations, conditions, rewards, gaps, margins = [], [], [], [], []
    first = np.asarray(agent.policies)[:, 0, 0]  # each policy's first move
    for k in tqdm(range(trials), desc=desc, leave=False, disable=not progress):
        obs, info = env.reset(seed=seed + k)
        agent.reset()
        locs, rews = [info["state"][0]], []
        for t in range(TRIAL_STEPS):
            action = agent.step(obs)
            if t == 0:
                gaps.append(abs(float(agent.qs[1][0]) - 0.5))
                G = np.asarray(torch.as_tensor(agent.G).cpu(), dtype=float)
                margins.append(G[(first == 1) | (first == 2)].min() - G[first == 3].min())
            obs, reward, _, _, info = env.step(np.asarray(action))
            locs.append(info["state"][0])
            rews.append(reward)
        locations.append(locs)
        conditions.append(info["state"][1])
        rewards.append(rews)
    return {**summarize_tmaze(locations, conditions, rewards), "start_context_gap": float(np.mean(gaps)),
            "cue_margin": float(np.mean(margins))}


def filtered_beliefs(model, buffer):
    """The agent's beliefs along each stored episode (equal lengths): one ``(N, T + 1, S_f)`` array per factor."""
    steps = zip(*[e[0] for e in buffer.episodes], strict=True)
    obs = [torch.as_tensor(np.stack(o, 1)) for o in steps]  # (T + 1, N, ...)
    actions = torch.as_tensor(np.stack([e[1] for e in buffer.episodes], 1))  # (T, N, F)
    prior = [p.expand(obs[0].shape[1], -1) for p in model.prior()]
    out = []
    with torch.no_grad():
        for t in range(obs[0].shape[0]):
            qs = aif_deep.infer_states(model, [o[t] for o in obs], prior)
            out.append(qs)
            if t < actions.shape[0]:
                prior = aif_deep.predict(model, qs, actions[t])
    return [torch.stack(q, 1).numpy() for q in zip(*out, strict=True)]


def latent_accuracy(model, env, episodes, seed):
    """Filtered beliefs on fresh random episodes against the true states: ``(location accuracy, (location,
    context) accuracy at the steps after the cue or an arm has shown the context)``."""
    buffer, states = collect_episodes(env, episodes, EPISODE_STEPS, np.random.default_rng(seed))
    q_loc, q_ctx = filtered_beliefs(model, buffer)
    states = np.stack(states)  # (N, T + 1, 2)
    loc, ctx = states[..., 0], states[..., 1]
    shown = np.maximum.accumulate(loc != 0, axis=1)  # every location but the centre shows the context
    location_acc = match_classes(q_loc.argmax(-1).ravel(), loc.ravel(), 4)[0]
    joint_pred = q_loc.argmax(-1) * 2 + q_ctx.argmax(-1)
    joint_acc = match_classes(joint_pred[shown], (loc * 2 + ctx)[shown], 8)[0]
    return location_acc, joint_acc


def learn_neural_model(true_model, s, seed, progress=True):
    """Random-action episodes seen as images, and the best of ``s["tries"]`` NeuralModels trained on them."""
    rng = np.random.default_rng(seed)
    buffer, _ = collect_episodes(make_env(true_model), s["episodes"], EPISODE_STEPS, rng)
    C = [None, torch.tensor(true_model.C[1], dtype=torch.get_default_dtype())]  # the tabular C over rewards (a copy)
    t0 = time.perf_counter()
    model, result, vfes = train_best_of(
        lambda k: NeuralModel([4, 2], [4, 1], [Bernoulli(IMAGE_SHAPE), Categorical(3)], C=C, info_gain_samples=256,
                              seed=seed + k),
        buffer, TrainSettings(steps=s["steps"], batch_size=32, length=EPISODE_STEPS, lr=s["lr"], seed=seed,
                              progress=progress),
        tries=s["tries"], tricks=s["tricks"])
    seconds = time.perf_counter() - t0
    location_acc, joint_acc = latent_accuracy(model, make_env(true_model), 200, seed + 1000)
    keep = model.tables()["B"][1][..., 0]  # (2, 4, 2): p(context' | location, context)
    keep_p = float(torch.stack([keep[c, :, c] for c in range(2)]).min())
    print(f"neural model: {s['tries']} x {result.step} steps on {len(buffer)} episodes in {seconds:.0f} s, VFE per "
          f"step {', '.join(f'{v:.2f}' for v in vfes)} nats; latent accuracy: location {location_acc:.3f}, "
          f"(location, context) once shown {joint_acc:.3f}; p(context kept) >= {keep_p:.3f}")
    return model, {"location": location_acc, "joint": joint_acc, "keep_context": keep_p, "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small training run (for the tests)")
    parser.add_argument("--out", default=None, help="where to save the figure (default: not saved)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kl-weight", type=float, default=5.0, help="KLWeight trick (1: the plain VFE)")
    parser.add_argument("--encoder-flip", type=float, default=0.03, help="EncoderFlip trick (0: none)")
    parser.add_argument("--no-detach", action="store_true", help="without the DetachCarriedMessage trick")
    args = parser.parse_args(argv)
    s = dict(SETTINGS["quick" if args.quick else "full"])
    s["tricks"] = ((KLWeight(args.kl_weight),) + (() if args.no_detach else (DetachCarriedMessage(),))
                   + ((EncoderFlip(args.encoder_flip),) if args.encoder_flip else ()))
    t0 = time.perf_counter()
    true_model = TMaze().generative_model()
    model, accuracy = learn_neural_model(true_model, s, args.seed, progress=not args.quick)

    agents = {
        "tabular": lambda terms: (aif.Agent(true_model, policy_horizon=HORIZON, efe_terms=terms),
                                  AgentWrapper.for_model(TMaze(), true_model)),
        "neural (images)": lambda terms: (aif_deep.Agent(model, policy_horizon=HORIZON, efe_terms=terms),
                                          make_env(true_model)),
    }
    results = {}
    with torch.no_grad():
        for terms, label in (((aif.Utility(), aif.InfoGain()), ""), ((aif.Utility(),), ", no info gain")):
            for name, build in agents.items():
                agent, env = build(terms)
                results[name + label] = run_trials(agent, env, s["trials"], 10_000 + args.seed, name + label,
                                                   progress=not args.quick)
    for name, r in results.items():
        print(f"{name:32s} cue first {r['cue_first_rate']:.2f}, reward in the first arm "
              f"{r['first_arm_reward_rate']:.2f} ({s['trials']} trials); first belief |q(context) - 1/2| "
              f"{r['start_context_gap']:.3f}; G(best arm-first) - G(best cue-first) {r['cue_margin']:+.3f} nats")
    print(f"wall time {time.perf_counter() - t0:.0f} s")

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    x = np.arange(len(results))
    ax.bar(x - 0.2, [r["cue_first_rate"] for r in results.values()], 0.4, label="cue first")
    ax.bar(x + 0.2, [r["first_arm_reward_rate"] for r in results.values()], 0.4, label="reward in first arm")
    ax.set_xticks(x)
    ax.set_xticklabels([n.replace(", ", "\n") for n in results], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"rate over {s['trials']} trials")
    ax.set_title(f"T-maze, horizon {HORIZON}: neural model from images (latent accuracy {accuracy['joint']:.2f})",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    if args.out:
        fig.savefig(args.out, dpi=120)
        print(f"saved {args.out}")
    plt.close(fig)
    return results, accuracy


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
