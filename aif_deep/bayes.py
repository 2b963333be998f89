r"""Posteriors over agents' parameters given their choices, with Pyro: Laplace, SVI and NUTS; groups; evidence.

The likelihood is ``aif_deep.fit.ChoiceLikelihood`` (agents that learn or not, all subjects in one batch); the
priors are stated explicitly, one Pyro distribution per parameter and subject (``priors``: name -> distribution
over one subject's constrained value: ``gamma`` ``()``, ``C[m]`` ``(O_m,)``, ``D[f]`` ``(S_f,)`` on the simplex,
``A[m]`` with the outcome axis *last* ``(*S_deps, O_m)`` so that a ``Dirichlet`` prior covers its columns, ``B[f]``
likewise ``(*S_deps, U_f, S_f)``, a custom parameter its own shape). Subjects sit in a ``pyro.plate``.

- ``laplace``: the MAP (Newton steps per subject) in the unconstrained space of each prior's support
  (``torch.distributions.biject_to``, Jacobian included), then a Gaussian with the inverse Hessian of
  ``-ln p(choices, z)`` there. Subjects are independent, so the Hessian is block diagonal: ``d`` double-backward
  passes give every subject's ``d x d`` block at once. Log evidence per subject:
  ``ln p(y, z*) + d/2 ln 2 pi - 1/2 ln det H``.
- ``svi``: stochastic variational inference with ``AutoNormal`` (per-subject ELBO, which decomposes) or
  ``AutoMultivariateNormal``.
- ``nuts``: the No-U-Turn sampler, chains run one after the other from their own seeds (R-hat needs two or more).
- ``hierarchical_model`` with ``GroupPrior``: group means and spreads over subjects (non-centred), fitted by
  ``svi`` or ``nuts``; ``empirical_bayes``: the same group by EM over Laplace posteriors, its E-step in chunks of
  subjects that can run on Ray.
- ``bridge_sampling``: each subject's log evidence from NUTS draws by bridge sampling (Meng & Wong's iterative
  estimator with a Gaussian proposal fitted to half of the draws, as in Gronau et al.'s ``bridgesampling``), with
  its approximate error: where Laplace's Gaussian is not close enough for model comparison.

Every result is a ``Posterior``: draws of the constrained values per subject, ``to_arviz()`` (an ArviZ
``InferenceData`` with a ``subject`` dimension) and ``summary()`` (means, intervals, R-hat, effective sample size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.infer import MCMC, NUTS, SVI, Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal, init_to_median, init_to_value
from torch.distributions import biject_to, constraints

from aif.checks import check_choice, check_index, check_positive
from aif.errors import ParameterError

from .fit import ChoiceLikelihood, parse_name

Tensor = torch.Tensor
MAX_STEP = 2.0  # the longest Newton step in the unconstrained space (e.g. a factor e^2 in gamma)
ROUND_OFF = 1e-12  # relative round-off of a potential (a sum over hundreds of choices, each through learning steps)
STAR = (-4.5, -3.0, -1.5, 1.5, 3.0, 4.5)  # laplace's screened start: prior standard deviations along each coordinate


# ----------------------------------------------------------------------------------------------------------
# Priors and the values they give the likelihood


def event_shape(like: ChoiceLikelihood, name: str) -> tuple[int, ...] | None:
    """One subject's shape of ``name`` as a prior sees it (``None`` for a custom parameter: any shape)."""
    if name in like.custom:
        return None
    kind, index = parse_name(name, like.model)
    if not index:
        return ()
    x = getattr(like.model, kind)[index[0]][0]  # one subject's array
    return tuple(x.shape) if kind in "CD" else tuple(x.movedim(0, -1).shape)  # A, B: outcomes / next states last


def check_priors(like: ChoiceLikelihood, priors: dict) -> dict:
    """``priors`` as a checked dict: Pyro distributions, one per name the likelihood takes, of its event shape."""
    if not isinstance(priors, dict) or not priors:
        raise ParameterError(f"priors must be a non-empty dict name -> pyro distribution, got {priors!r:.200}")
    like.check_names(list(priors))
    for name, prior in priors.items():
        if not (isinstance(prior, torch.distributions.Distribution) and isinstance(prior, TorchDistributionMixin)):
            raise ParameterError(f"the prior of {name!r} must be a pyro.distributions distribution (such as "
                                 f"dist.LogNormal), got {type(prior).__name__}")
        shape = event_shape(like, name)
        if prior.batch_shape != () or (shape is not None and tuple(prior.event_shape) != shape):
            raise ParameterError(f"the prior of {name!r} has batch shape {tuple(prior.batch_shape)} and event shape "
                                 f"{tuple(prior.event_shape)}; it must describe one subject: batch shape () and "
                                 f"event shape {shape} (use .to_event() for a vector)")
    return dict(priors)


def natural(like: ChoiceLikelihood, values: dict) -> dict:
    """The values as the likelihood takes them: ``A``/``B`` arrays with their outcome / next-state axis moved back
    from last to right after the subject axis; the rest as they are."""
    out = {}
    for name, x in values.items():
        kind = name if name in like.custom else parse_name(name, like.model)[0]
        out[name] = x.movedim(-1, 1) if kind in ("A", "B") else x
    return out


def subjects_model(like: ChoiceLikelihood, priors: dict) -> Callable[[], None]:
    """The Pyro model of independent subjects: ``theta_i ~ prior``, ``choices_i ~ like(theta_i)``."""
    priors = check_priors(like, priors)

    def model() -> None:
        with pyro.plate("subjects", like.num_subjects):
            values = {name: pyro.sample(name, prior) for name, prior in priors.items()}
            pyro.factor("choices", like(natural(like, values)))

    return model


