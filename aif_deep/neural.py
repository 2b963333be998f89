"""A neural generative model over categorical latent states, with the ``BeliefModel`` interface.

The latent state is one or more factors, factor ``f`` with ``S_f`` classes, exactly as in the tabular model,
so state inference, the policy evaluator and ``Agent`` run it unchanged:

- encoder (amortised): observation -> likelihood message over the joint states, logits ``(*lead, *S)`` per
  modality, the place of ln A_m[o] in the tabular model; inference is the tabular formula with that message,
  q(s) ∝ exp(message + ln prior). The message is joint, not one vector per factor, because a modality can
  tell a conjunction of factors and neither alone: in the T-maze a reward says "right arm and context 0, or
  left arm and context 1", which per-factor logits summed over modalities cannot express. With one factor
  the joint message is the factor's.
- transition network: (one-hot state of every factor, one-hot control u_f) -> logits of s_f'. Evaluated on
  every state and control it is a table ``B_f: (S_f, *S, U_f)``, and ``predict_all`` is ``TabularModel``'s
  E_q[B_f] over the current belief.
- decoder (likelihood network): one-hot states -> an observation distribution, one head per modality:
  ``Categorical`` (outcome indices), ``Bernoulli`` (binary pixels), ``Gaussian`` (real vectors).
- preferences: ``C[m]`` over the outcomes of a categorical modality (as ``TabularModel.C``); for images, a
  reward head r(s) and a log-preference linear in the reward, ln p~(r) = ``reward_preference`` * r.

EFE terms. With categorical modalities the decoder evaluated on every state is a table ``A_m`` and the
terms are the tabular ones, exactly. For Bernoulli and Gaussian modalities the ambiguity E_q(s) H[p(o|s)] is
exact (closed-form entropies per state), and the state information gain I(o; s) = H[q(o)] - E_q H[p(o|s)]
is estimated with ``N`` fixed samples o_{s,n} ~ p(o|s) per joint state, scored under every state's decoder:

    I(o; s) ≈ sum_s q(s) (1/N) sum_n [ln p(o_{s,n}|s) - ln sum_s' q(s') p(o_{s,n}|s')].

The mixture q(o) is exact over the enumerated states, so the estimate is unbiased; the noise is drawn once
from ``seed`` (common random numbers), so G is a deterministic, differentiable function of the beliefs.

Observations reach ``log_likelihood`` through ``aif_deep.inference.as_obs`` (categorical modalities checked
against ``num_obs``); ``log_likelihood`` checks the shapes of images and real vectors, and that pixels are 0/1.
Every categorical distribution of the model (prior, posterior in training, transitions) is mixed with a
little of the uniform distribution (``unimix``) so that no class has probability zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aif.checks import check_sequence
from aif.efe import EFEOptions
from aif.errors import ModelError, ObservationError
from aif.maths import LogGuard
from aif.planning import goal_from_tables

from . import checks
from .efe import modality_terms
from .model import sum_against

Tensor = torch.Tensor


# --- observation heads -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Categorical:
    """A modality with ``num_obs`` outcomes, observed as an index (int ``(*lead,)``) or probabilities."""

    num_obs: int

    @property
    def size(self) -> int:
        return self.num_obs

    def num_params(self) -> int:
        return self.num_obs

    def features(self, o: Tensor) -> Tensor:
        """Encoder input ``(*lead, num_obs)``."""
        if o.is_floating_point():
            return o
        return nn.functional.one_hot(o.long(), self.num_obs).to(torch.get_default_dtype())

    def log_prob(self, params: Tensor, o: Tensor) -> Tensor:
        logp = torch.log_softmax(params, -1)
        return (self.features(o).to(logp.dtype) * logp).sum(-1)  # broadcasts o against params

    def entropy(self, params: Tensor) -> Tensor:
        logp = torch.log_softmax(params, -1)
        return -(logp.exp() * logp).sum(-1)

    def noise(self, n: int, gen: torch.Generator) -> Tensor:
        return torch.rand(n, generator=gen, dtype=torch.float64)

    def sample(self, params: Tensor, noise: Tensor) -> Tensor:
        """Inverse-CDF samples: ``params (J, P)``, ``noise (N,)`` -> indices ``(J, N)``."""
        cdf = torch.cumsum(torch.softmax(params, -1), -1)
        idx = torch.searchsorted(cdf.contiguous(), noise.to(cdf.dtype).expand(cdf.shape[0], -1).contiguous())
        return idx.clamp_max(self.num_obs - 1)


@dataclass(frozen=True)
class _Array:
    """A modality observed as an array of shape ``shape`` per step, flattened for the encoder."""

    shape: tuple

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def features(self, o: Tensor) -> Tensor:
        return o.reshape(*o.shape[: o.ndim - len(self.shape)], self.size).to(torch.get_default_dtype())


@dataclass(frozen=True)
class Bernoulli(_Array):
    """Binary pixels of shape ``shape``, observed as an int or bool tensor ``(*lead, *shape)`` of 0s and 1s.

    ``num_obs`` is 2 (the values one pixel takes), so ``aif_deep``'s observation checks accept the images.
    """

    num_obs = 2

    def num_params(self) -> int:
        return self.size

    def log_prob(self, params: Tensor, o: Tensor) -> Tensor:
        x = self.features(o).to(params.dtype)
        # ln p(x) = x ln sigmoid(l) + (1 - x) ln sigmoid(-l), written out so that x and l broadcast
        return (x * nn.functional.logsigmoid(params) + (1 - x) * nn.functional.logsigmoid(-params)).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        p = torch.sigmoid(params)
        return nn.functional.binary_cross_entropy_with_logits(params, p, reduction="none").sum(-1)

    def noise(self, n: int, gen: torch.Generator) -> Tensor:
        return torch.rand(n, self.size, generator=gen, dtype=torch.float64)

    def sample(self, params: Tensor, noise: Tensor) -> Tensor:
        """``params (J, D)``, ``noise (N, D)`` -> pixels ``(J, N, *shape)`` (float 0/1)."""
        x = (noise.to(params.dtype) < torch.sigmoid(params)[:, None]).to(params.dtype)
        return x.reshape(*x.shape[:2], *self.shape)


@dataclass(frozen=True)
class Gaussian(_Array):
    """Real vectors of shape ``shape`` (float ``(*lead, *shape)``), a diagonal Gaussian per state."""

    min_std: float = 0.05

    num_obs = 1

    def num_params(self) -> int:
        return 2 * self.size

    def _split(self, params):
        mean, raw = params.chunk(2, -1)
        return mean, self.min_std + nn.functional.softplus(raw)

    def log_prob(self, params: Tensor, o: Tensor) -> Tensor:
        mean, std = self._split(params)
        return torch.distributions.Normal(mean, std).log_prob(self.features(o).to(params.dtype)).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        _, std = self._split(params)
        return (0.5 * math.log(2 * math.pi * math.e) + torch.log(std)).sum(-1)

    def noise(self, n: int, gen: torch.Generator) -> Tensor:
        return torch.randn(n, self.size, generator=gen, dtype=torch.float64)

    def sample(self, params: Tensor, noise: Tensor) -> Tensor:
        mean, std = self._split(params)
        x = mean[:, None] + std[:, None] * noise.to(params.dtype)
        return x.reshape(*x.shape[:2], *self.shape)


Head = Categorical | Bernoulli | Gaussian  # one observation head per modality


def mlp(n_in: int, hidden: int, n_out: int, layers: int = 1) -> nn.Sequential:
    """``layers`` hidden layers of ``hidden`` ELU units from ``n_in`` inputs to ``n_out`` linear outputs."""
    mods, n = [], n_in
    for _ in range(layers):
        mods += [nn.Linear(n, hidden), nn.ELU()]
        n = hidden
    mods.append(nn.Linear(n, n_out))
    return nn.Sequential(*mods)


def _check_size(S: list, U: list, heads: list, hidden: int, reward: bool, samples: int, max_bytes: int) -> None:
    """``ParameterError`` when the model would take more than ``max_bytes``, naming its largest part."""
    J, n = math.prod(S), sum(S)
    layers = {**{f"encoders[{m}]": (h.size, J) for m, h in enumerate(heads)},
              **{f"decoders[{m}]": (n, h.num_params()) for m, h in enumerate(heads)},
              **{f"transitions[{f}]": (n + u, s) for f, (s, u) in enumerate(zip(S, U, strict=True))},
              **({"reward_head": (n, 1)} if reward else {})}
    item = checks.linear_bytes(0, 1)  # bytes per number
    parts = {name: checks.linear_bytes(i, hidden, o) for name, (i, o) in layers.items()}  # one hidden layer
    parts.update({f"transition table B[{f}]": item * J * s * u for f, (s, u) in enumerate(zip(S, U, strict=True))})
    parts.update({f"information-gain samples of modality {m} ({J}, {samples}, {J})": item * J * J * samples
                  for m, h in enumerate(heads) if not isinstance(h, Categorical)})
    parts.update({f"information-gain noise of modality {m} ({samples} samples)":  # float64, drawn when built
                  8 * samples * (1 if isinstance(h, Categorical) else h.size) for m, h in enumerate(heads)})
    checks.byte_budget("NeuralModel", parts, max_bytes, "reduce hidden or num_states")


def unimix(p: Tensor, eps: float) -> Tensor:
    """(1 - eps) p + eps / K along the last axis: no class gets probability zero."""
    checks.settings("unimix", {"eps": eps}, "fraction")
    return (1.0 - eps) * p + eps / p.shape[-1]


class NeuralModel(nn.Module):
    """A learned generative model with categorical latent states (see the module docstring).

    Args:
        num_states: classes per latent factor, e.g. ``[9]``.
        num_controls: controls per factor.
        observations: one head per modality: ``Categorical(O)``, ``Bernoulli(shape)``, ``Gaussian(shape)``.
        C: log-preferences per modality: ``(O_m,)`` tensors for categorical modalities, ``None`` elsewhere
            (and ``None`` for none at all).
        reward_preference: with it, a reward head r(s) is trained and the utility is
            ``reward_preference * E_q[r(s)]`` (ln p~(r) linear in r); ``None`` for no reward head.
        hidden: width of the hidden layers.
        unimix: the uniform mixture of every categorical distribution.
        info_gain_samples: samples per state of the information-gain estimator (non-categorical modalities).
        seed: seeds the initial weights and the estimator's fixed noise.
        max_bytes: the most bytes the parameters, transition tables and information-gain samples may take
            (estimated before anything is allocated; 1 GiB by default): a ``ParameterError`` names the largest.

    ``A_dependencies``: every modality depends on every factor. ``batch_shape`` is ``()``. In eval mode
    (``model.eval()``) the tables (transitions, categorical likelihoods, decoder outputs per state) are computed
    once per parameter version, without gradients.
    """

    def __init__(self, num_states: Sequence[int], num_controls: Sequence[int], observations: Sequence[Head],
                 C: Sequence[Tensor | None] | None = None, reward_preference: float | None = None, hidden: int = 64,
                 unimix: float = 0.01, info_gain_samples: int = 64, seed: int = 0, max_bytes: int = 2**30) -> None:
        super().__init__()
        num_states, num_controls = (check_sequence(list(x) if isinstance(x, np.ndarray) else x, n, ModelError)
                                    for x, n in ((num_states, "num_states"), (num_controls, "num_controls")))
        if len(num_states) != len(num_controls) or not num_states:
            raise ModelError(f"num_states {num_states} and num_controls {num_controls} need one entry "
                             "per factor (at least one)")
        for name, counts in (("num_states", num_states), ("num_controls", num_controls)):
            for f, n in enumerate(counts):
                if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                    raise ModelError(f"{name}[{f}] is {n!r}; every factor needs at least one (an integer)")
        self.num_states, self.num_controls = [int(s) for s in num_states], [int(u) for u in num_controls]
        self.heads = check_sequence(observations, "observations", ModelError)
        for m, h in enumerate(self.heads):
            if not isinstance(h, (Categorical, Bernoulli, Gaussian)):
                raise ModelError(f"observations[{m}] is {h!r}; use Categorical, Bernoulli or Gaussian")
            sizes = [h.num_obs] if isinstance(h, Categorical) else \
                h.shape if isinstance(h.shape, (tuple, list)) else [None]
            if not sizes or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                                    for n in sizes):
                raise ModelError(f"observations[{m}] is {h!r}; it needs at least one outcome (a shape of "
                                 f"positive sizes)")
            if isinstance(h, Gaussian):
                checks.settings("Gaussian", {"min_std": h.min_std}, "positive")
        checks.settings("NeuralModel", {"unimix": unimix}, "fraction")
        checks.settings("NeuralModel", {"info_gain_samples": info_gain_samples, "hidden": hidden,
                                        "max_bytes": max_bytes}, "count")
        checks.settings("NeuralModel", {"seed": seed}, "natural")
        if reward_preference is not None:
            checks.settings("NeuralModel", {"reward_preference": reward_preference}, "finite")
        _check_size(self.num_states, self.num_controls, self.heads, hidden, reward_preference is not None,
                    info_gain_samples, max_bytes)
        self.num_obs = [h.num_obs for h in self.heads]
        self.A_dependencies = [list(range(len(self.num_states))) for _ in self.heads]
        self.B_dependencies = [list(range(len(self.num_states))) for _ in self.num_states]
        self.batch_shape = ()
        self.unimix = float(unimix)
        self.info_gain_samples = int(info_gain_samples)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            S = sum(self.num_states)
            J = math.prod(self.num_states)
            self.encoders = nn.ModuleList([mlp(h.size, hidden, J) for h in self.heads])
            self.decoders = nn.ModuleList([mlp(S, hidden, h.num_params()) for h in self.heads])
            self.transitions = nn.ModuleList([mlp(S + u, hidden, s) for s, u in zip(self.num_states,
                                                                                   self.num_controls, strict=True)])
            self.prior_logits = nn.ParameterList([nn.Parameter(torch.zeros(s)) for s in self.num_states])
            self.reward_preference = None if reward_preference is None else float(reward_preference)
            self.reward_head = None if reward_preference is None else mlp(S, hidden, 1)
        C = [None] * len(self.heads) if C is None else list(C)
        if len(C) != len(self.heads):
            raise ModelError(f"C has {len(C)} entries but there are {len(self.heads)} modalities")
        for m, (c, h) in enumerate(zip(C, self.heads, strict=True)):
            if c is not None and not (isinstance(h, Categorical)
                                      and tuple(checks.as_tensor(c, f"C[{m}]", ModelError).shape) == (h.num_obs,)):
                raise ModelError(f"C[{m}] must be None or a ({h.num_obs},) vector for a categorical modality")
            self.register_buffer(f"C_{m}", None if c is None else torch.as_tensor(c, dtype=torch.get_default_dtype()))
        for m, h in enumerate(self.heads):
            self.register_buffer(f"noise_{m}", h.noise(self.info_gain_samples, gen).to(torch.get_default_dtype()))
        self._cache: dict | None = None

    # --- building blocks ---------------------------------------------------------------------------------

    @property
    def num_factors(self) -> int:
        return len(self.num_states)

    @property
    def categorical(self) -> list:
        """One bool per modality: observed as outcome indices (``Categorical``) rather than images or vectors."""
        return [isinstance(h, Categorical) for h in self.heads]

    @property
    def C(self) -> list:
        return [getattr(self, f"C_{m}") for m in range(len(self.heads))]

    @property
    def dtype(self) -> torch.dtype:
        return self.prior_logits[0].dtype

    @property
    def device(self) -> torch.device:
        return self.prior_logits[0].device

    def joint_states(self) -> Tensor:
        """Every joint state as concatenated one-hots, ``(J, sum S_f)`` in row-major order of ``(s_0, s_1, ...)``."""
        eyes = [torch.eye(s, dtype=self.dtype, device=self.device) for s in self.num_states]
        grids = torch.meshgrid(*[torch.arange(s, device=self.device) for s in self.num_states], indexing="ij")
        return torch.cat([eye[g.reshape(-1)] for eye, g in zip(eyes, grids, strict=True)], -1)

    def joint_message(self, obs: list) -> Tensor:
        """The likelihood message over joint states, summed over modalities and normalised (a log-softmax over
        states, which leaves the posterior unchanged): ``(*lead, J)`` in the row-major order of ``joint_states``."""
        self._check_obs(obs)
        total = sum(enc(h.features(obs[m]).to(self.dtype))
                    for m, (h, enc) in enumerate(zip(self.heads, self.encoders, strict=True)))
        return torch.log_softmax(torch.as_tensor(total), -1)

    def messages(self, obs: list) -> list:
        """The joint message's evidence about each factor alone (the others summed out under a uniform prior):
        ``(*lead, S_f)`` log-probabilities per factor; with one factor, ``joint_message`` itself."""
        joint = self.joint_message(obs)
        if self.num_factors == 1:
            return [joint]
        joint = joint.reshape(*joint.shape[:-1], *self.num_states)  # (*lead, *S)
        F = self.num_factors
        return [torch.logsumexp(joint, [-F + g for g in range(F) if g != f]) for f in range(F)]

    def decode(self, states: Tensor) -> list:
        """Head parameters per modality for one-hot states ``(*lead, sum S_f)``."""
        return [dec(states) for dec in self.decoders]

    def transition_logits(self, states: Tensor, action: Tensor) -> list:
        """Logits of s_f' per factor for one-hot states ``(*lead, sum S)`` and int actions ``(*lead, F)``."""
        out = []
        for f, (net, u) in enumerate(zip(self.transitions, self.num_controls, strict=True)):
            onehot_u = nn.functional.one_hot(action[..., f].long(), u).to(states.dtype)
            out.append(net(torch.cat([states, onehot_u], -1)))
        return out

    def tables(self) -> dict:
        """Every network evaluated on every joint state: ``B`` (one ``(S_f, *S, U_f)`` per factor), ``params``
        (decoder outputs ``(J, P_m)`` per modality), ``A`` (``(O_m, *S)`` for categorical modalities, else
        ``None``), ``reward`` (``(J,)`` or ``None``), ``D`` (``(S_f,)`` per factor)."""
        if self.training:
            return self._tables()
        cache = self._eval_cache()
        if "tables" not in cache:
            with torch.no_grad():
                cache["tables"] = self._tables()
        return cache["tables"]

    def goal(self, horizon: int, alpha: float = 1.0, mode: str = "variational") -> np.ndarray:
        """``ln p*(s)`` over the joint latent states, ``p* ∝ exp(V(s) / alpha)``: ``aif.planning.model_goal`` for the
        learned model, ready for ``aif.efe.GoalDivergence``.

        ``V`` is the soft value with ``horizon`` actions to go (``aif.planning.goal_from_tables``) under the learned
        transitions (``tables()["B"]``, joined over factors) and the state reward the utility uses:
        ``reward_preference * r(s)`` from the reward head plus ``sum_o A_m[o | s] C_m[o]`` for each categorical
        modality with preferences (C as given, as ``model_goal`` takes it).

        Returns:
            float64 array of shape ``tuple(num_states)``.
        """
        tab = self.tables()
        S, J = self.num_states, math.prod(self.num_states)
        joint = torch.ones(1, J, 1, dtype=torch.float64)  # B[s', s, u] over the factors so far (C order)
        for f, B_f in enumerate(tab["B"]):
            B_f = B_f.detach().to(torch.float64).reshape(S[f], J, -1)
            joint = (joint[:, None, :, :, None] * B_f[None, :, :, None, :]).reshape(
                joint.shape[0] * S[f], J, joint.shape[2] * B_f.shape[2])
        r = torch.zeros(J, dtype=torch.float64)
        if tab["reward"] is not None and self.reward_preference is not None:
            r = r + self.reward_preference * tab["reward"].detach().to(torch.float64)
        preferred = [m for m, (A_m, C_m) in enumerate(zip(tab["A"], self.C, strict=True))
                     if A_m is not None and C_m is not None]
        for m in preferred:
            A_m = tab["A"][m].detach().to(torch.float64).reshape(-1, J)
            r = r + (A_m * self.C[m].to(torch.float64)[:, None]).sum(0)
        if tab["reward"] is None and not preferred:
            raise ModelError("the model has no preferences (no reward head and no C on a categorical modality): "
                             "no goal to derive")
        checks.settings("NeuralModel.goal", {"horizon": horizon}, "count")
        return goal_from_tables(joint.numpy(), np.broadcast_to(r.numpy(), (int(horizon), J)), alpha, mode).reshape(S)

    def _eval_cache(self) -> dict:
        """Values computed in eval mode, valid while no parameter changes (their versions and identities)."""
        version = tuple((id(p), p._version) for p in self.parameters())
        if self._cache is None or self._cache["version"] != version:
            self._cache = {"version": version}
        return self._cache

    def _tables(self):
        S = self.num_states
        states = self.joint_states()  # (J, sum S)
        J = states.shape[0]
        B = []
        for f, u in enumerate(self.num_controls):
            actions = torch.zeros(J, u, self.num_factors, dtype=torch.long, device=self.device)
            actions[..., f] = torch.arange(u, device=self.device)
            logits = self.transition_logits(states[:, None].expand(J, u, -1), actions)[f]  # (J, U_f, S_f)
            p = unimix(torch.softmax(logits, -1), self.unimix)
            B.append(p.permute(2, 0, 1).reshape(S[f], *S, u))  # (S_f, *S, U_f)
        params = self.decode(states)
        A = [torch.softmax(p, -1).T.reshape(h.num_obs, *S) if isinstance(h, Categorical) else None
             for p, h in zip(params, self.heads, strict=True)]
        reward = None if self.reward_head is None else self.reward_head(states)[:, 0]
        D = [unimix(torch.softmax(lg, -1), self.unimix) for lg in self.prior_logits]
        return {"B": B, "params": params, "A": A, "reward": reward, "D": D}

    # --- BeliefModel -------------------------------------------------------------------------------------

    def prior(self) -> list:
        return list(self.tables()["D"])

    def log_likelihood(self, obs: list, guard: LogGuard | None = None) -> list:
        """The encoder's message of each modality over the joint states: ``(*lead, *S)`` per modality; logits,
        finite everywhere, so no log guard applies; without gradient in eval mode (a fixed model for an agent)."""
        if not self.training:
            with torch.no_grad():
                return self._log_likelihood(obs)
        return self._log_likelihood(obs)

    def _check_obs(self, obs: list) -> None:
        if len(obs) != len(self.heads):
            raise ObservationError(f"obs has {len(obs)} entries but the model has {len(self.heads)} modalities")
        for m, (h, o) in enumerate(zip(self.heads, obs, strict=True)):
            shape = getattr(h, "shape", None)
            if shape is None and torch.is_tensor(o) and o.is_floating_point():
                shape = (h.num_obs,)  # categorical probabilities
            if shape is not None and tuple(o.shape[max(o.ndim - len(shape), 0):]) != tuple(shape):
                raise ObservationError(f"obs[{m}] has shape {tuple(o.shape)}; modality {m} ({type(h).__name__}) "
                                       f"expects (*lead, {', '.join(map(str, shape))})")
            if isinstance(h, Bernoulli) and ((o != 0) & (o != 1)).any():
                bad = o[(o != 0) & (o != 1)].flatten()[0]
                raise ObservationError(f"obs[{m}] holds the pixel value {float(bad):g}; modality {m} (Bernoulli) "
                                       f"takes binary images of 0s and 1s")
            if isinstance(h, Gaussian) and not torch.isfinite(o).all():
                raise ObservationError(f"obs[{m}] holds a non-finite value; modality {m} (Gaussian) takes finite "
                                       f"real vectors")

    def _log_likelihood(self, obs: list) -> list:
        self._check_obs(obs)
        out = []
        for m, (h, enc) in enumerate(zip(self.heads, self.encoders, strict=True)):
            x = torch.log_softmax(enc(h.features(obs[m]).to(self.dtype)), -1)  # (*lead, J)
            out.append(x.reshape(*x.shape[:-1], *self.num_states))  # (*lead, *S)
        return out

    def predict_all(self, qs: list) -> list:
        return predict_all_from(self.tables()["B"], qs)

    def log_preferences(self, m: int, t: int, options: EFEOptions) -> Tensor:
        C_m = self.C[m]
        return torch.log_softmax(C_m, -1) if options.normalize_C else C_m

    def outcome_terms(self, qs: list, t: int, options: EFEOptions) -> dict:
        tab = self.tables()
        utility: Tensor | float = 0.0
        entropy_qo: Tensor | float = 0.0
        ambiguity: Tensor | float = 0.0
        q_joint = None
        for m, h in enumerate(self.heads):
            if isinstance(h, Categorical):
                A_m = tab["A"][m].to(qs[0].dtype)
                ln_C = None if self.C[m] is None else self.log_preferences(m, t, options).to(A_m.dtype)
                v = modality_terms(A_m, list(qs), ln_C, options)
                utility = utility + v["utility"]
                H_qo, amb = v["entropy"], v["ambiguity"]
            else:
                q_joint = _joint(qs) if q_joint is None else q_joint  # (*lead, J)
                H_s = h.entropy(tab["params"][m]).to(q_joint.dtype)  # (J,)
                amb = (q_joint * H_s).sum(-1)
                H_qo = amb + self.estimated_info_gain(qs, m)
            entropy_qo = entropy_qo + H_qo
            ambiguity = ambiguity + amb
        if tab["reward"] is not None:
            q_joint = _joint(qs) if q_joint is None else q_joint
            utility = utility + self.reward_preference * (q_joint * tab["reward"].to(q_joint.dtype)).sum(-1)
        return {"utility": utility, "entropy": entropy_qo, "ambiguity": ambiguity}

    def estimated_info_gain(self, qs: list, m: int, num_samples: int | None = None) -> Tensor:
        """Sampled I(o_m; s) under beliefs ``qs`` (module docstring), ``(*lead,)``; ``num_samples`` at most
        ``info_gain_samples`` (the fixed noise drawn at construction)."""
        h = self.heads[m]
        noise = getattr(self, f"noise_{m}")[: num_samples or self.info_gain_samples]
        key = ("info_gain", m, noise.shape[0])
        cache = None if self.training else self._eval_cache()
        if cache is not None and key in cache:
            L = cache[key]
        else:
            params = self.tables()["params"][m]  # (J, P)
            samples = h.sample(params, noise)  # (J, N, *shape)
            # L[s, n, s'] = ln p(o_{s,n} | s'), (J, N, J); the samples carry no gradient (a score-free
            # estimator: the gradient flows through the log densities only)
            L = h.log_prob(params[None, None], samples.detach()[:, :, None])
            if cache is not None:
                cache[key] = L
        q = _joint(qs)  # (*lead, J)
        L = L.to(q.dtype)
        own = torch.diagonal(L, dim1=0, dim2=2).T  # (J, N): ln p(o_{s,n} | s)
        log_q = torch.log(q.clamp_min(1e-300))
        # ln q(o_{s,n}) = logsumexp_s' [ln q(s') + L[s, n, s']]: (*lead, J, N)
        log_mix = torch.logsumexp(log_q[..., None, None, :] + L, -1)
        return (q * (own - log_mix).mean(-1)).sum(-1)


def predict_all_from(B: list, qs: list) -> list:
    """``TabularModel.predict_all`` for tables ``B[f]: (S_f, *S, U_f)`` over all factors: ``(U_f, *lead, S_f)``."""
    out = []
    for B_f in B:
        # (S_f, *S, U_f) -> (U_f, S_f, *S), summed against every factor's belief -> (*lead, U_f, S_f)
        pred = sum_against(B_f.movedim(-1, -2 - len(qs)), list(qs), keep=2)
        out.append(pred.movedim(-2, 0))
    return out


def _joint(qs: list) -> Tensor:
    """The joint belief of factorised ``qs`` flattened row-major: ``(*lead, prod S_f)``."""
    out = qs[0]
    for q in qs[1:]:
        out = (out[..., :, None] * q[..., None, :]).reshape(*np.broadcast_shapes(out.shape[:-1], q.shape[:-1]), -1)
    return out
