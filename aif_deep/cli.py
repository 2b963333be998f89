"""``aif fit`` and ``aif recover``: Bayesian fitting of agents to a CSV of choices, and recovery studies.

``aif/cli.py`` hands these commands to ``main`` here, importing this module (torch, Pyro, ArviZ: the ``fit`` extra)
only when one of them is named.

The CSV holds one row per step: ``subject, trial, step``, one column per modality ``obs_0, obs_1, ...`` (outcome
indices) and one per factor ``action_0, ...`` (the action taken after that observation; empty on the last row of a
trial, whose observation no action followed). Subjects, trials and steps may be any integers; they are sorted.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch

import aif
from aif.errors import AifError, ParameterError

from . import bayes, recovery
from .fit import choice_likelihood
from .model import TabularModel

# The priors each parameter gets unless --prior says otherwise (over one subject's value).
DEFAULT_PRIORS = {"gamma": "lognormal:1.4,1", "alpha": "lognormal:0,1", "lr": "lognormal:-1,1",
                  "forgetting": "beta:4,1"}
FAMILIES = {"lognormal": dist.LogNormal, "normal": dist.Normal, "beta": dist.Beta, "gamma": dist.Gamma,
            "halfnormal": dist.HalfNormal}


def parse_prior(text: str) -> Any:
    """``"lognormal:1.4,1"`` -> ``dist.LogNormal(1.4, 1.0)`` (float64); families: ``FAMILIES``."""
    family, _, numbers = text.partition(":")
    if family not in FAMILIES:
        raise ParameterError(f"prior {text!r}: the family must be one of {sorted(FAMILIES)} (as 'lognormal:1.4,1')")
    try:
        args = [torch.tensor(float(x), dtype=torch.float64) for x in numbers.split(",")]
        return FAMILIES[family](*args)
    except (ValueError, TypeError) as e:
        raise ParameterError(f"prior {text!r}: {e}") from None


def read_choices(path: str | Path, num_modalities: int, num_factors: int) -> tuple[list, np.ndarray, np.ndarray]:
    """The CSV (module docstring) as ``(subjects, observations (N, K, T + 1, M), actions (N, K, T, F))``, padded with
    ``-1``; ``ParameterError`` naming the row of a bad entry."""
    obs_cols = [f"obs_{m}" for m in range(num_modalities)]
    act_cols = [f"action_{f}" for f in range(num_factors)]
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("subject", "trial", "step", *obs_cols, *act_cols) if c not in (reader.fieldnames or [])]
        if missing:
            raise ParameterError(f"{path}: the columns {missing} are missing (the model has {num_modalities} "
                                 f"modalities and {num_factors} factors)")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                key = (int(row["subject"]), int(row["trial"]), int(row["step"]))
                obs = [int(row[c]) for c in obs_cols]
                act = [int(row[c]) if row[c] not in ("", None) else -1 for c in act_cols]
            except (TypeError, ValueError):
                raise ParameterError(f"{path}, line {line}: subject, trial, step, observations and actions must be "
                                     f"integers (an action may be empty), got {dict(row)}") from None
            rows.append((key, obs, act))
    if not rows:
        raise ParameterError(f"{path} has no rows")
    subjects = sorted({k[0] for k, _, _ in rows})
    trials = {s: sorted({k[1] for k, _, _ in rows if k[0] == s}) for s in subjects}
    K = max(len(t) for t in trials.values())
    steps = max(k[2] for k, _, _ in rows) - min(k[2] for k, _, _ in rows) + 1
    first = min(k[2] for k, _, _ in rows)
    observations = np.full((len(subjects), K, steps, num_modalities), -1, dtype=np.int64)
    actions = np.full((len(subjects), K, max(steps - 1, 1), num_factors), -1, dtype=np.int64)
    for (s, k, t), obs, act in rows:
        i, j = subjects.index(s), trials[s].index(k)
        observations[i, j, t - first] = obs
        if t - first < actions.shape[2]:
            actions[i, j, t - first] = act
    return subjects, observations, actions


def _settings(args: argparse.Namespace, fitted: Sequence[str]) -> dict:
    """choice_likelihood's keyword arguments from the command line."""
    learning = None
    if args.learn:
        learning = aif.Learning(lr=args.lr, forgetting=args.forgetting, learn_A="A" in args.learn,
                                learn_B="B" in args.learn)
    elif any(p in fitted for p in ("lr", "forgetting")):
        raise ParameterError("fitting lr or forgetting needs --learn A, B or AB (what the agents learn)")
    return dict(alpha=args.alpha, gamma=args.gamma, policy_horizon=args.horizon, learning=learning,
                inference=aif.Exact() if args.exact else aif.FixedPoint())


