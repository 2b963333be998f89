"""Reversal learning in SPM's T-maze: precision, simulated dopamine, habits and the learned context prior.

    python examples/spm_reversal.py                       # 32 trials, the context reverses at trial 17
    python examples/spm_reversal.py --habits 1            # the same with habits learned (SPM's e, eta = 1)
    python examples/spm_reversal.py --quick               # 4 trials, as in the tests
    python examples/spm_reversal.py --out some/where.png  # default: examples/output/spm_reversal.png

After SPM's DEM_demo_MDP_X (toolbox/DEM), its Figure 2 (``spm_MDP_VB_game``: choices, outcomes, precision and
dopamine over trials): the T-maze of that demo (start, left arm, right arm, cue; two hidden contexts saying which
arm is baited, with reward probability 0.98), ten policies over the trial's two moves (``MDP.V``), the agent of
``spm_MDP_VB_X`` (``aif.Agent`` with ``SequenceOptions.spm()``: policies over the whole trial, the precision
inferred under its prior ``beta = 1``), learning the context prior (``d``, ``Learning(learn_D=True)``) at the end
of every trial and, with ``--habits``, its habits (``e``, ``Learning(learn_E=True)``: the last q(pi) of each
trial). The context is the left arm for the first half of the trials and the right arm after (a reversal, where the
demo switches contexts in two trials);
rewards are worth 3 nats (the demo's 6). As in SPM, G includes the novelty of ``d`` (``Novelty("D")`` with
``spm_MDP_VB_X``'s halved weights); it changes no choice of seed 0.

What seed 0 shows (the printed lines): the agent checks the cue while its prior over contexts is flat, then goes
straight to the left arm once d is confident (trial 6 on). After the reversal it loses four times at the left arm
while d swings back, then checks the cue again and goes right. The losses leave no dip in the simulated dopamine
(``aif.dopamine``: 8 d(gamma)/dn + gamma/8 over the iterations of a trial): their traces equal those of the rewarded
straight-to-arm trials and the precision ends at its prior value 1 in both (notebook 10 reproduces this run).
With ``--habits 1`` the cue-then-left policy becomes a habit over the first sixteen trials: after the reversal the
precision halves (1.07 to 0.49) and the agent goes left even when the cue says right, the habit outweighing the
expected free energy at low precision (Friston et al. 2016, "Active inference and learning").
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import aif  # noqa: E402
from aif import SPM_EFE, SPM_TERMS  # noqa: E402
from aif.learning import WNORM_SPM12_TRIAL  # noqa: E402

START, LEFT, RIGHT, CUE = range(4)
REWARD = 3.0  # C for a reward (and minus it for a loss), nats
TERMS = (*SPM_TERMS, aif.Novelty("D", WNORM_SPM12_TRIAL))  # SPM12's G, with the novelty of the learned d


def tmaze():
    """DEM_demo_MDP_X's arrays (its MATLAB rows are the next state or outcome): A[0] where, and the cue (5 outcomes),
    A[1] neutral, reward, loss; B[0] stay (the cue location returns to start), go left, go right, go to the cue."""
    p = 0.98
    A0 = np.zeros((5, 4, 2))
    A0[:4, :, 0] = A0[:4, :, 1] = np.eye(4)
    A0[3:, CUE, 1] = [0, 1]  # at the cue: outcome 3 in the left context, 4 in the right one
    A1 = np.zeros((3, 4, 2))
    A1[0, [START, CUE], :] = 1
    A1[1:, LEFT, 0] = A1[1:, RIGHT, 1] = [p, 1 - p]
    A1[1:, RIGHT, 0] = A1[1:, LEFT, 1] = [1 - p, p]
    B0 = np.zeros((4, 4, 4))
    for u, goal in enumerate((START, LEFT, RIGHT, CUE)):
        for s in (START, CUE):
            B0[goal, s, u] = 1
        B0[LEFT, LEFT, u] = B0[RIGHT, RIGHT, u] = 1  # the arms are absorbing
    C0 = np.zeros(5)
    C0[START] = -1
    C1 = np.array([0.0, REWARD, -REWARD])
    V = np.zeros((10, 2, 2), dtype=int)  # ten policies over the two moves, the context factor never acted on
    V[:, :, 0] = [[0, 0], [0, 1], [0, 2], [0, 3], [1, 1], [2, 2], [3, 0], [3, 1], [3, 2], [3, 3]]
    return [A0, A1], [B0, np.eye(2)[:, :, None]], [C0, C1], V


def run(trials, seed, habits, out):
    rng = np.random.default_rng(seed)
    A, B, C, V = tmaze()
    pD = [np.array([128.0, 1, 1, 1]), np.array([2.0, 2.0])]  # DEM_demo_MDP_X's d
    pE = np.ones(len(V))
    learning = aif.Learning(online=False, learn_A=False, learn_B=False, learn_D=True, lr_D=1.0, learn_E=habits > 0,
                            lr_E=habits)
    T = 3
    gamma, dopamine, d_context, moves, rewards = [], [], [], [], []
    for trial in range(trials):
        context = 0 if trial < trials // 2 else 1  # the reversal
        model = aif.GenerativeModel(A=A, B=B, C=C, D=None, pD=pD, pE=pE)
        agent = aif.Agent(model, policies=V, alpha=512.0, inference=aif.MarginalMessagePassing.spm(),
                          inference_horizon=T, trial_length=T, efe_terms=TERMS, efe=SPM_EFE,
                          sequence=aif.SequenceOptions.spm(), learning=learning,
                          selection=aif.Selection("stochastic", "marginal"), rng=rng)
        where, path, won = START, [], 0
        for t in range(T):
            obs = [int(rng.choice(5, p=A[0][:, where, context])), int(rng.choice(3, p=A[1][:, where, context]))]
            won = {1: 1, 2: -1}.get(obs[1], won)
            agent.infer_states(obs)
            agent.infer_policies()
            if t < T - 1:
                action = agent.sample_action()
                where = int(np.flatnonzero(B[0][:, where, action[0]])[0])
                path.append(where)
        trace = np.concatenate(agent.gamma_trace)
        gamma.append(trace)
        dopamine.append(aif.dopamine(trace))
        learned = agent.learn()  # d, and e += eta u(:, T) with --habits, as SPM at the trial's end
        pD, pE = learned.pD, learned.pE
        d_context.append(pD[1][0] / pD[1].sum())
        moves.append(path)
        rewards.append(won)
        print(f"trial {trial + 1:2d}  context {'LR'[context]}  path {' -> '.join('SLRC'[s] for s in path):9s}  "
              f"outcome {'loss' if won < 0 else 'reward' if won > 0 else 'none':6s}  "
              f"precision {trace[-1]:.3f}  p(left context) {d_context[-1]:.2f}")

    fig, axes = plt.subplots(4, 1, figsize=(9, 10), constrained_layout=True)
    x = np.arange(1, trials + 1)
    cue = [CUE in p for p in moves]
    arm = ["L" if LEFT in p else "R" if RIGHT in p else "-" for p in moves]
    colours = ["tab:green" if r > 0 else "tab:red" if r < 0 else "tab:grey" for r in rewards]
    axes[0].scatter(x, [1 if a == "L" else 0 if a == "R" else 0.5 for a in arm], c=colours, s=60)
    axes[0].scatter(x[cue], np.full(sum(cue), 1.15), marker="v", c="k", s=20, label="cue visited")
    axes[0].axvline(trials // 2 + 0.5, ls=":", c="k")
    axes[0].set(yticks=[0, 0.5, 1], yticklabels=["right", "none", "left"], ylim=(-0.2, 1.3), xlabel="trial",
                title="Choices (green: reward, red: loss) and the reversal")
    axes[0].legend(loc="lower left")
    axes[1].plot(x, [g[-1] for g in gamma], "o-")
    axes[1].set(xlabel="trial", ylabel="gamma", title="Precision at the end of each trial (w)")
    n = len(gamma[0])
    axes[2].bar(np.arange(trials * n) / n + 1, np.concatenate(dopamine), width=1 / n)
    axes[2].set(xlabel="trial (iterations within)", ylabel="dn", title="Simulated dopamine (dn)")
    axes[3].plot(x, d_context, "o-")
    axes[3].set(xlabel="trial", ylabel="p(left context)", ylim=(0, 1), title="Learned prior over contexts (d)")
    fig.suptitle("After SPM's DEM_demo_MDP_X, Figure 2 (spm_MDP_VB_game): T-maze with a reversal")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--habits", type=float, default=0.0, help="habit learning rate (SPM's eta; 0: no habits)")
    parser.add_argument("--quick", action="store_true", help="4 trials")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "output" / "spm_reversal.png")
    args = parser.parse_args()
    run(4 if args.quick else args.trials, args.seed, args.habits, args.out)


if __name__ == "__main__":
    main()