@dataclass(frozen=True)
class GroupPrior:
    """A scalar parameter drawn per subject around a group mean (non-centred, which NUTS prefers):

        x_i = link(mu + sigma * z_i),  z_i ~ N(0, 1),  mu ~ N(loc, scale),  sigma ~ HalfNormal(spread)

    Attributes:
        loc, scale: the normal prior of the group mean ``mu`` in the unconstrained space.
        spread: the scale of the half-normal prior of the group's standard deviation ``sigma``.
        support: the parameter's constraint (``constraints.positive`` for ``gamma``, ``lr``; ``unit_interval`` for
            ``forgetting``; ``real`` for a custom strength); ``link = biject_to(support)`` (exp, logistic, identity).
    """

    loc: float = 0.0
    scale: float = 1.0
    spread: float = 1.0
    support: Any = constraints.positive

    def __post_init__(self) -> None:
        check_positive(self.scale, "GroupPrior.scale")
        check_positive(self.spread, "GroupPrior.spread")
        if not isinstance(self.support, constraints.Constraint) or self.support.event_dim != 0:
            raise ParameterError(f"GroupPrior.support must be a scalar torch constraint, got {self.support!r}")


def hierarchical_model(like: ChoiceLikelihood, group: dict) -> Callable[[], None]:
    """The Pyro model of a group: ``GroupPrior`` per scalar parameter (sites ``{name}_mu``, ``{name}_sigma``,
    ``{name}_z`` and the subjects' values ``{name}`` as deterministic sites)."""
    if not isinstance(group, dict) or not group or not all(isinstance(g, GroupPrior) for g in group.values()):
        raise ParameterError(f"group must be a non-empty dict name -> GroupPrior, got {group!r:.200}")
    like.check_names(list(group))
    for name in group:
        if event_shape(like, name) not in ((), None):
            raise ParameterError(f"GroupPrior is for scalar parameters; {name!r} has shape {event_shape(like, name)}")
    dtype = like.model.dtype

    def model() -> None:
        top = {}
        for name, g in group.items():
            mu = pyro.sample(f"{name}_mu", dist.Normal(torch.tensor(g.loc, dtype=dtype), g.scale))
            sigma = pyro.sample(f"{name}_sigma", dist.HalfNormal(torch.tensor(g.spread, dtype=dtype)))
            top[name] = (mu, sigma)
        with pyro.plate("subjects", like.num_subjects):
            values = {}
            for name, g in group.items():
                mu, sigma = top[name]
                z = pyro.sample(f"{name}_z", dist.Normal(torch.zeros((), dtype=dtype), 1.0))
                values[name] = pyro.deterministic(name, biject_to(g.support)(mu + sigma * z))
            pyro.factor("choices", like(values))

    return model


def group_values(group: dict, draws: dict) -> dict:
    """The subjects' values ``{name}: (..., N)`` from draws of ``{name}_mu``, ``{name}_sigma`` and ``{name}_z``."""
    return {name: biject_to(g.support)(draws[f"{name}_mu"][..., None] + draws[f"{name}_sigma"][..., None]
                                       * draws[f"{name}_z"]) for name, g in group.items()}


# ----------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, eq=False)
class Posterior:
    """Draws from a posterior over each subject's parameters.

    Attributes:
        samples: name -> ``(chains, draws, N, *event)`` tensors of constrained values (the subjects' values; with a
            group, also the group-level ``{name}_mu`` and ``{name}_sigma``: ``(chains, draws)``).
        method: ``"laplace"``, ``"svi"`` or ``"nuts"``.
        log_evidence: ``(N,)``: ln p(choices) per subject (Laplace's approximation, or the per-subject ELBO of a
            mean-field SVI fit), or ``None`` where it does not decompose by subject.
        elbo: the total ELBO (SVI) or the summed Laplace log evidence; ``None`` for NUTS.
        mode: name -> ``(N, *event)``: the MAP (Laplace) or the guide's median (SVI); empty for NUTS.
        info: method details (Laplace: the Hessian blocks ``H`` ``(N, d, d)``; NUTS: acceptance, divergences).
    """

    samples: dict
    method: str
    log_evidence: Tensor | None = None
    elbo: float | None = None
    mode: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def mean(self, name: str) -> Tensor:
        """``(N, *event)``: the posterior mean of ``name``."""
        return self.samples[name].mean((0, 1))

    def interval(self, name: str, level: float = 0.9) -> tuple[Tensor, Tensor]:
        """The central ``level`` credible interval of ``name``: ``(lower, upper)``, each ``(N, *event)``."""
        if not 0 < level < 1:
            raise ParameterError(f"level must be in (0, 1), got {level!r}")
        x = self.samples[name].flatten(0, 1)
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=x.dtype)
        lower, upper = torch.quantile(x, q, dim=0)
        return lower, upper

    def to_arviz(self) -> Any:
        """An ArviZ ``InferenceData``: the draws, a ``subject`` dimension after chain and draw."""
        import arviz as az

        posterior, dims = {}, {}
        for name, x in self.samples.items():
            posterior[name] = x.detach().cpu().numpy()
            if x.ndim > 2:
                dims[name] = ["subject"] + [f"{name}_dim_{i}" for i in range(x.ndim - 3)]
        return az.from_dict(posterior=posterior, dims=dims)

    def summary(self, level: float = 0.9) -> Any:
        """ArviZ's summary table (mean, sd, highest-density interval at ``level``, R-hat, bulk and tail ESS)."""
        import arviz as az

        return az.summary(self.to_arviz(), hdi_prob=level)


