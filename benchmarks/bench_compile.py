"""torch.compile and bf16 autocast on the CPU: training steps of aif_deep's networks and the policy evaluator.

    python benchmarks/bench_compile.py            # every case (several minutes of CPU, most of it compiling)
    python benchmarks/bench_compile.py --quick    # small networks, the 'model' case, no compiled evaluator (a test)

The question (issue 16): the PyTorch performance guide claims ~1.6x from ``torch.compile`` and ~2x from mixed
precision; do aif_deep's training steps and its policy evaluator gain that on the CPU most users train on?

Training steps, each one forward + backward + Adam step (+ the library's gradient clipping and Polyak update) on a
fixed set of replayed batches, at the sizes the examples use:

- ``td``: ``aif_deep.online.TDRun.update`` (CartPole's agent: ``QFunction([4], [2], hidden=256)`` and
  ``Ensemble(4, 2, 5, 64)``, batch 64); the step below is ``update``'s, checked equal to it by the test.
- ``model``: ``aif_deep.shooting.ModelRun.update`` (MountainCar's planner: ``Ensemble(2, 3, 5, 64)`` and
  ``RewardModel(2, 3, 64)``, batch 64), likewise checked.
- ``rssm``: ``aif_deep.rssm.elbo_loss`` (MiniGrid's world model: 2 latents of 8 classes, deter 64, hidden 64,
  a Bernoulli head over 7 x 7 x 14 pixels; 16 windows of 16 steps, ``OnlineFit``'s setting).

Variants: ``eager`` (float32, the library's path); ``bf16``: the loss under ``torch.autocast("cpu",
dtype=torch.bfloat16)``, backward and Adam outside it; ``compile modules``: ``torch.compile(net)`` of every network
the loss calls; ``compile loss``: ``torch.compile`` of the whole loss function
(forward graph and, through AOTAutograd, its backward), in the default mode and, without ``--quick``, in
"max-autotune-no-cudagraphs" and "reduce-overhead" (on the CPU the latter has no CUDA graph to use). The first step
(compilation included) is reported apart; then ``--rounds`` rounds of ``--steps`` steps per variant (a quarter of
them for the RSSM), interleaved, and the median round. Every variant starts from the same weights and sees the same
batches: the loss of step 1 (same weights, so the forward pass alone) and of the last step are compared with eager's.

Policy evaluator: ``aif_deep.PolicyEvaluator(...).posterior`` on ``bench_evaluator.py``'s synthetic model (25 x 2
states), float64 (the library's default for pymdp parity; the reference for the errors), float32, float32 with
its per-call evaluation (``_evaluate``) compiled, float32 under bf16 autocast, and a bfloat16 model.

Clocks: wall time and the CPU time of this process and its finished children (``getrusage``); inductor compiles in
this process (``TORCHINDUCTOR_COMPILE_THREADS=1``) and runs the C++ compiler as a child, so compile CPU time counts,
into a fresh cache folder per compiled variant (a cold compile) unless ``--warm-cache``. One intra-op thread by
default (``--threads``): the machine is shared. Without a C++ compiler (``$CXX``, else ``g++``) the compiled rows are
skipped with a note; a compile that fails is reported and skipped. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # compile in this process: its CPU time is counted

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif_deep import online, shooting  # noqa: E402
from aif_deep import rssm as rssm_mod  # noqa: E402
from aif_deep.neural import Bernoulli  # noqa: E402

PIXELS = 7 * 7 * 14  # examples/minigrid.py: 7 x 7 cells, 11 objects + 3 states
EVAL_SIZES = [(5, 4, 16), (5, 5, 16), (4, 8, 1)]  # (actions, horizon, batch): 625 x 16, 3,125 x 16, 65,536 x 1
QUICK_EVAL_SIZES = [(5, 3, 4)]


def cold_cache(cold: bool) -> contextlib.AbstractContextManager:
    """A fresh inductor cache (on disk and in memory) for one compiled variant, so that its first step is a cold
    compile and not a reuse of another variant's kernels; the files stay, for the calls after it."""
    if not cold:
        return contextlib.nullcontext()
    try:
        from torch._inductor.utils import fresh_cache
    except ImportError:  # a private helper of torch 2.x: without it, later variants may reuse earlier kernels
        return contextlib.nullcontext()
    return fresh_cache(dir=os.environ.get("TORCHINDUCTOR_CACHE_DIR"), delete=False)


