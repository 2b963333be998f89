"""Parameter and model recovery on the T-maze and the two-armed bandit, Bayesian (Laplace) and on Ray.

    python examples/fit_recovery.py --quick                                   # a few subjects: a smoke test
    python examples/fit_recovery.py --subjects 100 --trials 200 --chunk 100   # the issue's size
    python examples/fit_recovery.py --studies bandit --subjects 30 --pulls 200 --chunk 30
    python examples/fit_recovery.py --ray                                     # the tasks on local Ray workers
    python examples/fit_recovery.py --studies bandit-hint --subjects 100 --trials 200 --chunk 100 --posterior nuts
    python examples/fit_recovery.py --studies bandit-hint --subjects 100 --trials 200 --chunk 100   # ~1 min of CPU
    python examples/fit_recovery.py --studies learning-reversals,bandit,bandit-preferences --subjects 100 \
        --trials 200 --pulls 200 --chunk 100 --save fit                       # + fit_<study>.npz of the estimates

The studies, each one call of ``aif_deep.recovery.recover`` (simulate with ``aif.Agent``, fit every candidate model
by Laplace, report correlations, coverage of the 90% intervals and the confusion matrix of highest evidence):

1. ``epistemic``: agents with policy precision gamma ~ U(1, 16) and preference strength r ~ U(1, 6)
   (C[reward] = r * [0, 1, -1]), scoring policies by utility and information gain (EFE), or by utility alone.
   Both models fit gamma and r; model recovery asks which scoring the choices came from. The maze pays off with
   p = 0.6, the agents sample with action precision alpha = 0.5 (known) and make three moves per trial (cue, arm,
   one more), the learning study's design: with deterministic choices gamma and r cannot be told apart, and with
   examples/fit_tmaze_parameters.py's alpha = 0.25 and two moves agents of low strength choose nearly at random
   (r(strength) 0.886 / 0.881 / 0.863 on three draws of 100 x 200 subjects, against 0.924 / 0.938 / 0.942 here;
   ``benchmarks/results/fit_recovery.md``).
2. ``learning``: agents that do not know the arms' reward probabilities (pA[1], the T-maze's ``learn_A``) and learn
   them across trials with learning rate lr ~ U(0.2, 2) and forgetting ~ U(0.6, 1), against agents with the same
   prior that do not learn (fitting gamma). Model recovery: learning or not.
3. ``bandit``: the same learning (lr ~ U(0.2, 2), forgetting ~ U(0.6, 1)) on a two-armed bandit (0.8 / 0.2) whose
   arms swap at pulls 50, 100 and 150, one episode of ``--pulls`` pulls per subject: the reversals make the speed
   of forgetting visible in the choices. Candidates: EFE with the novelty of the arms' counts (parameter
   information gain), or utility alone, both learning. ``bandit-stationary``: the same without reversals.
4. ``learning-reversals``: the learning study in a T-maze whose contingencies reverse at trials 50, 100 and 150
   (``ReversingTMaze``: the baited arm pays with 0.2 instead of 0.8, so the cue points to the worse arm, until the
   next reversal), as the bandit's arms swap: the agents must re-learn, and the speed of forgetting shows. Three
   moves per trial (cue, arm, and one more from the arm: stay for another draw or leave), as in pymdp's T-maze demo
   whose agents act for several steps: the move after the arm's outcome is made on counts just updated, and shows
   how far lr moves them and how little has been forgotten; with two moves, agents that forget fast (f < 0.8)
   choose near their prior at the next visit of an arm and their forgetting was not recovered (r 0.24 within f <
   0.8, 0.795 in all: ``benchmarks/results/fit_recovery.md``).
5. ``bandit-preferences``: gamma ~ U(1, 16) and preference strength r ~ U(1, 6) (C[1] = r * [0, 1, 0]) on the
   bandit with reversals, alpha = 0.25 (the epistemic study's ranges, priors and action precision), learning
   with lr = 1 and forgetting = 0.8 known; EFE with novelty against utility alone, both fitting gamma and r.
6. ``bandit-hint``: the explore-exploit task of Smith, Friston & Whyte (2022; ``aif.envs.explore_exploit``): two
   slot machines (the better one, drawn per trial, wins with p = 0.8) and a hint that names the better one. gamma
   ~ U(1, 16) and the reward preference r ~ U(1, 6) (the tutorial's ``rs``: C[1] = [0, -la, r] over null, loss,
   win, its loss aversion la known), alpha = 0.25 known, the epistemic study's priors; two actions per trial (hint
   or machine, then machine); EFE (utility and information gain about the context) against utility alone, both
   fitting gamma and r. The hint's information gain (ln 2 nats) does not scale with r, and the known loss aversion
   makes the machines' utilities (r - la) / 2 (chosen blind) and 0.6 (r + la) (better minus worse, after the hint)
   rather than multiples of r: the choices fix gamma and r apart, where the bandit's pulls fix their product.
   la = 5 (``--loss-aversion``): choosing blind is worth more than the hint (0.5 (r - la) + 0.19 against 0.69 nats)
   when r > la + 1, and those agents rarely ask for it, so that their choices fix little but gamma x (r - la) (the
   posterior ridge returns there: measured in benchmarks/results/fit_recovery.md); la = 5 keeps every r of U(1, 6)
   below that line, where the tutorial's la = 1 leaves four fifths of them above it.
7. ``bandit-hint-learning``: the same task for agents that do not know the machines' payoffs (pA[1], prior count
   1: 50/50 at both machines in both contexts) and learn them across trials with lr ~ U(0.2, 2) and forgetting ~
   U(0.6, 1) (gamma = 4, alpha = 1 and r = la = 5 known: before it learns, a machine is worth no more than
   waiting), in blocks whose payoffs reverse at trials 50, 100 and 150 (the machine the hint names then wins with
   0.2), against agents with the same prior that do not learn (fitting gamma); both score by utility and information
   gain. The task's ``end_state`` gives each trial a step after the machine, at which an agent that learns online
   takes in the machine's outcome. Three actions per trial.
8. ``bandit-hint-prior``: the tutorial's learning of the context prior (its ``d``): the left machine is the better
   one in 80% of trials, then 20%, 80%, 20% (from trials 50, 100, 150); agents that start from D = (1/2, 1/2) with
   counts (4, 4) learn it at each trial's end from the smoothed belief about the trial's context
   (``Learning(online=False, smoothing=True, learn_D=[1])``: the filtered first belief, held before the hint or a
   machine said anything, would teach nothing), with lr ~ U(0.2, 2) and forgetting ~ U(0.6, 1) (once per trial),
   gamma = 4, alpha = 1, r = la = 5 known; against agents that keep D (fitting gamma). Three actions per trial.
   Counts (1, 1) are swamped within a few trials by any lr >= 1, after which D's mean no longer depends on lr
   (r(lr) 0.36 within lr >= 1, 0.75 in all; 0.92 with counts (4, 4): ``benchmarks/results/fit_recovery.md``).
"""