# ----------------------------------------------------------------------------------------------------------
# Laplace


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Torch's global RNG (which Pyro draws from) forked and seeded: the caller's RNG state is restored after."""
    check_index(seed, "seed")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class _Flat:
    """Each subject's parameters as one unconstrained vector ``z: (N, d)``, and back."""

    def __init__(self, like: ChoiceLikelihood, priors: dict, links: dict | None = None) -> None:
        self.like, self.priors, self.N = like, priors, like.num_subjects
        # The unconstrained space of each prior's support, unless given (a TransformedDistribution reports the
        # codomain of its last transform, which for biject_to(positive) is the real line).
        self.links = {name: biject_to(p.support) for name, p in priors.items()} if links is None else links
        self.shapes = {name: tuple(self.links[name].inverse_shape(p.event_shape)) for name, p in priors.items()}
        self.sizes = {name: math.prod(s) for name, s in self.shapes.items()}
        self.d = sum(self.sizes.values())

    def start(self) -> Tensor:
        """``(N, d)``: every subject at the prior mean where it is finite (else the origin), unconstrained."""
        dtype = self.like.model.dtype
        parts = []
        for name, prior in self.priors.items():
            try:
                mean = prior.mean.to(dtype)
                z = self.links[name].inv(mean) if torch.isfinite(mean).all() else None
            except NotImplementedError:
                z = None
            z = torch.zeros(self.shapes[name], dtype=dtype) if z is None or not torch.isfinite(z).all() else z
            parts.append(z.reshape(1, -1).expand(self.N, -1))
        return torch.cat(parts, 1).clone()

    def screened_start(self, steps: tuple[float, ...] = STAR, draws: int = 512, seed: int = 0) -> Tensor:
        """``(N, d)``: each subject's start for Newton's method, the point of lowest potential among the prior mean
        (``start``) and a star around it: each coordinate alone moved by ``steps`` times its prior's standard
        deviation in the unconstrained space (from ``draws`` draws of the prior, no likelihood). A posterior with a
        second mode far from the prior's centre (a learning agent's forgetting near 1, say) is then entered from
        its better side; ``len(steps) * d`` batched likelihood evaluations."""
        centre = self.start()
        if not steps:
            return centre
        with torch.no_grad(), _seeded(seed):
            prior = {name: p.sample((draws,)).to(centre.dtype) for name, p in self.priors.items()}
            spread = self.join({name: x.unsqueeze(1) for name, x in prior.items()})[:, 0].std(0)  # (d,)
        best, best_u = centre, self.potential(centre).detach()
        with torch.no_grad():
            for i in range(self.d):
                for step in steps:
                    z = centre.clone()
                    z[:, i] = z[:, i] + step * spread[i]
                    u = self.potential(z)
                    better = torch.isfinite(u) & (u < best_u)
                    best = torch.where(better[:, None], z, best)
                    best_u = torch.where(better, u, best_u)
        return best.clone()

    def split(self, z: Tensor) -> tuple[dict, Tensor]:
        """``z: (..., N, d)`` -> (constrained values ``(..., N, *event)``, ``ln |dx/dz|``: ``(..., N)``)."""
        values, log_jac, k = {}, torch.zeros(z.shape[:-1], dtype=z.dtype), 0
        for name, link in self.links.items():
            u = z[..., k:k + self.sizes[name]].reshape(*z.shape[:-1], *self.shapes[name])
            k += self.sizes[name]
            values[name] = x = link(u)
            log_jac = log_jac + link.log_abs_det_jacobian(u, x).reshape(*z.shape[:-1], -1).sum(-1)
        return values, log_jac

    def join(self, values: dict) -> Tensor:
        """Constrained values ``(..., N, *event)`` per name -> ``z: (..., N, d)`` (``split``'s inverse)."""
        parts = []
        for name, link in self.links.items():
            x = values[name]
            u = link.inv(x)
            parts.append(u.reshape(*u.shape[:u.ndim - len(self.shapes[name])], -1))
        return torch.cat(parts, -1)

    def potential(self, z: Tensor) -> Tensor:
        """``(N,)``: ``-ln p(choices_i, z_i)``, prior and Jacobian included."""
        values, log_jac = self.split(z)
        log_prior = sum(p.log_prob(values[name]) for name, p in self.priors.items())
        return -(self.like(natural(self.like, values)) + log_prior + log_jac)