def _priors(args: argparse.Namespace) -> dict:
    given = dict(DEFAULT_PRIORS)
    for item in args.prior or []:
        name, _, text = item.partition("=")
        given[name] = text
    return {name: parse_prior(given[name]) if name in given else None for name in args.params}


def _posterior_rows(subjects: list, post: bayes.Posterior, level: float) -> list[str]:
    lines = ["subject,parameter,mean,lower,upper,log_evidence"]
    for name in post.samples:
        if post.samples[name].ndim < 3:  # a group-level draw
            continue
        mean, (lo, hi) = post.mean(name), post.interval(name, level)
        for i, s in enumerate(subjects):
            ev = "" if post.log_evidence is None else f"{float(post.log_evidence[i]):.6g}"
            for idx in np.ndindex(*mean.shape[1:]):
                label = name + ("" if not idx else str(list(idx)))
                lines.append(f"{s},{label},{float(mean[(i, *idx)]):.6g},{float(lo[(i, *idx)]):.6g},"
                             f"{float(hi[(i, *idx)]):.6g},{ev}")
    return lines


def run_fit(args: argparse.Namespace) -> int:
    """``aif fit``: posteriors of the chosen parameters per subject, written to ``--out``."""
    torch.set_num_threads(1)
    model = TabularModel.from_aif(aif.load_model(args.model), device="cpu")
    subjects, obs, act = read_choices(args.data, model.num_modalities, model.num_factors)
    priors = _priors(args)
    bad = [n for n, p in priors.items() if p is None]
    if bad:
        raise ParameterError(f"give a prior for {bad[0]} with --prior {bad[0]}=FAMILY:ARGS")
    like = choice_likelihood(model, obs, act, **_settings(args, args.params))
    print(f"{len(subjects)} subjects, {obs.shape[1]} trials of up to {act.shape[2]} actions; fitting "
          f"{', '.join(args.params)} by {args.method}")
    if args.method == "laplace":
        post = bayes.laplace(like, priors, seed=args.seed)
    elif args.method == "svi":
        post = bayes.svi(like, priors, steps=args.steps, seed=args.seed)
    else:
        post = bayes.nuts(like, priors, num_samples=args.samples, warmup=args.samples, chains=args.chains,
                          seed=args.seed, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "posterior.csv").write_text("\n".join(_posterior_rows(subjects, post, args.level)) + "\n")
    post.to_arviz().to_netcdf(str(out / "posterior.nc"))
    summary = post.summary(args.level)
    summary.to_csv(out / "summary.csv")
    _forest(post, subjects, args.level, out / "posterior.png")
    print(summary.to_string())
    print(f"Wrote {out / 'posterior.csv'}, {out / 'summary.csv'}, {out / 'posterior.nc'}, {out / 'posterior.png'}")
    return 0