import argparse
import functools
import time

import numpy as np
import pyro.distributions as dist
import torch

import aif
from aif.envs import Bandit, TMaze
from aif.envs.explore_exploit import ExploreExploit, explore_exploit_arrays
from aif.envs.tmaze import tmaze_arrays
from aif_deep import TabularModel
from aif_deep.recovery import AgentModel, InProcess, Ray, recover

F64 = dict(dtype=torch.float64)
SHAPE = torch.tensor([0.0, 1.0, -1.0], **F64)  # C[1] = strength * [no reward, reward, loss]


def with_strength(r, model):
    """The model with each subject's preference strength ``r: (N,)`` in C[1]."""
    return model.replace(C=[model.C[0], r[:, None] * SHAPE, model.C[2]])


EPISTEMIC_ALPHA = 0.5


def epistemic_models():
    model = TabularModel.from_aif(TMaze(0.6).generative_model(), device="cpu")
    priors = {"gamma": dist.LogNormal(torch.tensor(np.log(5.0), **F64), 1.0),
              "strength": dist.Normal(torch.tensor(3.5, **F64), 2.5)}
    common = dict(alpha=EPISTEMIC_ALPHA, inference=aif.Exact(), custom={"strength": with_strength})
    return [AgentModel("EFE", model, priors, dict(common, efe_terms=(aif.efe.Utility(), aif.efe.InfoGain()))),
            AgentModel("utility only", model, priors, dict(common, efe_terms=(aif.efe.Utility(),)))]