def compiler_problem() -> str | None:
    """Why inductor cannot build C++ kernels here, or ``None``: it calls ``$CXX`` (``g++`` when unset)."""
    cxx = os.environ.get("CXX", "g++")
    return None if shutil.which(cxx) else f"no C++ compiler ({cxx!r} not found): torch.compile rows skipped"


# --- training cases ----------------------------------------------------------------------------------------------

@dataclass
class Trainee:
    """One copy of a case's networks: ``loss(*batch(i))`` the scalar loss on batch ``i`` (tensors only, so that a
    compiled loss is traced once, not once per step), ``opt`` the optimiser, ``clip`` (parameters, max norm) or
    ``None``, ``after`` what follows ``opt.step``."""

    batch: Callable[[int], tuple]
    loss: Callable[..., torch.Tensor]
    opt: torch.optim.Optimizer
    clip: tuple | None = None
    after: Callable[[], None] | None = None
    losses: list = field(default_factory=list)


def same(net: nn.Module) -> nn.Module:
    return net


def td_trainee(quick: bool, seed: int = 0, batches: int = 8, wrap: Callable = same) -> tuple[Trainee, online.TDRun]:
    """CartPole's TD step (``TDRun.update`` with the ensemble, n_step 1, one head) on a buffer of random transitions;
    batch ``i`` is the ``i``-th draw of ``rng.integers(0, size, batch_size)`` from ``default_rng(seed)``, as
    ``update``'s; ``wrap`` (e.g. ``torch.compile``) replaces each network where the step calls it. Returns the
    trainee and its ``TDRun``."""
    hidden, size, mhidden, batch = (64, 3, 32, 32) if quick else (256, 5, 64, 64)
    model = online.StateVectorModel(4, 2, transition=online.Ensemble(4, 2, size, mhidden, seed=seed + 1))
    q = aif_deep.QFunction([4], [2], temperature=0.05, hidden=hidden, seed=seed)
    settings = online.TDLearning(batch_size=batch, buffer_size=256 if quick else 1000, learning_starts=10**9)
    run = online.TDRun(settings, q, model, (online.RewardRisk(1.0), online.EnsembleInfoGain(0.1, 0.01)),
                       np.random.default_rng(seed))
    data = np.random.default_rng(123)
    for _ in range(run.settings.buffer_size):  # random transitions; no update (learning_starts)
        x = torch.from_numpy(data.normal(size=4).astype(np.float32))
        x1 = x + torch.from_numpy(data.normal(0, 0.05, size=4).astype(np.float32))
        run.observe(x, int(data.integers(2)), 1.0, x1, bool(data.random() < 0.05))
    draws = np.random.default_rng(seed)
    idx = [torch.from_numpy(draws.integers(0, run.size, batch)) for _ in range(batches)]
    assert run.ensemble is not None and run.info is not None
    run.qf.net, run.target.net, ens = wrap(run.qf.net), wrap(run.target.net), wrap(run.ensemble)

    def loss(j: torch.Tensor) -> torch.Tensor:  # TDRun.update's loss, written out to compile or autocast it
        x, a, r, x1, done = run.obs[j], run.action[j], run.reward[j], run.next_obs[j], run.terminated[j]
        pred = ens(x, a)  # (K, B, D)
        ig = ens.info_gain(x, a, run.info.noise_sd, pred)  # no gradient
        with torch.no_grad():
            y = run.one_step_efe(r, ig) + settings.discount * (1.0 - done) * run.next_value(x1)
        td = F.smooth_l1_loss(run.qf.net(x).gather(1, a[:, None])[:, 0], y)
        return td + ((pred - (x1 - x)) ** 2).mean()

    def after() -> None:
        with torch.no_grad():
            torch._foreach_lerp_(run._target_params, run._q_params, settings.tau)

    return Trainee(lambda i: (idx[i % len(idx)],), loss, run.opt,
                   (run._q_params, settings.max_grad_norm), after), run


