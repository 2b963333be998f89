"""Parameter and model recovery studies as one call: simulate subjects, fit every candidate model, report.

``recover(models, truths, env, trials, steps)`` simulates each generating model's subjects (``aif.Agent`` stepped
in NumPy, learning included, from the parameter values in ``truths``), fits every candidate model to every
subject's choices by Laplace (``aif_deep.bayes.laplace``: posterior means, credible intervals, log evidence; or by
NUTS with bridge-sampled evidence, ``posterior="nuts"``), and
reports the correlation between true and posterior-mean values, the coverage of the credible intervals, and the
confusion matrix of model recovery (the model of highest evidence per subject), with figures.

The work is split into tasks (a chunk of subjects of one generating model each), each seeded from
``(seed, model, chunk)``: the same results whichever runner runs them. ``InProcess()`` runs them in a loop; ``Ray()``
runs them on Ray (``ray.init()`` in this process, local workers, unless given the ``address`` of a cluster). A task
that fails is reported in ``RecoveryReport.failures`` and the others go on. A tqdm bar counts the tasks.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import torch
from torch.distributions import biject_to
from tqdm.auto import tqdm

import aif
from aif.checks import check_choice, check_index
from aif.errors import ParameterError, StrategyError

from . import bayes
from .fit import ChoiceLikelihood, choice_likelihood
from .model import TabularModel


@dataclass(frozen=True, eq=False)
class AgentModel:
    """A candidate model of how subjects choose.

    Attributes:
        name: the model's name in reports.
        model: the ``TabularModel`` (unbatched) of the fixed values.
        priors: name -> Pyro distribution over one subject's value (``aif_deep.bayes``): the parameters fitted.
        settings: the other keyword arguments of ``aif_deep.fit.choice_likelihood`` (``alpha``, ``inference``,
            ``efe_terms``, ``learning``, ``custom``, ...).
    """

    name: str
    model: TabularModel
    priors: dict
    settings: dict = field(default_factory=dict)

    def likelihood(self, observations: Any, actions: Any) -> ChoiceLikelihood:
        """The choice likelihood of these subjects' data under this model."""
        return choice_likelihood(self.model, observations, actions, **self.settings)