def _forest(post: bayes.Posterior, subjects: list, level: float, path: Path) -> None:
    """Each subject's posterior mean and credible interval, one panel per scalar parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, x in post.samples.items() if x.ndim == 3]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.5 * max(len(names), 1), 0.3 * len(subjects) + 1.5),
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        mean, (lo, hi) = post.mean(name).numpy(), post.interval(name, level)
        y = np.arange(len(subjects))
        ax.errorbar(mean, y, xerr=[mean - lo.numpy(), hi.numpy() - mean], fmt="o", ms=3)
        ax.set(yticks=y, yticklabels=[str(s) for s in subjects], xlabel=name,
               title=f"{name}: mean and {level:.0%} interval")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ranges(args: argparse.Namespace) -> dict:
    """``--range gamma=1:16`` -> {"gamma": (1.0, 16.0)} for every fitted parameter."""
    ranges = {"gamma": (1.0, 16.0), "alpha": (0.5, 4.0), "lr": (0.1, 2.0), "forgetting": (0.7, 1.0)}
    for item in args.range or []:
        name, _, text = item.partition("=")
        lo, _, hi = text.partition(":")
        try:
            ranges[name] = (float(lo), float(hi))
        except ValueError:
            raise ParameterError(f"--range {item!r}: write NAME=LOW:HIGH") from None
    missing = [p for p in args.params if p not in ranges]
    if missing:
        raise ParameterError(f"give the range of the true {missing[0]} with --range {missing[0]}=LOW:HIGH")
    return {p: ranges[p] for p in args.params}


def run_recover(args: argparse.Namespace) -> int:
    """``aif recover``: simulate subjects from the model file's agent in its own world, fit them back, report."""
    torch.set_num_threads(1)
    process = aif.load_model(args.model)
    model = TabularModel.from_aif(process, device="cpu")
    priors = _priors(args)
    settings = _settings(args, args.params)
    rng = np.random.default_rng(args.seed)
    truths = {p: rng.uniform(lo, hi, args.subjects) for p, (lo, hi) in _ranges(args).items()}
    controlled = [f for f, u in enumerate(process.num_controls) if u > 1]
    env = functools.partial(aif.envs.POMDPEnv, process.A, process.B, process.D, process.A_dependencies,
                            process.B_dependencies, controlled[0] if controlled else 0)
    candidate = recovery.AgentModel("model", model, priors, settings)
    runner = recovery.Ray(address=args.address) if args.ray else recovery.InProcess()
    start = time.perf_counter()
    report = recovery.recover([candidate], [truths], env, args.trials, args.steps, seed=args.seed, chunk=args.chunk,
                              level=args.level, runner=runner)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recovery.md").write_text(report.table() + "\n")
    paths = report.plot(str(out / "recovery"))
    print(report.table())
    for failure in report.failures:
        print(f"task {failure.task} failed: {failure.error}", file=sys.stderr)
    print(f"Done in {time.perf_counter() - start:.1f} s. Wrote {out / 'recovery.md'}, {', '.join(paths)}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the agents' model, a file written by aif.save_model")
    p.add_argument("--params", type=lambda s: s.split(","), default=["gamma"],
                   help="parameters to fit, comma-separated: gamma, alpha, lr, forgetting, C[1], ... (default gamma)")
    p.add_argument("--prior", action="append", metavar="NAME=FAMILY:ARGS",
                   help="a prior, e.g. gamma=lognormal:1.4,1 (families: " + ", ".join(sorted(FAMILIES)) +
                        "); defaults: " + ", ".join(f"{k}={v}" for k, v in DEFAULT_PRIORS.items()))
    p.add_argument("--gamma", type=float, default=16.0, help="policy precision where not fitted (default 16)")
    p.add_argument("--alpha", type=float, default=16.0, help="action precision where not fitted (default 16)")
    p.add_argument("--horizon", type=int, default=1, help="the agents' policy horizon (default 1)")
    p.add_argument("--exact", action="store_true", help="exact state inference instead of the fixed point")
    p.add_argument("--learn", choices=["A", "B", "AB"], default=None,
                   help="the agents learn A and/or B during the task (Dirichlet counts pA/pB in the model file)")
    p.add_argument("--lr", type=float, default=1.0, help="learning rate where not fitted (default 1)")
    p.add_argument("--forgetting", type=float, default=1.0, help="forgetting where not fitted (default 1: none)")
    p.add_argument("--level", type=float, default=0.9, help="credible intervals' probability (default 0.9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results (created if needed)")


def add_commands(subparsers: Any) -> None:
    """Add ``fit`` and ``recover`` to an argparse ``subparsers`` (each sets ``run`` to its handler)."""
    p = subparsers.add_parser("fit", help="fit agents' parameters to a CSV of choices (posteriors and figures)",
                              description=__doc__.split("\n\n")[2].replace("\n", " "))
    p.add_argument("data", help="CSV: subject, trial, step, obs_0.., action_0..")
    _common(p)
    p.add_argument("--method", choices=["laplace", "svi", "nuts"], default="laplace")
    p.add_argument("--steps", type=int, default=1000, help="SVI steps (default 1000)")
    p.add_argument("--samples", type=int, default=500, help="NUTS draws and warm-up steps per chain (default 500)")
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (default 2)")
    p.set_defaults(run=run_fit)
    p = subparsers.add_parser("recover", help="a parameter recovery study of a model file's agent (on Ray with "
                                              "--ray)")
    _common(p)
    p.add_argument("--subjects", type=int, default=20)
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--steps", type=int, default=2, help="actions per trial (default 2)")
    p.add_argument("--range", action="append", metavar="NAME=LOW:HIGH",
                   help="true values drawn uniformly from this range (defaults: gamma 1:16, alpha 0.5:4, lr 0.1:2, "
                        "forgetting 0.7:1)")
    p.add_argument("--chunk", type=int, default=10, help="subjects per task (default 10)")
    p.add_argument("--ray", action="store_true", help="run the tasks on Ray (local workers unless --address)")
    p.add_argument("--address", default=None, help="a Ray cluster's address (with --ray)")
    p.set_defaults(run=run_recover)


def main(argv: Sequence[str]) -> int:
    """``aif fit ...`` / ``aif recover ...`` (``argv`` starts with the command); the exit code. A setting the library
    refuses ends with one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="aif")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    try:
        return args.run(args)
    except (AifError, OSError) as e:
        print(f"aif {args.command}: error: {e}", file=sys.stderr)
        return 2