def model_trainee(quick: bool, seed: int = 0, batches: int = 8,
                  wrap: Callable = same) -> tuple[Trainee, shooting.ModelRun]:
    """MountainCar's model-learning step (``ModelRun.update``, no terminal transitions stored, so every batch is a
    uniform draw ``rng.integers(0, size, batch_size)`` from ``default_rng(seed)``, as ``update``'s)."""
    size, hidden, batch = (3, 32, 32) if quick else (5, 64, 64)
    model = shooting.RewardStateModel(2, 3, transition=online.Ensemble(2, 3, size, hidden, seed=seed + 1),
                                      outcome=shooting.RewardModel(2, 3, hidden, seed=seed + 2), bounds=(-1.0, 1.0))
    run = shooting.ModelRun(shooting.ModelLearning(batch_size=batch, buffer_size=1000, learning_starts=10**9),
                            model, np.random.default_rng(seed))
    data = np.random.default_rng(123)
    n = 1000
    run.obs[:] = torch.from_numpy(data.uniform(-1, 1, (n, 2)).astype(np.float32))
    run.next_obs[:] = run.obs + torch.from_numpy(data.normal(0, 0.02, (n, 2)).astype(np.float32))
    run.action[:] = torch.from_numpy(data.integers(0, 3, n))
    run.reward[:] = torch.from_numpy(data.normal(size=n).astype(np.float32))
    run.terminated[:] = torch.from_numpy((data.random(n) < 0.1).astype(np.float32))
    run.size = run.steps = n
    draws = np.random.default_rng(seed)
    idx = [torch.from_numpy(draws.integers(0, run.size, batch)) for _ in range(batches)]
    assert model.transition is not None and model.outcome is not None
    ens, out = wrap(model.transition), wrap(model.outcome)

    def loss(j: torch.Tensor) -> torch.Tensor:  # ModelRun.update's loss
        x, a, r, x1, done = run.obs[j], run.action[j], run.reward[j], run.next_obs[j], run.terminated[j]
        r_hat, end_logit = out(x, a, x1)
        return (((ens(x, a) - (x1 - x)) ** 2).mean() + F.mse_loss(r_hat, r)
                + F.binary_cross_entropy_with_logits(end_logit, done))

    return Trainee(lambda i: (idx[i % len(idx)],), loss, run.opt), run


def rssm_trainee(quick: bool, seed: int = 0, batches: int = 4,
                 wrap: Callable = same) -> tuple[Trainee, rssm_mod.RSSM]:
    """MiniGrid's world-model step: ``elbo_loss`` (KL balancing 0.8, free nats 1) on random pixel windows, Adam
    with the gradient norm clipped at 100 (``rssm._adam_steps``); the straight-through samples from a generator
    reseeded per batch, so that every variant draws the same."""
    classes, deter, hidden, B, L, pixels = (4, 16, 32, 8, 8, 98) if quick else (8, 64, 64, 16, 16, PIXELS)
    r = rssm_mod.RSSM(2, classes, 3, [Bernoulli((pixels,))], reward_preference=1.0, deter=deter, hidden=hidden,
                      seed=seed)
    r.train()
    elbo = rssm_mod.ELBO(rssm_mod.KLBalancing(0.8), rssm_mod.FreeNats(1.0))
    data = np.random.default_rng(123)
    windows = [{"observations": [torch.from_numpy((data.random((B, L + 1, pixels)) < 0.2).astype(np.float32))],
                "actions": torch.from_numpy(data.integers(0, 3, (B, L, 1))),
                "rewards": torch.from_numpy((data.random((B, L)) < 0.05).astype(np.float32))}
               for _ in range(batches)]
    gen = torch.Generator()

    def batch(i: int) -> tuple:
        gen.manual_seed(i)
        return (windows[i % len(windows)],)

    def loss(window: dict) -> torch.Tensor:
        return rssm_mod.elbo_loss(r, window, elbo, gen)[0]

    om = r.observation_model
    r.gru, r.prior_net = wrap(r.gru), wrap(r.prior_net)
    for nets in (om.encoders, om.decoders):
        for m in range(len(nets)):
            nets[m] = wrap(nets[m])
    if om.reward_head is not None:
        om.reward_head = wrap(om.reward_head)
    return Trainee(batch, loss, torch.optim.Adam(r.parameters(), lr=1e-3), (list(r.parameters()), 100.0)), r