def _blocks(flat: _Flat, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """At ``z: (N, d)``: the potentials ``U: (N,)``, their gradients ``(N, d)`` and Hessian blocks ``(N, d, d)``.

    Subjects are independent: d(sum_i U_i)/dz_i = dU_i/dz_i, so one double-backward pass per coordinate j gives
    row j of every subject's Hessian block at once (``d`` passes in all, whatever ``N``).
    """
    z = z.detach().requires_grad_()
    U = flat.potential(z)
    (grad,) = torch.autograd.grad(U.sum(), z, create_graph=True)
    rows = [torch.autograd.grad(grad[:, j].sum(), z, retain_graph=j + 1 < flat.d)[0] for j in range(flat.d)]
    H = torch.stack(rows, 1).detach()  # (N, d, d)
    return U.detach(), grad.detach(), (H + H.transpose(1, 2)) / 2


def _newton(flat: _Flat, z: Tensor, max_iter: int, tol: float) -> Tensor:
    """Every subject's MAP at once by damped Newton steps on its own ``d x d`` Hessian block, ``z: (N, d)``.

    Each step solves ``|H_i| s_i = g_i`` (the eigenvalues' absolute values, floored at 1e-6, so that a step goes
    downhill where ``H_i`` is not yet positive definite), is shortened to ``MAX_STEP`` at most, and each subject's
    step length is halved until its potential falls by a tenth of the decrease the step predicts (Armijo): subjects
    share the batched likelihood evaluations but not their step lengths. A subject stops when its largest gradient
    entry is below ``tol``, or when no step length satisfies Armijo: its point would not change in later iterations
    either (the same point gives the same step), so it stops there instead of costing every later iteration a full
    line search. The line search gives up on a subject at once when the decrease it asks for is below the
    potential's round-off (``ROUND_OFF * (1 + |U|)``), which is where a subject within round-off of its optimum
    but with a gradient entry still above ``tol`` used to halve its step 30 times in every iteration.
    """
    stalled = torch.zeros(z.shape[0], dtype=torch.bool)
    for _ in range(max_iter):
        U, g, H = _blocks(flat, z)
        active = (g.abs().amax(1) > tol) & ~stalled
        if not active.any():
            break
        lam, V = torch.linalg.eigh(H)
        step = V @ ((V.transpose(1, 2) @ g[..., None]) / lam.abs().clamp_min(1e-6)[..., None])  # (N, d, 1)
        step = torch.where(active[:, None], step[..., 0], 0.0)
        step = step * (MAX_STEP / step.norm(dim=1, keepdim=True).clamp_min(MAX_STEP))  # a trust region
        slope = (g * step).sum(1)  # the predicted decrease per unit step length, >= 0
        t = torch.ones_like(U)
        noise = ROUND_OFF * (1 + U.abs())
        with torch.no_grad():
            for _ in range(30):
                trial = flat.potential(z - t[:, None] * step)
                ok = torch.isfinite(trial) & (trial <= U - 0.1 * t * slope)
                if (ok | (0.1 * t * slope <= noise)).all():
                    break
                t = torch.where(ok, t, t / 2)
            z = z - torch.where(ok, t, 0.0)[:, None] * step
        stalled |= active & ~ok
    return z.detach()


def laplace(like: ChoiceLikelihood, priors: dict, *, num_draws: int = 1000, max_iter: int = 200,
            seed: int = 0, tol: float = 1e-6, screen: bool = True) -> Posterior:
    """The Laplace posterior of each subject: the MAP, then a Gaussian with the inverse Hessian (autograd) there.

    All subjects are one batch: the MAP is found by Newton steps on each subject's own ``d x d`` Hessian block
    (``d`` parameters), computed for all subjects at once by ``d`` double-backward passes through the batched
    likelihood, with a step length per subject.

    Args:
        like: the choice likelihood (``aif_deep.fit.choice_likelihood``).
        priors: name -> Pyro distribution over one subject's constrained value (module docstring).
        num_draws: draws from the Gaussian, mapped to the constrained space, for means and intervals.
        max_iter: Newton iterations for the MAP at most.
        seed: for the draws.
        tol: a subject's MAP is reached when every entry of its gradient (unconstrained space) is below ``tol``.
        screen: start each subject's Newton steps at the best point of a star around the prior mean
            (``_Flat.screened_start``; ``6 d`` more batched likelihood evaluations), not at the prior mean itself: a
            learning agent's (lr, forgetting) posterior can have a second mode, hundreds of nats better, beyond a
            ridge that steps from the prior mean do not cross (benchmarks/fit_local_modes.py).

    Returns:
        ``Posterior`` with ``log_evidence`` ``(N,)``, ``mode`` the MAP, ``info["H"]`` the Hessian blocks ``(N, d, d)``,
        ``info["z"]`` the MAP in the unconstrained space ``(N, d)``, ``info["grad"]`` the gradient there ``(N, d)``.

    Raises:
        ParameterError: a subject's Hessian is not positive definite at the optimum (the MAP was not reached or
        the posterior is not locally Gaussian), naming the subjects.
    """
    flat = _Flat(like, check_priors(like, priors))
    num_draws, max_iter = check_index(num_draws, "num_draws"), check_index(max_iter, "max_iter")
    check_positive(tol, "tol")
    z_map = _newton(flat, flat.screened_start(seed=seed) if screen else flat.start(), max_iter, tol)
    U, grad, H = _blocks(flat, z_map)
    chol, bad = torch.linalg.cholesky_ex(H)
    if (bad > 0).any():
        raise ParameterError(f"the Hessian at the MAP is not positive definite for subject(s) "
                             f"{torch.nonzero(bad).flatten().tolist()}: the optimum was not reached or the posterior "
                             "is not locally Gaussian there")
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)
    log_evidence = -U + flat.d / 2 * math.log(2 * math.pi) - log_det / 2
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(num_draws, flat.N, flat.d, generator=gen, dtype=z_map.dtype)
    # z = z* + L^-T eps has covariance (L L^T)^-1 = H^-1
    offsets = torch.linalg.solve_triangular(chol.transpose(1, 2), eps.unsqueeze(-1), upper=True).squeeze(-1)
    draws, _ = flat.split(z_map + offsets)
    mode, _ = flat.split(z_map)
    return Posterior(samples={k: v[None] for k, v in draws.items()}, method="laplace", log_evidence=log_evidence,
                     elbo=float(log_evidence.sum()), mode=mode, info={"H": H, "z": z_map, "grad": grad})


# ----------------------------------------------------------------------------------------------------------
# Empirical Bayes: a group by expectation-maximisation over Laplace posteriors


