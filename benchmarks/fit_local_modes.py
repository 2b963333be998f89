"""A learning agent's (lr, forgetting) posterior with two modes: Laplace's Newton steps from the prior mean end in the
worse one for one subject of the T-maze learning study (issue 18; benchmarks/results/fit_recovery.md, fifth round).

    python benchmarks/fit_local_modes.py        # ~10 min of CPU: it simulates the study's 100 learners (seed 1)

The study's learners at ``--seed 1`` (examples/fit_recovery.py ``learning-reversals``, three moves per trial); the
script fits subject 86 (forgetting 0.9996, lr 1.69) by ``bayes.laplace`` (from the prior mean), runs Newton's method
from its true values, and prints the potential -ln p(choices, z) over a grid of the unconstrained (ln lr, logit f).
"""

import functools
import importlib.util
import pathlib

import numpy as np
import torch

from aif_deep import bayes, recovery

SUBJECT, SEED, N = 86, 1, 100


def main() -> None:
    torch.set_num_threads(1)
    path = pathlib.Path(__file__).parents[1] / "examples" / "fit_recovery.py"
    spec = importlib.util.spec_from_file_location("fit_recovery_example", path)
    fr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fr)
    rng = np.random.default_rng(SEED)  # the example's draws: the learners' truths first
    truths = {"lr": rng.uniform(0.2, 2.0, N), "forgetting": rng.uniform(0.6, 1.0, N)}
    learner = fr.learning_models()[0]
    env = functools.partial(fr.ReversingTMaze, 0.8, reversals=fr.TMAZE_REVERSALS)
    obs, act = recovery.simulate(learner, truths, env, 200, 3, np.random.default_rng([SEED, 0, 0]))
    like = learner.likelihood(obs, act).subjects([SUBJECT])
    flat = bayes._Flat(like, bayes.check_priors(like, learner.priors))
    print(f"subject {SUBJECT}: true lr {truths['lr'][SUBJECT]:.3f}, forgetting {truths['forgetting'][SUBJECT]:.5f}")
    post = bayes.laplace(like, learner.priors)
    print(f"laplace from the prior mean: lr {post.mode['lr'].item():.3f}, forgetting "
          f"{post.mode['forgetting'].item():.5f}, potential {flat.potential(post.info['z']).item():.1f}")
    truth = flat.join({k: torch.tensor([v[SUBJECT]]) for k, v in truths.items()})
    z = bayes._newton(flat, truth, 200, 1e-6)
    values, _ = flat.split(z)
    with torch.no_grad():
        print(f"Newton from the truth: lr {values['lr'].item():.3f}, forgetting {values['forgetting'].item():.5f}, "
              f"potential {flat.potential(z).item():.1f}")
        grid = (-2.0, -1.0, 0.0, 0.5, 1.0)
        print("potential; rows logit f, columns ln lr", grid)
        for zf in (0, 1, 2, 4, 6, 8, 10):
            row = [flat.potential(torch.tensor([[zl, zf]], dtype=torch.float64)).item() for zl in grid]
            print(f"{zf:>3}", " ".join(f"{u:7.1f}" for u in row))


if __name__ == "__main__":
    main()