CASES = {
    "td": ("TDLearning step (CartPole: QFunction 256 + Ensemble 5x64)", "64", td_trainee),
    "model": ("ModelLearning step (MountainCar: Ensemble 5x64 + RewardModel 64)", "64", model_trainee),
    "rssm": ("RSSM ELBO step (MiniGrid: 2x8 latents, deter 64, 686 pixels)", "16 x 16", rssm_trainee),
}
QUICK_BATCH = {"td": "32", "model": "32", "rssm": "8 x 8"}


def train_step(t: Trainee, i: int, bf16: bool) -> float:
    """One optimiser step on batch ``i``: the loss (under bf16 autocast when asked), backward, clip, Adam, after."""
    t.opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = t.loss(*t.batch(i))
    loss.backward()
    if t.clip is not None:
        nn.utils.clip_grad_norm_(*t.clip)
    t.opt.step()
    if t.after is not None:
        t.after()
    return float(loss.detach())


@dataclass
class Variant:
    name: str
    trainee: Trainee
    bf16: bool = False
    first: tuple = (0.0, 0.0)  # (wall, CPU) seconds of the first step
    rounds: list = field(default_factory=list)  # (wall, CPU) seconds per step, one per round
    graphs: str = ""  # graphs compiled and graph breaks while the first and warm-up steps ran


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (inductor runs the C++ compiler as a child)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def clocked(fn: Callable[[], object]) -> tuple[float, float]:
    w, c = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - w, cpu_seconds() - c


