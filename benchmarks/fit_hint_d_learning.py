"""Can an ``aif.Agent`` learn the explore-exploit task's context prior (D), as the tutorial's agents learn ``d``?

    python benchmarks/fit_hint_d_learning.py

The left machine is the better one in 80% of trials; the agent starts from D = (1/2, 1/2) with counts pD[1] = (1, 1)
and learns D (lr 1, no forgetting) over 200 trials of two actions, online (what ``aif_deep.fit``'s choice likelihood
fits) or offline from smoothed beliefs (``Learning(online=False, smoothing=True)`` and ``learn()`` after each trial).
Online learning takes each trial's first posterior, held before the hint or a machine's outcome said anything about
the context, so it adds D itself; the smoothed first posterior carries what the trial told.
"""

import numpy as np

import aif
from aif.envs.explore_exploit import ExploreExploit


def main() -> None:
    env = ExploreExploit(0.8, 1.0, context_prob=0.8)
    known = env.generative_model(reward_preference=5.0, loss_aversion=5.0, context_prob=0.5)
    model = aif.GenerativeModel(known.A, known.B, known.C, known.D, pD=[1e4 * known.D[0], np.ones(2)])
    for name, learning in (("online", aif.Learning(learn_A=False, learn_B=False, learn_D=True)),
                           ("offline, smoothed", aif.Learning(learn_A=False, learn_B=False, learn_D=True, online=False,
                                                              smoothing=True))):
        agent = aif.Agent(model, gamma=4.0, alpha=1.0, inference=aif.Exact(), learning=learning,
                          rng=np.random.default_rng(0))
        for k in range(200):
            aif.rollout(agent, env, 2, seed=k, progress=False)
            if not learning.online:
                agent.learn()
        agent.reset()
        print(f"{name}: pD[1] after 200 trials {np.round(agent.model.pD[1], 2)}, D[1] {np.round(agent.model.D[1], 3)}")


if __name__ == "__main__":
    main()