class ReversingTMaze(TMaze):
    """A T-maze whose reward contingencies reverse at known trials: from trial ``r`` (counted from 0, one trial per
    ``reset``) of each of the ``reversals`` the baited arm pays with ``1 - reward_prob`` and the other with
    ``reward_prob`` (so the cue points to the worse arm), until the next. The reversed arrays are the episode's
    process (``reset(options={"A": ...})``); ``trial`` counts the resets."""

    def __init__(self, reward_prob: float = 0.8, cue_validity: float = 1.0, reversals=()) -> None:
        super().__init__(reward_prob, cue_validity)
        self.reversals = tuple(int(r) for r in reversals)
        if any(r < 1 for r in self.reversals) or (np.diff(self.reversals) <= 0).any():
            raise ValueError(f"reversals must be increasing trial indices >= 1, got {reversals!r}")
        self.reversed_A = tmaze_arrays(1.0 - self.reward_prob, self.cue_validity)[0]
        self.trial = -1

    def is_reversed(self, trial: int) -> bool:
        """Whether the contingencies are reversed in ``trial`` (an odd number of reversals at or before it)."""
        return sum(r <= trial for r in self.reversals) % 2 == 1

    def reset(self, *, seed=None, options=None):
        self.trial += 1
        options = {} if options is None else dict(options)
        if self.is_reversed(self.trial):
            options.setdefault("A", self.reversed_A)
        return super().reset(seed=seed, options=options)


TMAZE_REVERSALS = (50, 100, 150)


def learning_models():
    model = TabularModel.from_aif(TMaze(0.8).generative_model(learn_A=True, prior_count=1.0), device="cpu")
    common = dict(alpha=1.0, gamma=4.0, inference=aif.Exact())
    learner = AgentModel("learning", model, {"lr": dist.LogNormal(torch.tensor(-0.5, **F64), 1.0),
                                             "forgetting": dist.Beta(torch.tensor(3.0, **F64), 1.0)},
                         dict(common, learning=aif.Learning(learn_B=False)))
    static = AgentModel("not learning", model, {"gamma": dist.LogNormal(torch.tensor(np.log(4.0), **F64), 1.0)},
                        dict(common))
    return [learner, static]


BANDIT_PROBS, BANDIT_REVERSALS = (0.8, 0.2), (50, 100, 150)


def bandit_models(reversals=BANDIT_REVERSALS):
    """Two agents on the two-armed bandit that learn the arms' reward probabilities (pA[1], prior count 1) with
    learning rate lr and forgetting towards the prior, both fitted (gamma = 4, alpha = 1 and the reward preference
    C = [0, 2, 0] known): one scores pulls by utility and the novelty of the arms' counts (EFE with parameter
    information gain), the other by utility alone."""
    env = Bandit(BANDIT_PROBS, reversals=reversals)
    model = TabularModel.from_aif(env.generative_model(2.0, kind="counts", prior_count=1.0), device="cpu")
    priors = {"lr": dist.LogNormal(torch.tensor(-0.5, **F64), 1.0),
              "forgetting": dist.Beta(torch.tensor(3.0, **F64), 1.0)}
    common = dict(alpha=1.0, gamma=4.0, inference=aif.Exact(), learning=aif.Learning(learn_A=[1], learn_B=False))
    return [AgentModel("EFE (novelty)", model, priors, dict(common, efe_terms=(aif.efe.Utility(), aif.efe.Novelty()))),
            AgentModel("utility only", model, priors, dict(common, efe_terms=(aif.efe.Utility(),)))]


BANDIT_SHAPE = torch.tensor([0.0, 1.0, 0.0], **F64)  # C[1] = strength * [null, reward, no reward]
BANDIT_KNOWN_LR, BANDIT_KNOWN_FORGETTING = 1.0, 0.8


def with_bandit_strength(r, model):
    """The bandit model with each subject's preference strength ``r: (N,)`` in C[1]."""
    return model.replace(C=[model.C[0], r[:, None] * BANDIT_SHAPE])


def bandit_preference_models(reversals=BANDIT_REVERSALS):
    """Gamma and preference strength on the bandit: agents that learn the arms' probabilities (pA[1], prior count
    1) with lr and forgetting known, alpha = 0.25 known, gamma and strength fitted with the epistemic study's
    priors; EFE with the novelty of the arms' counts, or utility alone."""
    env = Bandit(BANDIT_PROBS, reversals=reversals)
    model = TabularModel.from_aif(env.generative_model(1.0, kind="counts", prior_count=1.0), device="cpu")
    priors = {"gamma": dist.LogNormal(torch.tensor(np.log(5.0), **F64), 1.0),
              "strength": dist.Normal(torch.tensor(3.5, **F64), 2.5)}
    learning = aif.Learning(lr=BANDIT_KNOWN_LR, forgetting=BANDIT_KNOWN_FORGETTING, learn_A=[1], learn_B=False)
    common = dict(alpha=0.25, inference=aif.Exact(), learning=learning, custom={"strength": with_bandit_strength})
    return [AgentModel("EFE (novelty)", model, priors, dict(common, efe_terms=(aif.efe.Utility(), aif.efe.Novelty()))),
            AgentModel("utility only", model, priors, dict(common, efe_terms=(aif.efe.Utility(),)))]


HINT_WIN_PROB, HINT_LOSS_AVERSION = 0.8, 5.0


def with_reward_preference(r, model, loss_aversion=HINT_LOSS_AVERSION):
    """The explore-exploit model with each subject's reward preference ``r: (N,)`` in C[1] = [0, -loss_aversion, r]
    (null, loss, win)."""
    loss = torch.tensor([0.0, -loss_aversion, 0.0], **F64)
    win = torch.tensor([0.0, 0.0, 1.0], **F64)
    return model.replace(C=[model.C[0], loss + r[:, None] * win, model.C[2]])


def hint_models(win_prob=HINT_WIN_PROB, loss_aversion=HINT_LOSS_AVERSION, hint_accuracy=1.0):
    """The explore-exploit task's agents (Smith et al. 2022): gamma and the reward preference r fitted with the
    epistemic study's priors, the loss aversion and alpha = 0.25 known; EFE (utility and information gain about the
    context) or utility alone."""
    env = ExploreExploit(win_prob, hint_accuracy)
    model = TabularModel.from_aif(env.generative_model(loss_aversion=loss_aversion), device="cpu")
    priors = {"gamma": dist.LogNormal(torch.tensor(np.log(5.0), **F64), 1.0),
              "strength": dist.Normal(torch.tensor(3.5, **F64), 2.5)}
    strength = functools.partial(with_reward_preference, loss_aversion=loss_aversion)
    common = dict(alpha=0.25, inference=aif.Exact(), custom={"strength": strength})
    return [AgentModel("EFE", model, priors, dict(common, efe_terms=(aif.efe.Utility(), aif.efe.InfoGain()))),
            AgentModel("utility only", model, priors, dict(common, efe_terms=(aif.efe.Utility(),)))]


class ReversingExploreExploit(ExploreExploit):
    """The explore-exploit task whose payoffs reverse at known trials (one trial per ``reset``): from trial ``r`` of
    each of the ``reversals`` the machine the hint names wins with ``1 - win_prob`` and the other with ``win_prob``,
    until the next (``ReversingTMaze``'s reversals; the reversed arrays are the episode's process)."""

    def __init__(self, win_prob: float = 0.8, hint_accuracy: float = 1.0, reversals=(), end_state: bool = True):
        super().__init__(win_prob, hint_accuracy, end_state=end_state)
        self.reversals = tuple(int(r) for r in reversals)
        if any(r < 1 for r in self.reversals) or (np.diff(self.reversals) <= 0).any():
            raise ValueError(f"reversals must be increasing trial indices >= 1, got {reversals!r}")
        self.reversed_A = explore_exploit_arrays(1.0 - win_prob, hint_accuracy, end_state=end_state)[0]
        self.trial = -1

    def reset(self, *, seed=None, options=None):
        self.trial += 1
        options = {} if options is None else dict(options)
        if sum(r <= self.trial for r in self.reversals) % 2 == 1:
            options.setdefault("A", self.reversed_A)
        return super().reset(seed=seed, options=options)


HINT_REVERSALS, HINT_PRIOR_COUNT = (50, 100, 150), 1.0


def hint_learning_models():
    """Agents in the explore-exploit task that learn the machines' payoffs (pA[1], prior count 1) with lr and
    forgetting fitted, against agents with the same prior that do not learn (gamma fitted); gamma = 4, alpha = 1 (the
    learning T-maze's; 0.25 measured worse on 30 subjects: lr 0.70, forgetting 0.83 against 0.94, 0.95), r = loss
    aversion = 5 known, EFE with information gain."""
    env = ExploreExploit(HINT_WIN_PROB, end_state=True)
    arrays = env.generative_model(5.0, HINT_LOSS_AVERSION, learn_A=True, prior_count=HINT_PRIOR_COUNT)
    model = TabularModel.from_aif(arrays, device="cpu")
    common = dict(alpha=1.0, gamma=4.0, inference=aif.Exact(), efe_terms=(aif.efe.Utility(), aif.efe.InfoGain()))
    learner = AgentModel("learning", model, {"lr": dist.LogNormal(torch.tensor(-0.5, **F64), 1.0),
                                             "forgetting": dist.Beta(torch.tensor(3.0, **F64), 1.0)},
                         dict(common, learning=aif.Learning(learn_A=[1], learn_B=False)))
    static = AgentModel("not learning", model, {"gamma": dist.LogNormal(torch.tensor(np.log(4.0), **F64), 1.0)},
                        dict(common))
    return [learner, static]


class ShiftingContextExploreExploit(ExploreExploit):
    """The explore-exploit task whose context prior shifts at known trials: the left machine is the better one with
    probability ``context_prob`` until the first of ``reversals``, then ``1 - context_prob``, and so on (one trial per
    ``reset``; the context is drawn from the reset's seed)."""

    def __init__(self, context_prob: float = 0.8, reversals=(), end_state: bool = True):
        super().__init__(HINT_WIN_PROB, 1.0, 0.5, end_state=end_state)
        self.left_prob = float(context_prob)
        self.reversals = tuple(int(r) for r in reversals)
        self.trial = -1

    def reset(self, *, seed=None, options=None):
        self.trial += 1
        options = {} if options is None else dict(options)
        p = self.left_prob if sum(r <= self.trial for r in self.reversals) % 2 == 0 else 1.0 - self.left_prob
        options.setdefault("context", int(np.random.default_rng([0 if seed is None else seed, 7]).random() >= p))
        return super().reset(seed=seed, options=options)


HINT_PRIOR_D_COUNT = 4.0


def hint_prior_models():
    """Agents in the explore-exploit task that learn the context prior D (pD[1] = (4, 4)) from each trial's smoothed
    belief, lr and forgetting fitted, against agents that keep D = (1/2, 1/2) (gamma fitted); gamma = 4, alpha = 1,
    r = la = 5 known, EFE with information gain."""
    arrays = ExploreExploit(HINT_WIN_PROB, end_state=True).generative_model(5.0, HINT_LOSS_AVERSION, context_prob=0.5)
    arrays = arrays.replace(pD=[1e4 * arrays.D[0], np.full(2, HINT_PRIOR_D_COUNT)])
    model = TabularModel.from_aif(arrays, device="cpu")
    common = dict(alpha=1.0, gamma=4.0, inference=aif.Exact(), efe_terms=(aif.efe.Utility(), aif.efe.InfoGain()))
    learning = aif.Learning(learn_A=False, learn_B=False, learn_D=[1], online=False, smoothing=True)
    learner = AgentModel("learning D", model, {"lr": dist.LogNormal(torch.tensor(-0.5, **F64), 1.0),
                                               "forgetting": dist.Beta(torch.tensor(3.0, **F64), 1.0)},
                         dict(common, learning=learning))
    static = AgentModel("not learning", model, {"gamma": dist.LogNormal(torch.tensor(np.log(4.0), **F64), 1.0)},
                        dict(common))
    return [learner, static]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=40, help="subjects per generating model")
    parser.add_argument("--trials", type=int, default=100, help="trials per subject")
    parser.add_argument("--steps", type=int, default=2, help="actions per trial (cue, then arm) of the learning "
                        "study (the others set their own)")
    parser.add_argument("--pulls", type=int, default=200, help="pulls per bandit subject (one episode)")
    parser.add_argument("--chunk", type=int, default=10, help="subjects per task")
    parser.add_argument("--studies", default="epistemic,learning")
    parser.add_argument("--ray", action="store_true", help="run the tasks on Ray (local workers)")
    parser.add_argument("--address", default=None, help="a Ray cluster's address (with --ray)")
    parser.add_argument("--out", default=None, help="prefix of the PNG figures (none when absent)")
    parser.add_argument("--save", default=None, help="prefix of .npz files of each study's truths, posterior means, "
                        "intervals, evidence and posterior correlations (none when absent)")
    parser.add_argument("--loss-aversion", type=float, default=HINT_LOSS_AVERSION,
                        help="bandit-hint: the known loss aversion la in C[1] = [0, -la, r]")
    parser.add_argument("--posterior", choices=["laplace", "nuts"], default="laplace",
                        help="nuts: NUTS posteriors (from Laplace's mode) and bridge-sampled evidence")
    parser.add_argument("--nuts-samples", type=int, default=300, help="NUTS draws and warm-up steps per chain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 subjects, 6 trials, 1 step: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.trials, args.steps, args.chunk = 3, 6, 1, 3
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    runner = Ray(address=args.address) if args.ray else InProcess()
    n = args.subjects
    reports = {}
    for study in args.studies.split(","):
        if study == "epistemic":
            models = epistemic_models()
            truths = [{"gamma": rng.uniform(1, 16, n), "strength": rng.uniform(1, 6, n)} for _ in models]
            env = functools.partial(TMaze, 0.6)
        elif study in ("learning", "learning-reversals"):
            models = learning_models()
            truths = [{"lr": rng.uniform(0.2, 2.0, n), "forgetting": rng.uniform(0.6, 1.0, n)},
                      {"gamma": rng.uniform(1, 16, n)}]
            reversals = TMAZE_REVERSALS if study == "learning-reversals" else ()
            env = functools.partial(ReversingTMaze, 0.8, reversals=reversals)
        elif study in ("bandit", "bandit-stationary"):
            reversals = BANDIT_REVERSALS if study == "bandit" else ()
            models = bandit_models(reversals)
            truths = [{"lr": rng.uniform(0.2, 2.0, n), "forgetting": rng.uniform(0.6, 1.0, n)} for _ in models]
            env = functools.partial(Bandit, BANDIT_PROBS, reversals=reversals)
        elif study == "bandit-preferences":
            models = bandit_preference_models()
            truths = [{"gamma": rng.uniform(1, 16, n), "strength": rng.uniform(1, 6, n)} for _ in models]
            env = functools.partial(Bandit, BANDIT_PROBS, reversals=BANDIT_REVERSALS)
        elif study == "bandit-hint":
            models = hint_models(loss_aversion=args.loss_aversion)
            truths = [{"gamma": rng.uniform(1, 16, n), "strength": rng.uniform(1, 6, n)} for _ in models]
            env = functools.partial(ExploreExploit, HINT_WIN_PROB)
        elif study == "bandit-hint-learning":
            models = hint_learning_models()
            truths = [{"lr": rng.uniform(0.2, 2.0, n), "forgetting": rng.uniform(0.6, 1.0, n)},
                      {"gamma": rng.uniform(1, 16, n)}]
            env = functools.partial(ReversingExploreExploit, HINT_WIN_PROB, reversals=HINT_REVERSALS)
        elif study == "bandit-hint-prior":
            models = hint_prior_models()
            truths = [{"lr": rng.uniform(0.2, 2.0, n), "forgetting": rng.uniform(0.6, 1.0, n)},
                      {"gamma": rng.uniform(1, 16, n)}]
            env = functools.partial(ShiftingContextExploreExploit, 0.8, reversals=HINT_REVERSALS)
        else:
            raise SystemExit(f"unknown study {study!r}: choose from epistemic, learning, learning-reversals, bandit, "
                             "bandit-stationary, bandit-preferences, bandit-hint, bandit-hint-learning, "
                             "bandit-hint-prior")
        pulls = study in ("bandit", "bandit-stationary", "bandit-preferences")
        steps = {"epistemic": 3, "bandit-hint": 2, "bandit-hint-learning": 3, "bandit-hint-prior": 3,
                 "learning-reversals": 3}.get(study, args.steps)
        trials, steps = (1, args.pulls) if pulls else (args.trials, steps)
        start = time.perf_counter()
        nuts = dict(num_samples=args.nuts_samples, warmup=args.nuts_samples) if args.posterior == "nuts" else None
        report = recover(models, truths, env, trials, steps, seed=args.seed, chunk=args.chunk, runner=runner,
                         posterior=args.posterior, nuts=nuts)
        took = time.perf_counter() - start
        print(f"\n## {study}: {n} subjects per model, {trials} trials x {steps} steps, {args.posterior}, "
              f"{type(runner).__name__}: {took:.0f} s\n")
        print(report.table())
        for failure in report.failures:
            print(f"task {failure.task} failed: {failure.error}")
        if args.out:
            print("figures:", ", ".join(report.plot(f"{args.out}_{study}")))
        if args.save:
            arrays = {f"{key}/{report.names[g]}/{p}": v for key in ("truth", "estimate", "lower", "upper")
                      for g, d in enumerate(getattr(report, key)) for p, v in d.items()}
            arrays.update({f"log_evidence/{report.names[g]}": L for g, L in enumerate(report.log_evidence)})
            arrays.update({f"posterior_correlation/{report.names[g]}/{pair}": r
                           for g, d in enumerate(report.posterior_correlation) for pair, r in d.items()})
            np.savez(f"{args.save}_{study}.npz", **arrays)
        reports[study] = report
    return reports


if __name__ == "__main__":
    main()