def bench_training(case: str, quick: bool, steps: int, rounds: int, modes: list, notes: list,
                   backend: str = "inductor", cold: bool = True, only: frozenset = frozenset()) -> list:
    """The rows of one training case (see the module docstring)."""
    title, batch, make = CASES[case]
    if case == "rssm":  # a step is ~20x the others'
        steps = max(1, steps // 4)
    batch = QUICK_BATCH[case] if quick else batch
    specs: list = [("eager", None, False), ("bf16 autocast", None, True)]
    if compiler_problem() is None:
        specs += [("compile modules", "default", False)] * (not quick) + [("compile loss", m, False) for m in modes]
    if only:
        specs = [sp for sp in specs if (sp[0] if sp[1] is None else f"{sp[0]} ({sp[1]})") in only | {"eager"}]
    variants: list[Variant] = []
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()  # a case's variants stay compiled together; the next case starts afresh
    for name, mode, bf16 in specs:
        counters.clear()
        # torch.compile(module), not module.compile(): in torch 2.13 the latter leaves torch.nn's own modules
        # (Sequential, GRUCell) uncompiled, as their frames are skipped
        wrap = (lambda net: torch.compile(net, backend=backend)) if name == "compile modules" else same
        t = make(quick, wrap=wrap)[0]
        label = name if mode is None else f"{name} ({mode})"
        if name == "compile loss":
            t.loss = torch.compile(t.loss, mode=mode) if backend == "inductor" else \
                torch.compile(t.loss, backend=backend)
        v = Variant(label, t, bf16)
        try:
            with cold_cache(cold and mode is not None):
                v.first = clocked(lambda: t.losses.append(train_step(t, 0, bf16)))
                for i in range(1, 3):  # warm-up (a recompilation for the second call's shapes, allocator)
                    t.losses.append(train_step(t, i, bf16))
        except Exception as error:  # a compiler that fails here: report it and go on without the row
            notes.append(f"{case}: {label} failed: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
            continue
        if mode is not None:
            v.graphs = (f"{counters['stats']['unique_graphs']} graphs, "
                        f"{sum(counters['graph_break'].values())} breaks")
        variants.append(v)
    counters.clear()
    step = 3
    for _ in range(rounds):  # interleaved, so that the machine's load moves every variant alike
        for v in variants:
            t = v.trainee

            def run(t=t, v=v, start=step):
                for i in range(start, start + steps):
                    t.losses.append(train_step(t, i, v.bf16))
            wall, cpu = clocked(run)
            v.rounds.append((wall / steps, cpu / steps))
        step += steps
    if counters["stats"]["unique_graphs"]:
        notes.append(f"{case}: {counters['stats']['unique_graphs']} graphs were compiled during the timed rounds")
    eager = variants[0]
    ew, ec = (statistics.median(r[k] for r in eager.rounds) for k in (0, 1))
    rows = []
    for v in variants:
        w, c = (statistics.median(r[k] for r in v.rounds) for k in (0, 1))
        d1 = abs(v.trainee.losses[0] - eager.trainee.losses[0]) / abs(eager.trainee.losses[0])
        dn = abs(v.trainee.losses[-1] - eager.trainee.losses[-1]) / abs(eager.trainee.losses[-1])
        rows.append(dict(case=title, batch=batch, variant=v.name, first_wall=v.first[0], first_cpu=v.first[1],
                         wall=w, cpu=c, speed_cpu=ec / c, speed_wall=ew / w, d1=d1, dn=dn,
                         steps=len(v.trainee.losses), graphs=v.graphs))
    return rows


# --- policy evaluator -------------------------------------------------------------------------------------------

def bench_evaluator(sizes: list, repeats: int, notes: list, compile_evaluator: bool = True, cold: bool = True) -> list:
    """Rows of the evaluator at each ``(actions, horizon, batch)``: warm call time and the error of G and q(pi)
    against the float64 evaluator."""
    rows = []
    problem = compiler_problem()
    for num_actions, horizon, batch in sizes:
        rng = np.random.default_rng(0)
        model = aif.random_model(rng, [25, 2], [25, 3], [num_actions, 1], concentration=0.5)
        qs_np = [rng.dirichlet(np.ones(s), size=batch) for s in model.num_states]
        P = num_actions ** horizon
        specs: list = [("float64 (default)", torch.float64, False, False), ("float32", torch.float32, False, False),
                       ("float32, bf16 autocast", torch.float32, True, False), ("bfloat16 model", torch.bfloat16,
                                                                                   False, False)]
        if problem is None and compile_evaluator:
            specs.append(("float32, compiled", torch.float32, False, True))
        built = []  # (label, call, first (wall, CPU), result)
        for label, dtype, autocast, compiled in specs:
            try:
                tm = aif_deep.TabularModel.from_aif(model, dtype=dtype)
                qs = [torch.tensor(q, dtype=dtype) for q in qs_np]
                ev = aif_deep.PolicyEvaluator(tm, horizon, options=aif.EFEOptions.pymdp())
                if compiled:
                    torch._dynamo.reset()
                    ev._evaluate = torch.compile(ev._evaluate)  # the per-call work; checks stay outside

                def call(ev=ev, qs=qs, autocast=autocast):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                        return ev.posterior(qs, check_values=False)
                out: dict = {}
                with cold_cache(cold and compiled):
                    first = clocked(lambda call=call: out.update(r=call()))
                    call()
            except Exception as error:
                notes.append(f"evaluator {P:,} x {batch}: {label} failed: {type(error).__name__}: "
                             f"{str(error).splitlines()[0][:160]}")
                continue
            built.append((label, call, first, out["r"]))
        times: dict = {label: [] for label, *_ in built}
        for _ in range(repeats):  # interleaved, so that the machine's load moves every variant alike
            for label, call, *_ in built:
                times[label].append(clocked(call))
        ref = None
        for label, _, first, result in built:
            G, q_pi = (x.double() for x in result)
            if ref is None:
                ref = (G, q_pi)
            w, c = (statistics.median(t[k] for t in times[label]) for k in (0, 1))
            rows.append(dict(size=f"{P:,} x {batch}", variant=label, first_wall=first[0], first_cpu=first[1], wall=w,
                             cpu=c, rate=P * batch / w, err_G=float((G - ref[0]).abs().max()),
                             rel_G=float(((G - ref[0]).abs() / ref[0].abs().clamp_min(1e-12)).max()),
                             err_q=float((q_pi - ref[1]).abs().max())))
        base = next(r for r in rows if r["size"] == f"{P:,} x {batch}" and r["variant"] == "float32")
        for r in rows:
            if r["size"] == base["size"]:
                r["vs32_cpu"] = base["cpu"] / r["cpu"]
                r["vs32_wall"] = base["wall"] / r["wall"]
    return rows


def main(argv: list | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small networks and one evaluator size, default mode")
    parser.add_argument("--cases", default="", help="comma-separated training cases: td, model, rssm, or none "
                        "(default: all; 'model' with --quick)")
    parser.add_argument("--steps", type=int, default=0, help="steps per round (0: 100, 10 with --quick)")
    parser.add_argument("--rounds", type=int, default=0, help="timed rounds per variant (0: 5, 1 with --quick)")
    parser.add_argument("--no-evaluator", action="store_true", help="leave the policy evaluator out")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="use inductor's usual cache folder (default: a fresh one, so compile times are cold)")
    parser.add_argument("--backend", default="inductor",
                        help="torch.compile backend of the training rows (e.g. aot_eager: the tracing without the C++ "
                        "compiler, which the test uses to stay fast)")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    parser.add_argument("--only", default="", help="comma-separated training variants to run beside eager, e.g. "
                        "'compile loss (default)'")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    scratch = None
    if not args.warm_cache:  # removed at the end
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = scratch = tempfile.mkdtemp(prefix="bench_compile_inductor_")
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (10 if args.quick else 100)
    rounds = args.rounds or (1 if args.quick else 3)
    if compiler_problem() is None:
        torch._dynamo.config.recompile_limit = 64  # every variant of a case holds its own compiled entries
    modes = ["default"] if args.quick else ["default", "max-autotune-no-cudagraphs", "reduce-overhead"]
    notes: list = [] if compiler_problem() is None else [str(compiler_problem())]
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, os CPUs {os.cpu_count()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; C++ compiler: "
          f"{compiler_problem() or shutil.which(os.environ.get('CXX', 'g++'))}")
    results = []
    cases = [c.strip() for c in (args.cases or ("model" if args.quick else "td,model,rssm")).split(",")
             if c.strip() and c.strip() != "none"]
    if cases:
        print(f"# training: {steps} steps per round, {rounds} rounds (median), after the first step and 2 warm-up "
              "steps")
        print("| case | batch | variant | first step s (CPU s) | step us wall | step us CPU | speed-up CPU (wall) "
              "| loss rel. diff step 1 / last |")
        print("|---|---|---|---:|---:|---:|---:|---|")
    for case in cases:
        for r in bench_training(case, args.quick, steps, rounds, modes, notes, args.backend, not args.warm_cache,
                                frozenset(x.strip() for x in args.only.split(",") if x.strip())):
            results.append(r)
            variant = f"{r['variant']} [{r['graphs']}]" if r["graphs"] else r["variant"]
            print(f"| {r['case']} | {r['batch']} | {variant} | {r['first_wall']:.2f} ({r['first_cpu']:.2f}) | "
                  f"{r['wall'] * 1e6:,.0f} | {r['cpu'] * 1e6:,.0f} | {r['speed_cpu']:.2f}x ({r['speed_wall']:.2f}x) | "
                  f"{r['d1']:.1e} / {r['dn']:.1e} (step {r['steps']}) |", flush=True)
    if not args.no_evaluator:
        print("\n| evaluator (policies x batch) | variant | first call s (CPU s) | call ms wall | call ms CPU "
              "| vs float32 CPU (wall) | max abs err G (rel) | max abs err q(pi) |")
        print("|---|---|---:|---:|---:|---:|---|---:|")
        for r in bench_evaluator(QUICK_EVAL_SIZES if args.quick else EVAL_SIZES, 3 if args.quick else 11, notes,
                                 compile_evaluator=not args.quick, cold=not args.warm_cache):
            results.append(r)
            print(f"| {r['size']} | {r['variant']} | {r['first_wall']:.2f} ({r['first_cpu']:.2f}) | "
                  f"{r['wall'] * 1e3:,.2f} | {r['cpu'] * 1e3:,.2f} | {r['vs32_cpu']:.2f}x ({r['vs32_wall']:.2f}x) | "
                  f"{r['err_G']:.1e} ({r['rel_G']:.1e}) | {r['err_q']:.1e} |", flush=True)
    for note in notes:
        print(f"- {note}")
    print(f"# load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": results, "notes": notes}, fh, indent=1)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
