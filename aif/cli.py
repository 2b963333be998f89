"""The ``aif`` command: ``aif demo tmaze | gridworld | cue-chaining``.

Each demo builds the task's environment and the generative model it provides, runs an ``aif.Agent`` in it,
prints an account of the first trial (what the agent saw, what it believed, which options it weighed and
why it chose one, in terms of expected utility and information gain) and a summary over all trials, and
writes figures to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

if TYPE_CHECKING:
    from .rollout import Trajectory

DESCRIPTION = """Active inference demos. Each runs an agent that picks actions by minimising expected free energy
G = -(expected utility) - (expected information gain), prints what it believed and why it acted, and
writes figures (PNG) to --out."""


# ---------------------------------------------------------------- explaining one step

def _fmt(x):
    return f"{round(float(x), 2) + 0.0:+.2f}"  # + 0.0 turns a rounded -0.00 into +0.00


def explain_step(traj: Trajectory, t: int, action_names: Callable[[tuple], str], obs_text: Callable[[Any], str],
                 belief_text: Callable[[Trajectory, int], str] | None, out: Callable[[str], Any] = print) -> None:
    """Print step ``t`` of a trajectory: observation, beliefs, options by first action, choice and reason.

    With a planning horizon above one, each first action is represented by its best policy (lowest G).
    """
    assert traj.terms is not None and traj.observations is not None  # a rollout records both at every step
    G = traj.G[t]
    util = traj.terms["utility"][t]
    gain = traj.terms["state_info_gain"][t]
    first = traj.policies[:, 0, :]
    chosen = tuple(traj.actions[t])
    options: dict[tuple, int] = {}
    for i in np.argsort(G, kind="stable"):
        options.setdefault(tuple(first[i]), i)
    out(f"step {t}: {obs_text(traj.observations[t])}")
    if belief_text is not None:
        out(f"  believes: {belief_text(traj, t)}")
    out("  options (best policy for each first action; G = -utility - info gain, lower is better):")
    for a, i in options.items():
        mark = "->" if a == chosen else "  "
        out(f"   {mark} {action_names(a):<16} G {_fmt(G[i])}   utility {_fmt(util[i])}   info gain {gain[i]:.2f}")
    i_chosen = options.get(chosen)
    others = [i for a, i in options.items() if a != chosen]
    if i_chosen is None or not others:
        out(f"  chose {action_names(chosen)}")
        return
    runner = min(others, key=lambda i: G[i])
    d_util, d_gain = util[i_chosen] - util[runner], gain[i_chosen] - gain[runner]
    runner_name = action_names(tuple(first[runner]))
    if abs(d_util) < 1e-6 and abs(d_gain) < 1e-6:
        reason = f"it ties with {runner_name}; the first of tied policies is taken"
    elif d_gain >= d_util:
        reason = (f"epistemic: {d_gain:+.2f} nats more information than {runner_name}"
                  + (f", at {d_util:+.2f} utility" if abs(d_util) > 0.005 else ", same utility"))
    else:
        reason = (f"pragmatic: {d_util:+.2f} more expected utility than {runner_name}"
                  + (f", with {d_gain:+.2f} nats information" if abs(d_gain) > 0.005 else ""))
    out(f"  chose {action_names(chosen)} -- {reason}")


def _make_agent(model, horizon):
    import aif

    # C is used as given (not log-softmax-normalised), so "utility" reads in the units of C: +3 for an
    # expected reward. The choice is the same either way (normalising shifts every G by one constant).
    return aif.Agent(model, policy_horizon=horizon, efe=aif.EFEOptions(normalize_C=False))


def _trials(agent, env, steps, trials, seed, options=None):
    from .rollout import rollout

    rng = np.random.default_rng(seed)
    return [rollout(agent, env, steps, rng, options=options, progress=False) for _ in range(trials)]


# ---------------------------------------------------------------- the three demos

def demo_tmaze(args: argparse.Namespace, out: Callable[[str], Any] = print) -> dict[str, Any]:
    from . import plotting
    from .envs.tmaze import CONDITION_NAMES, CUE_NAMES, LOCATION_NAMES, REWARD_NAMES, TMaze, summarize_tmaze

    env = TMaze(reward_prob=args.reward_prob, cue_validity=args.cue_validity)
    model = env.generative_model()
    agent = _make_agent(model, 1)
    out(f"T-maze: reward in the baited arm with p = {env.reward_prob}, cue validity {env.cue_validity}; "
        f"preferences C[reward] = {model.C[1].tolist()} (no reward, reward, loss).")
    out(f"Agent: policy horizon 1, gamma 16; {args.trials} trial(s) of {args.steps} step(s), seed {args.seed}.\n")
    trajs = _trials(agent, env, args.steps, args.trials, args.seed)

    first = trajs[0]
    out(f"Trial 1 (hidden condition: {CONDITION_NAMES[first.states[0, 1]]})")
    at = {0: "in the centre", 1: "in the right arm", 2: "in the left arm", 3: "at the cue"}
    for t in range(first.num_steps):
        explain_step(
            first, t,
            action_names=lambda a: f"go to {LOCATION_NAMES[a[0]]}",
            obs_text=lambda o: f"{at[o[0]]}, sees {REWARD_NAMES[o[1]]}"
                               + (f", {CUE_NAMES[o[2]]}" if o[0] == 3 else ""),
            belief_text=lambda tr, t: ", ".join(f"{n} {p:.2f}"
                                                for n, p in zip(CONDITION_NAMES, tr.qs[1][t], strict=True)),
            out=out)
    o = first.observations[-1]
    out(f"end: {at[o[0]]}, sees {REWARD_NAMES[o[1]]}\n")

    locations = np.array([tr.observations[:, 0] for tr in trajs])  # the T-maze never ends a trial early
    conditions = np.array([tr.states[0, 1] for tr in trajs])
    rewards = np.array([tr.rewards for tr in trajs])
    for line in tmaze_summary_lines(summarize_tmaze(locations, conditions, rewards), args.steps, env.reward_prob,
                                    env.cue_validity):
        out(line)

    if not args.out:
        return {}
    labels = [f"go to {n}" for n in LOCATION_NAMES]
    figures = {"tmaze_beliefs.png": plotting.plot_beliefs(first.qs, ["location", "reward condition"],
                                                          [list(LOCATION_NAMES), list(CONDITION_NAMES)],
                                                          title="Trial 1: beliefs over time")}
    for t in range(min(2, first.num_steps)):
        figures[f"tmaze_efe_step{t}.png"] = plotting.plot_efe_terms(first.step_terms(t), labels,
                                                                   title=f"Trial 1, step {t}: EFE by policy")
    figures["tmaze_summary.png"] = plotting.plot_tmaze_summary(locations, conditions, rewards,
                                                               title=f"T-maze over {len(trajs)} trials")
    return figures


def tmaze_summary_lines(s: Mapping[str, Any], steps: int, reward_prob: float, cue_validity: float) -> list[str]:
    """The demo's account of many T-maze trials, true at every setting.

    Args:
        s: ``aif.envs.summarize_tmaze``'s result for ``K`` trials.
        steps, reward_prob, cue_validity: the trials' settings, to say what the rates mean.

    The arm rates are over the trials that entered an arm (none may have: one step is spent at the cue, and
    at ``reward_prob`` 0.5 no arm is worth entering). "The condition's arm" is the arm the hidden condition
    names; it pays with ``reward_prob``, so at ``reward_prob`` below 0.5 the other arm is the better one.
    """
    from .plotting import tmaze_rates

    rates = tmaze_rates(s)  # name -> (trials that did it, trials it is a share of)
    cue_first, K = rates["cue first"]
    correct, n = rates["condition's arm first"]
    rewarded = rates["rewarded on first arm"][0]
    head = f"Over {K} trial(s): went to the cue first in {cue_first / K:.0%}; "
    if n == 0:
        arms = f"no trial entered an arm within {steps} step(s)."
    else:
        arms = (f"{n} entered an arm; of those, {correct / n:.0%} entered the condition's arm first "
                f"and {rewarded / n:.0%} were rewarded on the first arm entered.")
    cue = {1.0: "the cue shows the condition's arm", 0.5: "the cue is uninformative (validity 0.5)",
           0.0: "the cue always shows the other arm"}.get(cue_validity,
                                                         f"the cue shows the condition's arm with p = {cue_validity}")
    setting = (f"(The condition's arm pays with p = {reward_prob}, the other arm with p = {1 - reward_prob:.3g}; "
               f"{cue}.)")
    return [head + arms, setting]


DEMO_WALLS = ((1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6),
              (5, 0), (5, 1), (5, 2), (5, 3), (5, 4))


def demo_gridworld(args: argparse.Namespace, out: Callable[[str], Any] = print) -> dict[str, Any]:
    from . import plotting
    from .envs.gridworld import ACTION_NAMES, GridWorld

    env = GridWorld((7, 7), start=(0, 0), goals=[(6, 6)], walls=DEMO_WALLS, slip=args.slip)
    model = env.generative_model(preference="distance")
    agent = _make_agent(model, args.horizon)
    shortest = int(env.distances()[env.index(env.start)])
    out(f"Grid world 7x7 with {len(env.walls)} walls, start {env.start}, goal {env.goals[0]}, slip {env.slip}.")
    out(f"Preferences over locations: C[location] = -(steps to the goal); shortest path {shortest} moves.")
    out(f"Agent: policy horizon {args.horizon}; {args.trials} trial(s) of at most {args.steps} step(s), "
        f"seed {args.seed}.\n")
    trajs = _trials(agent, env, args.steps, args.trials, args.seed)

    first = trajs[0]
    out("Trial 1")
    shown = min(first.num_steps, 4)
    for t in range(shown):
        explain_step(first, t, action_names=lambda a: ACTION_NAMES[a[0]],
                     obs_text=lambda o: f"at {env.cell(o[0])}", belief_text=None, out=out)
    if first.num_steps > shown:
        rest = " ".join(ACTION_NAMES[a] for a in first.actions[shown:, 0])
        out(f"steps {shown}..{first.num_steps - 1}: {rest}")
    cells = [env.cell(o) for o in first.observations[:, 0]]
    out(f"end: at {cells[-1]}" + (" -- goal reached" if first.terminated else " -- goal not reached") + "\n")

    reached = [tr.terminated for tr in trajs]
    moves = [tr.num_steps for tr in trajs if tr.terminated]
    out(f"Over {len(trajs)} trial(s): goal reached in {np.mean(reached):.0%}"
        + (f", in {np.mean(moves):.1f} moves on average (shortest {shortest})." if moves else "."))

    if not args.out:
        return {}
    labels = [" ".join(ACTION_NAMES[u][0].upper() for u in p[:, 0]) for p in first.policies]
    marks = {"goal": list(env.goals), **({} if env.cue_location is None else {"cue": [env.cue_location]})}
    return {"gridworld_path.png": plotting.plot_grid_path(cells, env.shape, env.walls, marks, title="Trial 1: path"),
            "gridworld_efe_step0.png": plotting.plot_efe_terms(first.step_terms(0), labels,
                                                               title="Step 0: EFE by policy"),
            "gridworld_beliefs.png": plotting.plot_beliefs(first.qs, ["location (cell index)"],
                                                           title="Trial 1: beliefs over time")}


def demo_cue_chaining(args: argparse.Namespace, out: Callable[[str], Any] = print) -> dict[str, Any]:
    from . import plotting
    from .envs.cue_chaining import REWARD_OBS_NAMES, CueChaining
    from .envs.gridworld import ACTION_NAMES

    env = CueChaining()
    model = env.generative_model()
    agent = _make_agent(model, args.horizon)
    cue2_names = [f"L{k + 1} {c}" for k, c in enumerate(env.cue2_locations)]
    cond_names = [f"reward at {c}" for c in env.reward_locations]
    out(f"Cue chaining on a {env.shape[0]}x{env.shape[1]} grid: start {env.start}, cue 1 at {env.cue1_location}, "
        f"cue 2 candidates {list(env.cue2_locations)}, reward cells {list(env.reward_locations)}.")
    out(f"Preferences C[reward] = {model.C[3].tolist()} (null, cheese, shock). Agent: policy horizon "
        f"{args.horizon} ({len(agent.policies)} policies); {args.trials} trial(s) of {args.steps} step(s), "
        f"seed {args.seed}.\n")
    trajs = _trials(agent, env, args.steps, args.trials, args.seed)

    def obs_text(o):
        parts = [f"at {env.cell(o[0])}"]
        if o[1]:
            parts.append(f"cue 1 says: cue 2 is {cue2_names[o[1] - 1]}")
        if o[2]:
            parts.append(f"cue 2 says: {cond_names[o[2] - 1]}")
        if o[3]:
            parts.append(REWARD_OBS_NAMES[o[3]])
        return ", ".join(parts)

    def belief_text(tr, t):
        k, r = int(np.argmax(tr.qs[1][t])), int(np.argmax(tr.qs[2][t]))
        return (f"cue 2 is {cue2_names[k]} ({tr.qs[1][t][k]:.2f}); "
                f"{cond_names[r]} ({tr.qs[2][t][r]:.2f})")

    first = trajs[0]
    out(f"Trial 1 (hidden: cue 2 is {cue2_names[first.states[0, 1]]}, {cond_names[first.states[0, 2]]})")
    for t in range(first.num_steps):
        explain_step(first, t, action_names=lambda a: ACTION_NAMES[a[0]], obs_text=obs_text,
                     belief_text=belief_text, out=out)
    out(f"end: {obs_text(first.observations[-1])}\n")

    def route(tr):
        loc = tr.observations[:, 0]
        cue1 = np.flatnonzero(loc == env.index(env.cue1_location))
        cue2 = np.flatnonzero(loc == env.index(env.cue2_locations[tr.states[0, 1]]))
        goal = np.flatnonzero(loc == env.index(env.reward_locations[tr.states[0, 2]]))
        in_order = cue1.size and cue2.size and goal.size and cue1[0] < cue2[0] < goal[0]
        return bool(in_order), (int(goal[0]) if goal.size else None)

    routes = [route(tr) for tr in trajs]
    arrivals = [g for ok, g in routes if g is not None]
    out(f"Over {len(trajs)} trial(s): cues collected in order and reward reached in "
        f"{np.mean([ok for ok, _ in routes]):.0%}"
        + (f", reward reached after {np.mean(arrivals):.1f} moves on average." if arrivals else "."))

    if not args.out:
        return {}
    cells = [env.cell(o) for o in first.observations[:, 0]]
    marks = {"cue 1": [env.cue1_location], "cue 2 candidates": list(env.cue2_locations),
             "reward cells": list(env.reward_locations)}
    labels = [" ".join(ACTION_NAMES[u][0].upper() for u in p[:, 0]) for p in first.policies]
    return {"cue_chaining_path.png": plotting.plot_grid_path(cells, env.shape, (), marks, title="Trial 1: path"),
            "cue_chaining_beliefs.png": plotting.plot_beliefs(first.qs[1:], ["cue 2 location", "reward condition"],
                                                              [cue2_names, cond_names],
                                                              title="Trial 1: beliefs over time"),
            "cue_chaining_efe_step0.png": plotting.plot_efe_terms(first.step_terms(0), labels,
                                                                  title="Step 0: EFE of the best 16 policies")}


# ---------------------------------------------------------------- argument parsing

class _Parser(argparse.ArgumentParser):
    """argparse's parser, reporting a usage error in one line (exit code 2) instead of the usage text.

    Subcommands' parsers are of the same class (``add_subparsers`` uses the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text, kind, name):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {name}, got {text!r}") from None


