"""Random model configurations and adapters to pymdp's two implementations, shared by the tests."""

import numpy as np

import aif


def random_config(rng, max_factors=3, max_modalities=3, max_states=6, max_controls=4, sparse=None):
    """Sizes for a random model: 1-3 factors and modalities, 2-6 states/outcomes, 1-4 controls."""
    nf = int(rng.integers(1, max_factors + 1))
    nm = int(rng.integers(1, max_modalities + 1))
    S = [int(s) for s in rng.integers(2, max_states + 1, nf)]
    O = [int(o) for o in rng.integers(2, max_states + 1, nm)]
    U = [int(u) for u in rng.integers(1, max_controls + 1, nf)]
    sparse = rng.random() < 0.5 if sparse is None else sparse
    deps = None
    if sparse:
        deps = [sorted(int(f) for f in rng.choice(nf, rng.integers(1, nf + 1), replace=False)) for _ in range(nm)]
    return dict(num_states=S, num_obs=O, num_controls=U, A_dependencies=deps)


def random_case(rng, config, concentration=1.0):
    """A model drawn for ``config``, with an observation and a (non-uniform) prior."""
    model = aif.random_model(rng, config["num_states"], config["num_obs"], config["num_controls"],
                             A_dependencies=config["A_dependencies"], concentration=concentration)
    obs = [int(rng.integers(o)) for o in model.num_obs]
    prior = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    return model, obs, prior


def obj(arrays):
    """A list of arrays as pymdp.legacy's object array."""
    from pymdp.legacy import utils

    out = utils.obj_array(len(arrays))
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def markov_blanket(model):
    return {"A_factor_list": model.A_dependencies,
            "A_modality_list": [[m for m, deps in enumerate(model.A_dependencies) if f in deps]
                                for f in range(model.num_factors)]}


def jax64():
    """Import jax with float64 enabled (pymdp 1.0 comparisons are in float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax
