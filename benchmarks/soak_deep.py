"""Soak run of a batch of ``aif_deep`` agents: many agents, many steps, online learning, checked for drift and leaks.

    python benchmarks/soak_deep.py --agents 256 --steps 20000          # the full run (issue 14's figure)
    python benchmarks/soak_deep.py --agents 8 --steps 200 --json       # the short run the tests use

``N`` agents play the T-maze at once, one ``aif_deep.Agent`` with ``batch_shape=(N,)``. They do not know the
reward contingencies of the arms nor where their actions lead (``pA[1]`` and ``pB[0]`` start weak: ``TMaze.
generative_model(learn_A=True, learn_B=True, prior_count=0.1)``), and learn both online with forgetting towards
the prior (``aif.Learning(forgetting=0.99)``), each agent its own counts. The environment is the T-maze's own
generative process, sampled in torch for the whole batch: an episode is ``--episode-steps`` steps; then every
agent starts again in the centre with a new hidden condition (the learned counts carry over).

Checked at every step: the posterior, q(pi), G and the counts are finite (the run stops at the first that is
not). Reported: steps/s, the share of episodes that ended in the rewarded arm over the last tenth of the run,
the largest and smallest count, and the resident set size (``/proc/self/statm``) after the warm-up and at
checkpoints after it (it should not grow).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

import numpy as np
import torch

import aif
import aif_deep
from aif.envs import TMaze
from aif.envs.tmaze import tmaze_arrays


def _rss() -> int | None:
    """Resident set size in bytes (Linux), or None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _sample(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One index per row of the probabilities ``p (N, K)``."""
    return torch.multinomial(p, 1, generator=gen)[:, 0]


def soak(agents: int = 256, steps: int = 20_000, seed: int = 0, forgetting: float = 0.99, lr: float = 1.0,
         prior_count: float = 0.1, episode_steps: int = 3, checkpoints: int = 10, progress: bool = False) -> dict:
    """Run ``agents`` agents for ``steps`` steps each; returns the figures (see the module docstring)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = TMaze().generative_model(learn_A=True, learn_B=True, prior_count=prior_count)
    tmodel = aif_deep.TabularModel.from_aif(model, device="cpu")
    learning = aif.Learning(lr=lr, forgetting=forgetting, learn_A=True, learn_B=True)
    agent = aif_deep.Agent(tmodel, policy_horizon=1, batch_shape=(agents,), learning=learning,
                           efe_terms=(aif.Utility(), aif.InfoGain(), aif.Novelty("A"), aif.Novelty("B")),
                           selection=aif.Selection("stochastic"), rng=gen)
    A, B, _ = tmaze_arrays()
    A = [torch.as_tensor(a, dtype=torch.float64) for a in A]    # (O_m, 4, 2)
    B0 = torch.as_tensor(B[0], dtype=torch.float64)              # (4, 4, 4): next location | location, move
    rows = torch.arange(agents)

    def observe(loc: torch.Tensor, cond: torch.Tensor) -> list:
        return [_sample(a[:, loc, cond].T, gen).numpy() for a in A]

    warmup = min(steps // 10, 2000)
    marks = sorted({warmup + round(k * (steps - warmup) / checkpoints) for k in range(1, checkpoints + 1)})
    memory: list = []
    rss_warmup = None
    nonfinite = 0
    rewarded = episodes_late = 0
    max_count, min_count = -np.inf, np.inf
    late = steps - steps // 10
    start = time.perf_counter()
    step = 0
    loc = cond = None
    for step in range(1, steps + 1):
        if (step - 1) % episode_steps == 0:
            agent.reset()
            loc = torch.zeros(agents, dtype=torch.long)
            cond = torch.randint(0, 2, (agents,), generator=gen)
        action = agent.step(observe(loc, cond))
        loc = _sample(B0[:, loc, action[:, 0]].T, gen)
        if step % episode_steps == 0 and step > late:  # the end of an episode in the last tenth: where is it?
            rewarded += int((loc == 1 + cond).sum())    # arm 1 rewards condition 0, arm 2 condition 1
            episodes_late += agents
        values = [*agent.qs, agent.q_pi, agent.G, *agent.model.pA, *agent.model.pB]
        if not all(bool(torch.isfinite(v).all()) for v in values):
            nonfinite += 1
            break
        counts = torch.cat([p.reshape(agents, -1) for p in (*agent.model.pA, *agent.model.pB)], 1)
        max_count, min_count = max(max_count, float(counts.max())), min(min_count, float(counts.min()))
        if step == warmup:
            gc.collect()
            rss_warmup = _rss()
        elif marks and step >= marks[0] and rss_warmup is not None:
            marks.pop(0)
            gc.collect()
            memory.append([step, _rss()])
            if progress:
                print(f"  step {step}: RSS {memory[-1][1] / 2**20:.1f} MiB, counts {min_count:.3g}..{max_count:.4g}",
                      file=sys.stderr, flush=True)
    del rows
    wall = time.perf_counter() - start
    gc.collect()
    return dict(agents=agents, steps=step, wall_s=wall, agent_steps_per_s=agents * step / wall,
                batch_steps_per_s=step / wall, nonfinite=nonfinite, rewarded_late=rewarded / max(episodes_late, 1),
                max_count=max_count, min_count=min_count, rss_warmup=rss_warmup, rss_end=_rss(),
                memory_checkpoints=memory, warmup=warmup, forgetting=forgetting, lr=lr, prior_count=prior_count,
                episode_steps=episode_steps, torch=torch.__version__, threads=torch.get_num_threads())


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forgetting", type=float, default=0.99)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--prior-count", type=float, default=0.1)
    parser.add_argument("--episode-steps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    out = soak(args.agents, args.steps, args.seed, args.forgetting, args.lr, args.prior_count, args.episode_steps,
               progress=not args.json)
    if args.json:
        print(json.dumps(out))
        return 0 if out["nonfinite"] == 0 else 1
    mib = lambda b: "-" if b is None else f"{b / 2**20:.1f} MiB"  # noqa: E731
    print(f"{out['agents']} agents x {out['steps']} steps in {out['wall_s']:.1f} s "
          f"({out['agent_steps_per_s']:.0f} agent-steps/s, {out['threads']} torch threads)")
    print(f"non-finite steps: {out['nonfinite']}; counts {out['min_count']:.3g} .. {out['max_count']:.4g}; "
          f"rewarded arm in the last tenth: {out['rewarded_late']:.1%} of episodes")
    print(f"RSS: {mib(out['rss_warmup'])} after the warm-up (step {out['warmup']}), {mib(out['rss_end'])} at the end")
    print("checkpoints (step: RSS): " + ", ".join(f"{s}: {mib(r)}" for s, r in out["memory_checkpoints"]))
    return 0 if out["nonfinite"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