def _positive_int(text):
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _seed(text):
    value = _number(text, int, "a non-negative integer")
    if value < 0:  # np.random.default_rng refuses negative seeds
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def _probability(text):
    value = _number(text, float, "a probability in [0, 1]")
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def prepare_out(folder: str | os.PathLike) -> Path:
    """Create the figure folder ``folder`` if needed and check that a file can be written in it.

    Called before any trial runs, so that a bad ``--out`` costs nothing. Raises ``OSError`` with a
    one-line message naming the folder and what is wrong (a file of that name, a parent that cannot hold a
    folder, no write permission).
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A real write, not os.access: permission bits do not bind root, and a read-only file system
        # refuses writes whatever the bits say.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        what = "cannot be created" if not path.is_dir() else "is not writable"
        raise OSError(f"{path} {what}: {e.strerror or e}") from None
    return path


def _common(p, steps, trials):
    p.add_argument("--steps", type=_positive_int, default=steps,
                   help=f"actions per trial (default {steps})")
    p.add_argument("--trials", type=_positive_int, default=trials,
                   help=f"trials, each with a fresh environment seed drawn from --seed (default {trials}); "
                        "the first is told step by step, all are summarised")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random generator, >= 0 (default 0)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for the PNG figures (created if needed, checked before any trial runs); "
                        "without it no figures are written")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="aif", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"aif {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser("demo", help="run a demonstration task", description=DESCRIPTION)
    tasks = demo.add_subparsers(dest="task", metavar="TASK", required=True)

    p = tasks.add_parser(
        "tmaze", help="the T-maze: visit the cue, then the arm it indicates",
        description="The T-maze (pymdp's demo): the agent starts in the centre; one upper arm holds a reward, "
                    "the other a loss; a cue in the lower arm tells which. With preferences [0, 3, -3] over "
                    "(no reward, reward, loss), the agent first goes to the cue for its information, then to "
                    "the arm the cue indicates.")
    _common(p, steps=4, trials=100)
    p.add_argument("--reward-prob", type=_probability, default=0.98,
                   help="probability of reward in the baited arm (default 0.98)")
    p.add_argument("--cue-validity", type=_probability, default=1.0,
                   help="probability that the cue shows the true arm (default 1.0)")
    p.set_defaults(run=demo_tmaze)

    p = tasks.add_parser(
        "gridworld", help="a 7x7 grid world: walk around walls to a goal",
        description="A 7x7 grid world with walls. The agent prefers locations closer to the goal "
                    "(C = -steps to the goal) and plans over --horizon moves.")
    _common(p, steps=30, trials=1)
    p.add_argument("--horizon", type=_positive_int, default=1, help="policy horizon in moves (default 1)")
    p.add_argument("--slip", type=_probability, default=0.0, help="probability that a move fails (default 0)")
    p.set_defaults(run=demo_gridworld)

    p = tasks.add_parser(
        "cue-chaining", help="cue chaining: cue 1 tells where cue 2 is, cue 2 where the reward is",
        description="pymdp's epistemic-chaining task on a 5x7 grid: cue 1 reveals which of four cells holds "
                    "cue 2, which reveals which of two cells holds the reward (the other a shock). The agent "
                    "plans 4 moves ahead (625 policies) and collects the cues in order.")
    _common(p, steps=12, trials=1)
    p.add_argument("--horizon", type=_positive_int, default=4, help="policy horizon in moves (default 4)")
    p.set_defaults(run=demo_cue_chaining)
    for name, text in FITTING.items():  # listed here; parsed and run by aif_deep.cli (see main)
        commands.add_parser(name, help=text, add_help=False)
    return parser


# aif_deep.cli's commands (torch, Pyro, ArviZ, Ray: the fit extra), imported only when named, so aif demo needs none.
FITTING = {"fit": "fit agents' parameters to a CSV of choices (needs aif[fit])",
           "recover": "a parameter recovery study of a model file's agent (needs aif[fit])"}


def _fitting(argv: list) -> int:
    try:
        from aif_deep.cli import main as fitting_main
    except ImportError as e:
        print(f"aif {argv[0]}: needs the fit extra: pip install 'aif[fit]' ({e})", file=sys.stderr)
        return 2
    return fitting_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Bad arguments, an unusable ``--out`` and a setting the library refuses (an ``aif.AifError``, such as a
    horizon whose policies exceed the memory budget) end with one line on stderr and exit code 2, before any
    trial runs where they can be checked up front.
    """
    from .errors import AifError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in FITTING:
        return _fitting(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out_dir = prepare_out(args.out) if args.out else Path()
    except OSError as e:
        parser.error(f"--out {e}")
    try:
        figures = args.run(args)  # file name -> figure (none without --out)
    except AifError as e:
        parser.error(str(e))
    for name, fig in figures.items():
        try:
            fig.savefig(out_dir / name, dpi=100)
        except OSError as e:
            print(f"aif: error: could not write {out_dir / name}: {e.strerror or e}", file=sys.stderr)
            return 1
    if figures:
        print("\nFigures: " + ", ".join(str(out_dir / name) for name in figures))
    elif not args.out:
        print("\n(pass --out DIR to write figures)")
    print(f"Done in {time.perf_counter() - start:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