def simulate(agent_model: AgentModel, values: dict, env: Callable[[], Any], trials: int, steps: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Choices of ``N`` subjects with the parameter ``values`` (name -> ``(N, ...)``), each an ``aif.Agent`` (learning
    across its trials with the model's ``learning``) in its own ``env()``, stochastic selection as the likelihood
    assumes.

    Returns:
        observations ``(N, trials, steps + 1, M)`` and actions ``(N, trials, steps, F)``; ``-1`` after an episode
        ended early.
    """
    N = len(next(iter(values.values())))
    m = agent_model.model
    blank_obs = np.zeros((N, 1, 1, m.num_modalities), dtype=np.int64)
    like = agent_model.likelihood(blank_obs, np.zeros((N, 1, 1, m.num_factors), dtype=np.int64))
    values = {k: torch.as_tensor(v, dtype=m.dtype) for k, v in values.items()}
    with torch.no_grad():
        batched, scalars = like.build(bayes.natural(like, values))
    obs_all = np.full((N, trials, steps + 1, m.num_modalities), -1, dtype=np.int64)
    act_all = np.full((N, trials, steps, m.num_factors), -1, dtype=np.int64)
    for i in range(N):
        learning = None if like.learning is None else replace(
            like.learning, lr=float(scalars["lr"][i]), forgetting=float(scalars["forgetting"][i]))
        agent = aif.Agent(batched.to_aif((i,)), gamma=float(scalars["gamma"][i]), alpha=float(scalars["alpha"][i]),
                          policies=like.policies, inference=like.inference, efe=like.efe, efe_terms=like.efe_terms,
                          selection=aif.Selection("stochastic", like.sampling), learning=learning, rng=rng)
        world = env()
        for k in range(trials):
            run = aif.rollout(agent, world, steps, seed=int(rng.integers(2**31 - 1)), progress=False)
            if learning is not None and not learning.online:
                agent.learn()  # offline learning: the trial's counts at its end
            observed = cast(np.ndarray, run.observations)  # index observations: every model here is tabular
            obs_all[i, k, :len(observed)] = observed
            act_all[i, k, :len(run.actions)] = run.actions
    return obs_all, act_all


# ----------------------------------------------------------------------------------------------------------
# Runners


@dataclass(frozen=True)
class InProcess:
    """Run the tasks one after another in this process."""


@dataclass(frozen=True)
class Ray:
    """Run the tasks on Ray.

    Attributes:
        address: a cluster's address (``"ray://host:10001"``, ``"auto"``); ``None`` starts Ray in this process with
            local workers (nothing to set up), whose Python path is this process's (so that they import what it
            imports).
        num_cpus: local workers' CPUs (``None``: all); ignored with an address.
        shutdown: shut Ray down after the study (when this call started it).
    """

    address: str | None = None
    num_cpus: int | None = None
    shutdown: bool = False


@dataclass(frozen=True)
class Failure:
    """A task that raised: its index, the exception's type and message, and the traceback."""

    task: int
    error: str
    traceback: str


def _guarded(fn: Callable[[Any], Any], task: Any, index: int) -> Any:
    """``fn(task)``, or a ``Failure`` naming what it raised."""
    try:
        return fn(task)
    except Exception as error:  # one subject's failure must not lose the others
        return Failure(index, f"{type(error).__name__}: {error}", traceback.format_exc())


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], runner: InProcess | Ray | None = None,
              progress: bool = True) -> list:
    """``[fn(task) for task in tasks]`` on the ``runner``, in task order; a task that raises gives a ``Failure``."""
    runner = InProcess() if runner is None else runner
    bar = tqdm(total=len(tasks), disable=not progress, desc="tasks", unit="task", leave=False)
    results: list = [None] * len(tasks)
    if isinstance(runner, InProcess):
        for i, task in enumerate(tasks):
            results[i] = _guarded(fn, task, i)
            bar.update()
        bar.close()
        return results
    if not isinstance(runner, Ray):
        raise StrategyError(f"runner must be InProcess() or Ray(...), got {runner!r}")
    import ray

    started = not ray.is_initialized()
    if started:
        if runner.address is None:
            path = os.pathsep.join(p for p in sys.path if p)
            ray.init(num_cpus=runner.num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
        else:
            ray.init(address=runner.address, log_to_driver=False)
    try:
        remote = ray.remote(_guarded)
        refs = [remote.remote(fn, task, i) for i, task in enumerate(tasks)]
        index = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    results[index[ref]] = ray.get(ref)
                except Exception as error:  # the worker died, or the task could not be sent
                    results[index[ref]] = Failure(index[ref], f"{type(error).__name__}: {error}", "")
                bar.update()
        bar.close()
        return results
    finally:
        if started and runner.shutdown:
            ray.shutdown()


# ----------------------------------------------------------------------------------------------------------
# The study


NUTS_OPTIONS = {"num_samples", "warmup", "chains", "target_accept", "max_tree_depth"}


@dataclass(frozen=True)
class _Task:
    models: tuple
    generating: int
    values: dict
    env: Callable[[], Any]
    trials: int
    steps: int
    seed: tuple
    level: float
    posterior: str = "laplace"
    nuts: dict = field(default_factory=dict)


def _fit_task(task: _Task) -> dict:
    """Simulate one chunk of subjects of one generating model and fit every candidate to them (Laplace; or NUTS
    from Laplace's mode, with the log evidence by bridge sampling from its draws)."""
    torch.set_num_threads(1)  # small tensors; the parallelism is across tasks
    rng = np.random.default_rng(list(task.seed))
    obs, act = simulate(task.models[task.generating], task.values, task.env, task.trials, task.steps, rng)
    fits = []
    seed = int(task.seed[-1])
    for model in task.models:
        like = model.likelihood(obs, act)
        post = bayes.laplace(like, model.priors, num_draws=1000, seed=seed)
        evidence = cast(torch.Tensor, post.log_evidence)
        if task.posterior == "nuts":
            post = bayes.nuts(like, model.priors, init=post.mode, seed=seed, **task.nuts)
            evidence = bayes.bridge_sampling(like, model.priors, post, seed=seed).log_evidence
        intervals = {k: post.interval(k, task.level) for k in model.priors}
        fits.append({"mean": {k: post.mean(k).numpy() for k in model.priors},
                     "lower": {k: v[0].numpy() for k, v in intervals.items()},
                     "upper": {k: v[1].numpy() for k, v in intervals.items()},
                     "log_evidence": evidence.numpy(), "correlation": posterior_correlations(post, model.priors)})
    return {"generating": task.generating, "values": task.values, "fits": fits}


def posterior_correlations(post: bayes.Posterior, priors: dict) -> dict:
    """Each subject's posterior correlation between every pair of scalar parameters: ``"a~b"`` -> ``(N,)``.

    Computed from the draws in the unconstrained space of each prior's support (log for positive parameters, logit
    for fractions), where a Laplace posterior is Gaussian; a correlation near +-1 means that the choices identify
    one combination of the two parameters (a ridge in the likelihood), not each of them.
    """
    scalars = [n for n in priors if post.samples[n].ndim == 3]  # (chains, draws, N): one number per subject
    z = {n: biject_to(priors[n].support).inv(post.samples[n].flatten(0, 1)) for n in scalars}  # (draws, N)
    out = {}
    for i, a in enumerate(scalars):
        for b in scalars[i + 1:]:
            x, y = z[a] - z[a].mean(0), z[b] - z[b].mean(0)
            out[f"{a}~{b}"] = ((x * y).mean(0) / (x.std(0, unbiased=False) * y.std(0, unbiased=False))).numpy()
    return out


@dataclass(frozen=True, eq=False)
class RecoveryReport:
    """What a recovery study found.

    Attributes:
        names: the candidate models' names.
        truth, estimate, lower, upper: ``[g][parameter]`` -> ``(n_g,)``: the true values of generating model ``g``'s
            subjects, and their posterior means and credible-interval bounds under model ``g`` itself.
        log_evidence: ``[g]`` -> ``(n_g, K)``: every subject's log evidence under every candidate model.
        correlation, coverage: ``[g][parameter]``: Pearson's r of truth and posterior mean; the fraction of subjects
            whose interval holds the truth.
        confusion: ``(G, K)``: the fraction of generating model ``g``'s subjects whose highest evidence is model k.
        failures: the tasks that failed (the others are reported).
        level: the credible intervals' probability.
        posterior_correlation: ``[g]`` -> ``"a~b"`` -> ``(n_g,)``: each subject's posterior correlation of every pair
            of scalar parameters under model ``g`` (``posterior_correlations``).
    """

    names: list
    truth: list
    estimate: list
    lower: list
    upper: list
    log_evidence: list
    correlation: list
    coverage: list
    confusion: np.ndarray
    failures: list
    level: float
    posterior_correlation: list = field(default_factory=list)

    def table(self) -> str:
        """The correlations, coverages and the confusion matrix as Markdown."""
        lines = ["| generating model | parameter | subjects | r(true, posterior mean) | coverage of the "
                 f"{self.level:.0%} interval |", "|---|---|---|---|---|"]
        for g, name in enumerate(self.names[:len(self.truth)]):
            for p in self.truth[g]:
                lines.append(f"| {name} | {p} | {len(self.truth[g][p])} | {self.correlation[g][p]:.3f} | "
                             f"{self.coverage[g][p]:.2f} |")
        pairs = [(self.names[g], pair, r) for g, rs in enumerate(self.posterior_correlation) for pair, r in rs.items()]
        if pairs:
            lines += ["", "| model | parameters | median posterior correlation (unconstrained) | 10% | 90% |",
                      "|---|---|---|---|---|"]
            lines += [f"| {m} | {pair} | {np.median(r):.2f} | {np.quantile(r, 0.1):.2f} | {np.quantile(r, 0.9):.2f} |"
                      for m, pair, r in pairs if len(r)]
        lines += ["", "| generating \\ recovered | " + " | ".join(self.names) + " |",
                  "|---" * (len(self.names) + 1) + "|"]
        for g, row in enumerate(self.confusion):
            lines.append(f"| {self.names[g]} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
        return "\n".join(lines)

    def plot(self, prefix: str) -> list[str]:
        """Scatter plots of truth against posterior mean (with intervals) per generating model, and the confusion
        matrix, saved as ``{prefix}_parameters.png`` and ``{prefix}_models.png``; returns the paths."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = [(g, p) for g in range(len(self.truth)) for p in self.truth[g]]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
        for ax, (g, p) in zip(axes[0], panels, strict=True):
            t, e = self.truth[g][p], self.estimate[g][p]
            ax.errorbar(t, e, yerr=[e - self.lower[g][p], self.upper[g][p] - e], fmt="o", ms=3, alpha=0.6, lw=0.8)
            lo, hi = min(t.min(), e.min()), max(t.max(), e.max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set(xlabel=f"true {p}", ylabel="posterior mean",
                   title=f"{self.names[g]}: r = {self.correlation[g][p]:.2f}, cover {self.coverage[g][p]:.2f}")
        fig.tight_layout()
        paths = [f"{prefix}_parameters.png", f"{prefix}_models.png"]
        fig.savefig(paths[0], dpi=120)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(self.names), 1.2 + 1.0 * len(self.confusion)))
        ax.imshow(self.confusion, vmin=0, vmax=1, cmap="Blues")
        for (g, k), x in np.ndenumerate(self.confusion):
            ax.text(k, g, f"{x:.2f}", ha="center", va="center")
        ax.set(xticks=range(len(self.names)), xticklabels=self.names, yticks=range(len(self.confusion)),
               yticklabels=self.names[:len(self.confusion)], xlabel="recovered (highest evidence)",
               ylabel="generating")
        fig.tight_layout()
        fig.savefig(paths[1], dpi=120)
        plt.close(fig)
        return paths


def recover(models: Sequence[AgentModel], truths: Sequence[dict], env: Callable[[], Any], trials: int, steps: int,
            *, seed: int = 0, chunk: int = 10, level: float = 0.9, runner: InProcess | Ray | None = None,
            progress: bool = True, posterior: str = "laplace", nuts: dict | None = None) -> RecoveryReport:
    """Simulate, fit and report a parameter and model recovery study.

    Args:
        models: the candidate models (``AgentModel``); the first ``len(truths)`` also generate data.
        truths: one per generating model: parameter name -> ``(n_g,)`` (or ``(n_g, ...)``) true values of its
            subjects (every name of that model's priors).
        env: makes one environment (a Gymnasium env with the models' observations and actions) per subject.
        trials, steps: trials per subject and actions per trial.
        seed: the study's seed; task ``(g, chunk j)`` draws from ``np.random.default_rng([seed, g, j])``.
        chunk: subjects per task (fitted as one batch).
        level: the credible intervals' probability.
        runner: ``InProcess()`` (default) or ``Ray(...)``; the results are the same.
        progress: a progress bar over the tasks.
        posterior: ``"laplace"`` (each subject's Laplace posterior and evidence) or ``"nuts"`` (``bayes.nuts`` started
            at Laplace's mode: the exact posterior's means and intervals, and the log evidence by
            ``bayes.bridge_sampling`` from its draws; some ten times Laplace's cost).
        nuts: ``bayes.nuts``'s options with ``posterior="nuts"`` (``num_samples``, ``warmup``, ``chains``, ...).
    """
    models = list(models)
    if not models or not all(isinstance(m, AgentModel) for m in models):
        raise ParameterError("models must be a non-empty list of AgentModel")
    if not 1 <= len(truths) <= len(models):
        raise ParameterError(f"give the true values of 1 to {len(models)} generating models, got {len(truths)}")
    trials, steps, chunk = check_index(trials, "trials"), check_index(steps, "steps"), check_index(chunk, "chunk")
    check_choice(posterior, "posterior", ("laplace", "nuts"))
    if nuts is not None and (posterior != "nuts" or not isinstance(nuts, dict)
                             or not set(nuts) <= NUTS_OPTIONS):
        raise ParameterError(f"nuts takes a dict of bayes.nuts options ({', '.join(sorted(NUTS_OPTIONS))}) with "
                             f"posterior='nuts', got {nuts!r:.200} with posterior={posterior!r}")
    tasks = []
    for g, values in enumerate(truths):
        missing = set(models[g].priors) - set(values)
        if missing:
            raise ParameterError(f"truths[{g}] lacks {sorted(missing)}, fitted by model {models[g].name!r}")
        n = len(next(iter(values.values())))
        for j, start in enumerate(range(0, n, chunk)):
            part = {k: np.asarray(v)[start:start + chunk] for k, v in values.items()}
            tasks.append(_Task(tuple(models), g, part, env, trials, steps, (seed, g, j), level, posterior,
                               dict(nuts or {})))
    results = run_tasks(_fit_task, tasks, runner, progress)
    failures = [r for r in results if isinstance(r, Failure)]
    done = [r for r in results if not isinstance(r, Failure)]
    K = len(models)
    truth, estimate, lower, upper, evidence, corr, cover, post_corr = [], [], [], [], [], [], [], []
    confusion = np.zeros((len(truths), K))
    for g in range(len(truths)):
        mine = [r for r in done if r["generating"] == g]
        names = list(models[g].priors)
        cat = lambda key, p, rs=mine: np.concatenate([r["fits"][g][key][p] for r in rs]) if rs else np.zeros(0)  # noqa: E731
        truth.append({p: np.concatenate([r["values"][p] for r in mine]) if mine else np.zeros(0) for p in names})
        estimate.append({p: cat("mean", p) for p in names})
        lower.append({p: cat("lower", p) for p in names})
        upper.append({p: cat("upper", p) for p in names})
        pairs = mine[0]["fits"][g]["correlation"] if mine else {}
        post_corr.append({pair: np.concatenate([r["fits"][g]["correlation"][pair] for r in mine]) for pair in pairs})
        L = np.stack([np.concatenate([r["fits"][k]["log_evidence"] for r in mine]) for k in range(K)], 1) \
            if mine else np.zeros((0, K))
        evidence.append(L)
        corr.append({p: float(np.corrcoef(truth[g][p], estimate[g][p])[0, 1]) if len(truth[g][p]) > 1 else np.nan
                     for p in names})
        cover.append({p: float(((lower[g][p] <= truth[g][p]) & (truth[g][p] <= upper[g][p])).mean())
                      if len(truth[g][p]) else np.nan for p in names})
        if len(L):
            confusion[g] = np.bincount(L.argmax(1), minlength=K) / len(L)
    return RecoveryReport(names=[m.name for m in models], truth=truth, estimate=estimate, lower=lower, upper=upper,
                          log_evidence=evidence, correlation=corr, coverage=cover, confusion=confusion,
                          failures=failures, level=level, posterior_correlation=post_corr)