@dataclass(frozen=True, eq=False)
class _EStep:
    """One group of subjects' E-step: their likelihood, the current group prior and where Newton starts."""

    like: ChoiceLikelihood
    priors: dict
    links: dict
    z: Tensor
    max_iter: int
    tol: float


def _e_step(task: _EStep) -> tuple[Tensor, Tensor, Tensor]:
    """The subjects' Laplace posteriors under the group prior: MAP ``(n, d)``, covariance ``(n, d, d)`` (both in the
    unconstrained space) and log evidence ``(n,)``."""
    flat = _Flat(task.like, task.priors, task.links)
    z = _newton(flat, task.z, task.max_iter, task.tol)
    U, _, H = _blocks(flat, z)
    chol, bad = torch.linalg.cholesky_ex(H)
    if (bad > 0).any():
        raise ParameterError(f"the Hessian at the MAP is not positive definite for subject(s) "
                             f"{torch.nonzero(bad).flatten().tolist()} of this group")
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)
    return z, torch.cholesky_inverse(chol), -U + flat.d / 2 * math.log(2 * math.pi) - log_det / 2


def empirical_bayes(like: ChoiceLikelihood, group: dict, *, iterations: int = 100, tol: float = 1e-4,
                    chunk: int | None = None, runner: Any = None, max_iter: int = 100, num_draws: int = 1000,
                    seed: int = 0) -> Posterior:
    """A group fitted by expectation-maximisation over Laplace posteriors (type-II maximum likelihood).

    Each scalar parameter ``name`` is ``link(x_i)`` with ``x_i ~ N(mu, sigma^2)`` over subjects (``link`` from its
    ``GroupPrior.support``; the Normal sits in the unconstrained space, as in ``hierarchical_model``). Iterate
    (Huys et al. 2011; SPM's empirical Bayes for a Gaussian group):

        E-step: every subject's Laplace posterior N(m_i, S_i) under the prior N(mu, sigma^2)   (``laplace``)
        M-step: mu = mean_i m_i,   sigma^2 = mean_i [(m_i - mu)^2 + S_i]                       (per parameter)

    until ``mu`` and ``sigma`` change by less than ``tol``. The E-step is independent across subjects: it runs in
    groups of ``chunk`` subjects as tasks on ``runner`` (``aif_deep.recovery.InProcess()`` or ``Ray(...)``; the
    results are the same), each Newton run starting from the previous iteration's MAP. ``mu`` and ``sigma`` are
    point estimates: ``GroupPrior.loc`` and ``GroupPrior.spread`` only start them (its ``scale`` is not used).

    Args:
        like: the choice likelihood of all subjects.
        group: name -> ``GroupPrior`` (scalar parameters).
        iterations: EM iterations at most; tol: the stopping change of ``mu`` and ``sigma``.
        chunk: subjects per E-step task (``None``: all in one).
        runner: ``InProcess()`` (default) or ``Ray(...)``.
        max_iter: Newton iterations per E-step; num_draws, seed: draws of the final Laplace posteriors.

    Returns:
        ``Posterior`` (method ``"empirical_bayes"``): the subjects' Laplace draws and log evidence ``(N,)`` of the
        last E-step (under a group prior within ``tol`` of the returned one when EM converged), ``mode`` the
        subjects' MAPs and the group's ``{name}_mu``, ``{name}_sigma``
        (0-d tensors), ``info["history"]``: ``(iterations, 2, d)`` the ``mu`` and ``sigma`` of each iteration.

    Raises:
        ParameterError: bad ``group``, or an E-step task failed (its error is named).
    """
    from .recovery import Failure, run_tasks  # recovery imports this module

    hierarchical_model(like, group)  # checks group: scalar parameters the likelihood takes
    iterations, max_iter = check_index(iterations, "iterations"), check_index(max_iter, "max_iter")
    check_positive(tol, "tol")
    N, dtype, names = like.num_subjects, like.model.dtype, list(group)
    chunk = N if chunk is None else check_index(chunk, "chunk")
    parts = [list(range(i, min(i + chunk, N))) for i in range(0, N, chunk)]
    likes = [like.subjects(p) if len(parts) > 1 else like for p in parts]
    mu = torch.tensor([float(g.loc) for g in group.values()], dtype=dtype)
    sigma = torch.tensor([float(g.spread) for g in group.values()], dtype=dtype)

    links = {n: biject_to(g.support) for n, g in group.items()}

    def priors_of(mu: Tensor, sigma: Tensor) -> dict:
        return {n: dist.TransformedDistribution(dist.Normal(mu[j], sigma[j]), [links[n]]) for j, n in enumerate(names)}

    z = mu.expand(N, -1).clone()
    history = []
    for _ in range(iterations):
        priors = priors_of(mu, sigma)
        tasks = [_EStep(sub, priors, links, z[p], max_iter, 1e-6) for sub, p in zip(likes, parts, strict=True)]
        results = run_tasks(_e_step, tasks, runner, progress=False)
        failed = [r for r in results if isinstance(r, Failure)]
        if failed:
            raise ParameterError(f"an E-step task failed (subjects {parts[failed[0].task][0]} to "
                                 f"{parts[failed[0].task][-1]}): {failed[0].error}")
        z = torch.cat([r[0] for r in results])
        cov = torch.cat([r[1] for r in results])
        log_evidence = torch.cat([r[2] for r in results])
        new_mu = z.mean(0)
        new_sigma = (((z - new_mu) ** 2).mean(0) + torch.diagonal(cov, dim1=1, dim2=2).mean(0)).sqrt()
        done = bool(((new_mu - mu).abs().max() < tol) & ((new_sigma - sigma).abs().max() < tol))
        mu, sigma = new_mu, new_sigma
        history.append(torch.stack([mu, sigma]))
        if done:
            break
    # The subjects' posteriors are the last E-step's (under a group prior within tol of mu and sigma, if converged).
    flat = _Flat(like, priors, links)
    eps = torch.randn(num_draws, N, flat.d, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    draws, _ = flat.split(z + (torch.linalg.cholesky(cov) @ eps.unsqueeze(-1)).squeeze(-1))
    mode, _ = flat.split(z)
    mode.update({f"{n}_{k}": x[j] for j, n in enumerate(names) for k, x in (("mu", mu), ("sigma", sigma))})
    return Posterior(samples={k: v[None] for k, v in draws.items()}, method="empirical_bayes",
                     log_evidence=log_evidence, elbo=float(log_evidence.sum()), mode=mode,
                     info={"history": torch.stack(history), "z": z, "cov": cov})


def group_init(post: Posterior, group: dict) -> dict:
    """Starting values for ``svi`` or ``nuts`` with ``group`` from an ``empirical_bayes`` fit of the same group: each
    ``{name}_mu``, ``{name}_sigma`` and the subjects' non-centred ``{name}_z = (m_i - mu) / sigma`` (``m_i`` the MAPs,
    unconstrained). Started from the hyperpriors instead, a mean-field SVI crawls along the ridge mu + sigma z_i =
    const and stops short of the group mean (benchmarks/results/fit_recovery.md)."""
    if post.method != "empirical_bayes" or list(group) != [n for n in post.mode if f"{n}_mu" in post.mode]:
        raise ParameterError("group_init needs the empirical_bayes posterior of this group (the same names, in order)")
    init = {}
    for j, name in enumerate(group):
        mu, sigma = post.mode[f"{name}_mu"], post.mode[f"{name}_sigma"]
        init.update({f"{name}_mu": mu, f"{name}_sigma": sigma, f"{name}_z": (post.info["z"][:, j] - mu) / sigma})
    return init


# ----------------------------------------------------------------------------------------------------------
# SVI and NUTS


def _model_of(like: ChoiceLikelihood, priors: dict | None, group: dict | None) -> tuple[Callable[[], None], list]:
    """The Pyro model and the names of the subjects' parameters, for exactly one of ``priors`` and ``group``."""
    if (priors is None) == (group is None):
        raise ParameterError("give priors (independent subjects) or group (a hierarchical model), one of them")
    if priors is not None:
        return subjects_model(like, priors), list(priors)
    return hierarchical_model(like, group or {}), list(group or {})


def _draws(like: ChoiceLikelihood, group: dict | None, draws: dict, names: list) -> dict:
    """Draws ``(chains, draws, ...)`` of the latent sites -> the Posterior's samples (subjects' values first)."""
    if group is None:
        return {name: draws[name] for name in names}
    values = group_values(group, draws)
    return {**values, **{f"{n}_{s}": draws[f"{n}_{s}"] for n in group for s in ("mu", "sigma")}}


def _start(init: dict | None) -> Any:
    """Pyro's init strategy: the given values (e.g. ``laplace(...).mode``) for the sites they name, the prior's
    median for the others."""
    if init is None:
        return init_to_median
    if not isinstance(init, dict):
        raise ParameterError(f"init must be a dict site name -> value (a Posterior's mode), got {init!r:.200}")
    return init_to_value(values={k: v.detach() for k, v in init.items()})


def svi(like: ChoiceLikelihood, priors: dict | None = None, *, group: dict | None = None, guide: str = "normal",
        steps: int = 1000, lr: float = 0.02, final_lr: float = 0.1, num_particles: int = 1, num_draws: int = 1000,
        elbo_particles: int = 64, init: dict | None = None, seed: int = 0) -> Posterior:
    """Stochastic variational inference (Pyro, Adam on ``Trace_ELBO``).

    Args:
        like: the choice likelihood.
        priors: name -> Pyro distribution (independent subjects), or ``group``: name -> ``GroupPrior``.
        guide: ``"normal"`` (``AutoNormal``, mean field: the ELBO decomposes by subject and ``log_evidence`` is
            returned per subject) or ``"mvn"`` (``AutoMultivariateNormal``: correlations, total ELBO only). The
            mean field understates the spread of group parameters, as it drops the correlations of the group mean
            with the subjects' offsets (notebook 14: s.d. of the group mean 0.039 against 0.099 with ``"mvn"`` and
            sigma / sqrt(N) = 0.104); use ``"mvn"`` or ``nuts`` for their intervals.
        steps, lr, num_particles: SVI steps, Adam's learning rate, ELBO particles per step.
        final_lr: the learning rate decays geometrically to ``final_lr * lr`` at the last step (so that the last
            iterate, which is the fit, is not one noisy step away from the optimum).
        num_draws: draws from the fitted guide.
        elbo_particles: particles of the final ELBO estimate.
        init: starting values of the guide's locations, site name -> value (e.g. ``laplace(...).mode``; the
            prior medians by default).
        seed: Pyro's randomness (torch's global RNG, forked: the caller's state is restored).
    """
    check_choice(guide, "guide", ("normal", "mvn"))
    steps, num_draws = check_index(steps, "steps"), check_index(num_draws, "num_draws")
    check_positive(lr, "lr")
    check_positive(final_lr, "final_lr")
    model, names = _model_of(like, priors, group)
    pyro.clear_param_store()
    with _seeded(seed):
        start = _start(init)
        auto = (AutoNormal(model, init_loc_fn=start, init_scale=0.05) if guide == "normal" else
                AutoMultivariateNormal(model, init_loc_fn=start, init_scale=0.05))
        engine = SVI(model, auto, pyro.optim.ClippedAdam({"lr": lr, "lrd": final_lr ** (1 / steps)}),
                     Trace_ELBO(num_particles=num_particles, vectorize_particles=False))
        history = np.array([engine.step() for _ in range(steps)])
        with torch.no_grad():
            latent = [pyro.poutine.trace(auto).get_trace() for _ in range(num_draws)]  # the guide alone: cheap
            sites = [n for n, s in latent[0].nodes.items() if s["type"] == "sample" and not s["is_observed"]]
            draws = {n: torch.stack([cast(Tensor, t.nodes[n]["value"]) for t in latent])[None] for n in sites}
            per_subject: Tensor | None = None
            if guide == "normal" and group is None:
                per_subject = _elbo_per_subject(model, auto, elbo_particles)
                total = float(per_subject.sum())
            else:
                total = float(-Trace_ELBO(num_particles=elbo_particles).loss(model, auto))
            median = auto.median()
    mode = {n: median[n] for n in names if n in median}
    return Posterior(samples=_draws(like, group, draws, names), method="svi", log_evidence=per_subject, elbo=total,
                     mode=mode, info={"loss": history})


def _elbo_per_subject(model: Callable, guide: Any, particles: int) -> Tensor:
    """``(N,)``: E_q[ln p(choices_i, theta_i) - ln q(theta_i)], averaged over ``particles`` draws; a mean-field
    guide over independent subjects makes the ELBO a sum of these."""
    total: Tensor | float = 0.0
    for _ in range(particles):
        g = pyro.poutine.trace(guide).get_trace()
        m = pyro.poutine.trace(pyro.poutine.replay(model, trace=g)).get_trace()
        g.compute_log_prob()
        m.compute_log_prob()
        lp = sum(s["log_prob"] for s in m.nodes.values() if s["type"] == "sample")
        lq = sum(s["log_prob"] for s in g.nodes.values() if s["type"] == "sample")  # z and the Jacobian's Delta
        total = total + (lp - lq)
    return torch.as_tensor(total) / particles


def nuts(like: ChoiceLikelihood, priors: dict | None = None, *, group: dict | None = None, num_samples: int = 500,
         warmup: int = 500, chains: int = 2, init: dict | None = None, seed: int = 0, target_accept: float = 0.8,
         max_tree_depth: int = 10, progress: bool = False) -> Posterior:
    """The No-U-Turn sampler (Pyro), ``chains`` chains one after the other, chain ``c`` seeded ``seed + c``.

    Args:
        like: the choice likelihood.
        priors: name -> Pyro distribution (independent subjects), or ``group``: name -> ``GroupPrior``.
        num_samples, warmup: draws kept and adaptation steps per chain.
        chains: number of chains (two or more for R-hat).
        seed: the first chain's seed.
        init: where every chain starts, site name -> value (e.g. ``laplace(...).mode``; the prior medians by
            default).
        target_accept, max_tree_depth: NUTS's target acceptance probability and largest tree depth.
        progress: Pyro's progress bar.
    """
    num_samples, warmup, chains = (check_index(x, n) for x, n in ((num_samples, "num_samples"), (warmup, "warmup"),
                                                                   (chains, "chains")))
    model, names = _model_of(like, priors, group)
    runs = []
    with _seeded(seed):
        for c in range(chains):
            torch.manual_seed(seed + c)
            kernel = NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                          init_strategy=_start(init))
            mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup, num_chains=1,
                        disable_progbar=not progress)
            mcmc.run()
            runs.append(mcmc.get_samples())
    draws = {n: torch.stack([r[n] for r in runs]) for n in runs[0]}
    return Posterior(samples=_draws(like, group, draws, names), method="nuts")


