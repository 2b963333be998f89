"""Soak run: a long agent-environment loop with online learning of B, checked for drift and leaks.

    python benchmarks/soak.py --steps 100000          # the full run (a few minutes)
    python benchmarks/soak.py --steps 2000 --json     # the short run the tests use, as one JSON line

A 7x7 grid world with walls and slips whose transitions the agent does not know (``pB[0]`` uniform). At every
step the agent infers its state, updates its transition counts from the last transition with forgetting,
rebuilds B from the counts, scores its policies by expected free energy with the information gain about B,
and samples an action. Episodes end at the goal or after ``--episode-steps`` steps and start again; the
learned counts carry over. ``--learner agent`` (the default) uses the Agent's own online learning
(``aif.Agent(..., learning=aif.Learning(lr, forgetting, learn_A=False))``); ``--learner manual`` calls
``aif.learning.update_B`` in the loop instead (by default without a prior: forgetting towards zero, below).

Checked at every step: the posterior, q(pi), G and the counts are finite. Reported: the largest count (with
forgetting ``f`` and learning rate ``lr`` every count stays below ``max(prior) + lr / (1 - f)``), the
smallest, the memory traced by ``tracemalloc`` at the end of the warm-up and at checkpoints after it (live
memory, after a garbage collection, at the first episode boundary after each point; it should not grow), the
resident set size (RSS, from ``/proc/self/statm``) at the same points, and the wall time (tracemalloc makes
the loop about four times slower; ``--no-trace`` measures RSS only). Before the run, every (state, action) of
the environment is stepped once so that its lazily filled cache of column distributions does not count as
growth.

Forgetting. ``f * counts + lr * evidence`` (``update_B`` without ``prior=``, ``Learning(forget_to_prior=False)``)
lets a column the agent never updates (a wall cell, an action it stops taking) decay as ``f**t``. What stops it
at a tiny positive value rather than zero is the log guard of state inference: ``ln max(x, eps)`` leaves about
``eps`` of posterior mass on every state, and that mass, times the prior, is added back at each update. Counts
fell to about 1e-55 (``f = 0.99``, 100,000 steps), the novelty of such columns (``1/a0 - 1/a``) grows as
``f**-t``, and so does the parameter information gain of any policy that might enter them: the largest |G| was
about 1e6 after 1,500 steps and 6e15 after 5,000. The Agent's ``Learning`` therefore forgets towards the initial
counts by default (``forget_to_prior=True``), ``pB' = f pB + (1 - f) pB_prior + lr * evidence``, which keeps
every count at or above its prior; ``--learner manual`` does the same by hand with ``update_B(..., prior=)``.

Behaviour under forgetting. Forgetting caps the evidence a column holds at about ``lr / (1 - f)`` observations,
spread over the columns the agent visits, while a prior forgotten towards keeps its full weight: ``prior_count``
per next state is 49 pseudo-counts per column here, so columns stay near uniform and the agent keeps exploring.
20,000 steps, seed 0 (``--steps 20000 --no-trace``): ``--prior-count 1`` reached the goal in 0 of 100 episodes,
``--prior-count 0.05`` in 68 of 131, ``--forget-to-zero`` in 224 of 244 (largest |G| 9.8e15: the growing novelty).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc

import numpy as np

import aif
from aif.envs import GridWorld
from aif.learning import update_B

WALLS = ((1, 1), (1, 2), (1, 3), (3, 3), (3, 4), (3, 5), (5, 1), (5, 2))


def _rss():
    """Resident set size in bytes (Linux), or None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _memory(trace):
    """(bytes traced by tracemalloc or None, RSS bytes), after a collection: live memory, not garbage
    awaiting the cyclic collector."""
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] if trace else None), _rss()


def soak(steps=100_000, seed=0, forgetting=0.99, lr=1.0, learner="agent", warmup=None, checkpoints=10,
         trace=True, max_episode_steps=200, progress=False, prior_count=1.0, forget_to_prior=True) -> dict:
    """Run the loop for ``steps`` steps; returns the figures (see the module docstring).

    Args:
        steps: agent-environment steps in all (over as many episodes as it takes).
        seed: seeds the agent's generator and the environment.
        forgetting: ``f`` in ``update_B``; 1 means no forgetting.
        lr: learning rate of ``update_B``.
        learner: ``"agent"`` (the Agent's own online learning, ``aif.Learning``: forgetting towards the initial
            counts) or ``"manual"`` (``update_B`` in the loop, forgetting towards the prior counts).
        warmup: steps before the memory baseline is taken (at the next episode boundary);
            ``min(steps // 10, 5000)`` by default.
        checkpoints: memory samples taken after the warm-up, evenly spaced.
        trace: trace memory with ``tracemalloc`` (slower).
        max_episode_steps: an episode that has not reached the goal by then is restarted (0: never restart,
            one episode that continues at the goal: a continuing task).
        prior_count: the initial (uniform) count of every entry of ``pB[0]``.
        forget_to_prior: forget towards the initial counts (``True``) or towards zero (``False``).

    Returns:
        dict: ``steps``, ``episodes``, ``goals`` (episodes that reached the goal), ``wall_s``,
        ``steps_per_s``, ``max_count``, ``min_count``, ``count_bound``, ``max_abs_G`` (the largest |G| seen),
        ``nonfinite`` (steps with a non-finite value; the run stops at the first), ``error`` (the exception that
        stopped it, or None),
        ``memory_warmup``, ``memory_end``, ``memory_peak`` (bytes traced; None without ``trace``),
        ``rss_warmup``, ``rss_end`` (resident set size in bytes) and ``memory_checkpoints`` (``[step, traced
        bytes, RSS bytes]``).
    """
    if learner not in ("agent", "manual"):
        raise ValueError(f"learner must be 'agent' or 'manual', got {learner!r}")
    warmup = min(steps // 10, 5000) if warmup is None else int(warmup)
    continuing = max_episode_steps == 0
    env = GridWorld((7, 7), start=(0, 0), goals=[(6, 6)], walls=WALLS, slip=0.1, terminate_at_goal=not continuing)
    model = env.generative_model(learn_B=True, prior_count=prior_count)
    prior_pB = [p.copy() for p in model.pB]
    rng = np.random.default_rng(seed)
    learning = (aif.Learning(lr=lr, forgetting=forgetting, learn_A=False, learn_B=True, forget_to_prior=forget_to_prior)
                if learner == "agent" else None)
    agent = aif.Agent(model, policy_horizon=1, efe_terms=(aif.Utility(), aif.InfoGain(), aif.Novelty("B")),
                      selection=aif.Selection("stochastic"), rng=rng, learning=learning)
    count_bound = max(float(p.max()) for p in prior_pB) + (lr / (1.0 - forgetting) if forgetting < 1 else np.inf)

    marks = sorted({warmup + round(k * (steps - warmup) / checkpoints) for k in range(1, checkpoints + 1)})
    memory_checkpoints = []
    memory_warmup = rss_warmup = warmup_step = None
    error = None
    nonfinite = 0
    episodes = goals = 0
    max_count = max(float(p.max()) for p in model.pB)
    min_count = min(float(p.min()) for p in model.pB)
    max_abs_G = 0.0

    _visit_every_column(env)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    pB = model.pB
    obs, _ = env.reset(seed=seed)
    agent.reset()
    qs_prev = action_prev = None
    t_episode = 0
    episodes = 1
    step = 0
    try:
        for step in range(1, steps + 1):
            qs = agent.infer_states(list(obs))  # the Agent's own learning (if any) updates its model here
            if learner == "manual" and qs_prev is not None:
                pB = update_B(pB, qs, qs_prev, action_prev, lr=lr, forgetting=forgetting, factors=[0],
                              prior=prior_pB)
                agent.model = agent.model.replace(pB=pB, B=None)
            pB = agent.model.pB
            q_pi, G = agent.infer_policies()
            action = agent.sample_action()
            if not (all(np.isfinite(q).all() for q in qs) and np.isfinite(q_pi).all() and np.isfinite(G).all()
                    and np.isfinite(pB[0]).all()):
                nonfinite += 1
                break
            max_abs_G = max(max_abs_G, float(np.abs(G).max()))
            max_count = max(max_count, float(pB[0].max()))
            min_count = min(min_count, float(pB[0].min()))
            obs, _, terminated, truncated, _ = env.step(int(action[0]))
            qs_prev, action_prev = qs, action
            t_episode += 1
            boundary = continuing
            if terminated or truncated or (not continuing and t_episode >= max_episode_steps):
                goals += int(terminated)
                obs, _ = env.reset()
                agent.reset()
                qs_prev = action_prev = None
                t_episode = 0
                boundary = True
                if step < steps:
                    episodes += 1
            # Memory is sampled at the first episode boundary at or after each mark: within an episode the
            # agent's record of it (for learning) grows and is cleared at reset, which is not a leak.
            if boundary and warmup_step is None and step >= warmup:
                warmup_step = step
                memory_warmup, rss_warmup = _memory(trace)
                if trace:
                    tracemalloc.reset_peak()
            elif boundary and marks and step >= marks[0] and warmup_step is not None:
                while marks and step >= marks[0]:
                    marks.pop(0)
                memory_checkpoints.append([step, *_memory(trace)])
            if progress and step % 10_000 == 0:
                print(f"  step {step}: max count {max_count:.4g}, min count {min_count:.3g}", file=sys.stderr,
                      flush=True)
    except aif.AifError as err:
        error = f"{type(err).__name__} at step {step}: {err}"
    wall = time.perf_counter() - start
    if not continuing:
        agent.reset()  # the end of the last episode, as at the checkpoints
    memory_end, rss_end = _memory(trace)
    memory_peak = None
    if trace:
        memory_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return dict(steps=step, episodes=episodes, goals=goals, wall_s=wall, steps_per_s=step / wall, max_count=max_count,
                min_count=min_count, max_abs_G=max_abs_G, count_bound=count_bound, nonfinite=nonfinite, error=error,
                memory_warmup=memory_warmup, memory_end=memory_end, memory_peak=memory_peak,
                memory_checkpoints=memory_checkpoints, rss_warmup=rss_warmup, rss_end=rss_end, forgetting=forgetting,
                lr=lr, learner=learner, warmup=warmup, warmup_step=warmup_step, max_episode_steps=max_episode_steps)


def _visit_every_column(env):
    """Step once from every state with every action, so that the environment's lazily filled cache of column
    distributions is complete before the run and does not count as growth after the warm-up."""
    for s in range(env.num_states[0]):
        for u in range(env.action_space.n):
            env.reset(seed=0, options={"state": (s,)})
            env.step(u)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forgetting", type=float, default=0.99)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--learner", choices=("agent", "manual"), default="agent",
                        help="the Agent's own learning or update_B by hand (both forget towards the prior counts)")
    parser.add_argument("--episode-steps", type=int, default=200, help="restart an episode after this many steps "
                        "(0: one continuing episode, never reset)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--prior-count", type=float, default=1.0, help="initial count of every entry of pB")
    parser.add_argument("--forget-to-zero", action="store_true",
                        help="forget towards zero rather than towards the prior counts (agent learner)")
    parser.add_argument("--no-trace", action="store_true", help="do not trace memory (faster)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    out = soak(args.steps, args.seed, args.forgetting, args.lr, args.learner, args.warmup, trace=not args.no_trace,
               max_episode_steps=args.episode_steps, progress=not args.json, prior_count=args.prior_count,
               forget_to_prior=not args.forget_to_zero)
    if args.json:
        print(json.dumps(out))
        return 0 if out["error"] is None and out["nonfinite"] == 0 else 1
    kib = lambda b: "-" if b is None else f"{b / 1024:.1f} KiB"  # noqa: E731
    print(f"steps {out['steps']} ({out['episodes']} episodes, {out['goals']} reached the goal), "
          f"wall {out['wall_s']:.1f} s ({out['steps_per_s']:.0f} steps/s{'' if args.no_trace else ', traced'})")
    print(f"counts: max {out['max_count']:.6g} (bound {out['count_bound']:.6g}), min {out['min_count']:.3g}; "
          f"forgetting {out['forgetting']} ({out['learner']} learner), lr {out['lr']}")
    print(f"largest |G|: {out['max_abs_G']:.4g}; non-finite steps: {out['nonfinite']}; error: {out['error']}")
    if not args.no_trace:
        print(f"memory traced: {kib(out['memory_warmup'])} after the warm-up (step {out['warmup_step']}), "
              f"{kib(out['memory_end'])} at the end, peak {kib(out['memory_peak'])}")
    print(f"RSS: {kib(out['rss_warmup'])} after the warm-up, {kib(out['rss_end'])} at the end")
    print("checkpoints (step: traced, RSS): " + ", ".join(f"{s}: {kib(b)}, {kib(r)}"
                                                          for s, b, r in out["memory_checkpoints"]))
    return 0 if out["error"] is None and out["nonfinite"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