# ----------------------------------------------------------------------------------------------------------
# Bridge sampling: the log evidence from posterior draws


@dataclass(frozen=True, eq=False)
class BridgeEstimate:
    """Each subject's log evidence by bridge sampling.

    Attributes:
        log_evidence: ``(N,)``: ln p(choices_i), the prior's normalisation included.
        error: ``(N,)``: the approximate standard error of ``log_evidence`` (the relative mean squared error of
            p(choices_i), Fruhwirth-Schnatter 2004, square-rooted; the posterior draws' autocorrelation taken into
            account through their effective sample size).
        iterations: ``(N,)``: iterations of the fixed-point scheme each subject took.
    """

    log_evidence: Tensor
    error: Tensor
    iterations: Tensor


def _potentials(flat: _Flat, z: Tensor, max_rows: int) -> Tensor:
    """``z: (M, N, d)`` -> ``(M, N)`` potentials, ``max_rows // N`` draws per batched likelihood call (the subjects'
    data repeated, one copy per draw)."""
    M, N, _ = z.shape
    per_call = max(1, max_rows // N)
    out = []
    for start in range(0, M, per_call):
        k = min(per_call, M - start)
        rep = _Flat(flat.like.subjects(list(range(N)) * k), flat.priors, flat.links)
        out.append(rep.potential(z[start:start + k].reshape(k * N, -1)).reshape(k, N))
    return torch.cat(out)


def bridge_sampling(like: ChoiceLikelihood, priors: dict, posterior: Posterior, *, seed: int = 0,
                    max_iter: int = 1000, tol: float = 1e-10, max_rows: int = 4096) -> BridgeEstimate:
    """Each subject's log evidence ln p(choices_i) from draws of its posterior, by bridge sampling.

    The draws ``(chains, draws)`` of each chain are split in halves: the first halves fit a Gaussian proposal g per
    subject in the unconstrained space (their mean and covariance); the second halves (n1 draws) and as many draws
    from g (n2) enter Meng & Wong's (1996) optimal-bridge fixed point, iterated in log space,

        r <- [1/n2 sum_j l2_j / (s1 l2_j + s2 r)] / [1/n1 sum_i 1 / (s1 l1_i + s2 r)],
        l = p(choices, z) / g(z),  s1 = n1 / (n1 + n2),  s2 = n2 / (n1 + n2),

    whose limit is p(choices) (Gronau et al. 2017's method, without its warping). Unlike Laplace's approximation
    it does not assume a Gaussian posterior; it costs ``n1 + n2`` likelihood evaluations of every subject (batched).

    Args:
        like: the choice likelihood of the subjects.
        priors: the priors the posterior was drawn under (name -> Pyro distribution, as for ``nuts``).
        posterior: ``nuts(like, priors, ...)``'s result: draws from the posterior itself, at least 10 per chain
            (Laplace's and SVI's draws are from their approximations and would give a biased estimate).
        seed: for the proposal's draws.
        max_iter, tol: the fixed point's iterations at most, and its convergence in ln r.
        max_rows: subject rows per batched likelihood call (draws x subjects).

    Returns:
        ``BridgeEstimate``: ``log_evidence`` ``(N,)``, its approximate standard ``error`` ``(N,)``, ``iterations``.

    Raises:
        ParameterError: the posterior is not NUTS's over these priors' parameters (a group's, say), or too few draws.
    """
    flat = _Flat(like, check_priors(like, priors))
    if not isinstance(posterior, Posterior) or posterior.method != "nuts":
        got = posterior.method if isinstance(posterior, Posterior) else type(posterior).__name__
        raise ParameterError(f"bridge sampling needs draws from the posterior itself (bayes.nuts), got {got!r}: "
                             "Laplace's and SVI's draws come from their approximations")
    if set(posterior.samples) != set(flat.priors):
        raise ParameterError(f"the posterior's parameters {sorted(posterior.samples)} are not the priors' "
                             f"{sorted(flat.priors)} (a hierarchical posterior's evidence is not per subject)")
    max_iter, max_rows = check_index(max_iter, "max_iter"), check_index(max_rows, "max_rows")
    check_positive(tol, "tol")
    z = flat.join(posterior.samples)  # (chains, draws, N, d)
    chains, draws, N, d = z.shape
    if N != flat.N or draws < 10:
        raise ParameterError(f"the posterior has {draws} draws per chain of {N} subjects; bridge sampling needs at "
                             f"least 10 draws per chain of the likelihood's {flat.N} subjects")
    half = draws // 2
    fit, bridge = z[:, :half].flatten(0, 1), z[:, half:2 * half].flatten(0, 1)  # (chains * half, N, d)
    mean = fit.mean(0)
    centred = fit - mean
    cov = torch.einsum("mni,mnj->nij", centred, centred) / (len(fit) - 1)
    cov = cov + 1e-10 * torch.eye(d, dtype=cov.dtype) * cov.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
    proposal = dist.MultivariateNormal(mean, covariance_matrix=cov)
    n1 = n2 = len(bridge)
    with _seeded(seed):
        drawn = proposal.sample((n2,))  # (n2, N, d)
    with torch.no_grad():
        l1 = -_potentials(flat, bridge, max_rows) - proposal.log_prob(bridge)  # (n1, N): ln p(y, z) - ln g(z)
        l2 = -_potentials(flat, drawn, max_rows) - proposal.log_prob(drawn)  # (n2, N)
    if not (torch.isfinite(l1).all() and torch.isfinite(l2).all()):
        raise ParameterError("the joint density is not finite at some draws (the posterior does not match these "
                             "priors and choices?)")
    shift = l1.median(0).values  # ln r is found relative to it, so that exp() stays in range
    l1, l2 = l1 - shift, l2 - shift
    ls1, ls2 = math.log(n1 / (n1 + n2)), math.log(n2 / (n1 + n2))
    log_r = torch.zeros(N, dtype=l1.dtype)
    iterations = torch.zeros(N, dtype=torch.long)
    for _ in range(max_iter):
        num = torch.logsumexp(l2 - torch.logaddexp(ls1 + l2, ls2 + log_r), 0) - math.log(n2)
        den = torch.logsumexp(-torch.logaddexp(ls1 + l1, ls2 + log_r), 0) - math.log(n1)
        new = num - den
        moving = (new - log_r).abs() > tol
        iterations += moving
        log_r = new
        if not moving.any():
            break
    # Fruhwirth-Schnatter's relative MSE: f1 at the proposal's draws, f2 at the posterior's (normalised by r).
    f1 = torch.exp(-torch.logaddexp(torch.full_like(l2, ls1), ls2 - (l2 - log_r)))
    f2 = torch.exp(-torch.logaddexp(ls1 + (l1 - log_r), torch.full_like(l1, ls2)))
    ess = _ess(f2.reshape(chains, half, N))
    re2 = (f1.var(0) / f1.mean(0) ** 2) / n2 + (f2.var(0) / f2.mean(0) ** 2) / ess
    return BridgeEstimate(log_evidence=log_r + shift, error=re2.sqrt(), iterations=iterations)


def _ess(x: Tensor) -> Tensor:
    """``x: (chains, draws, N)`` -> ``(N,)``: each subject's effective sample size (ArviZ's bulk ESS)."""
    import arviz as az

    a = x.detach().cpu().numpy()
    return torch.tensor([float(az.ess(a[..., i])) for i in range(a.shape[-1])], dtype=x.dtype)
