"""The compiled kernels of ``aif.fast``: one Agent step of the common configuration, in numba.

Imported only by ``aif.fast`` (in its background thread, or by ``aif.fast.compile``): importing numba takes
about half a second, which must not fall on ``import aif`` or on an agent's first step.

Every function here is plain Python over NumPy arrays and scalars, compiled with ``numba.njit(cache=True)``
(the machine code is kept under ``__pycache__`` for the next process). The maths is the NumPy path's, written
as loops over the joint state space; the readable definitions are ``aif.inference`` (fixed point, exact),
``aif.efe.step_terms`` (utility, ambiguity, information gain), ``aif.control`` (prefix tree, q(pi), selection).

Data layout (built by ``aif.fast.Tables``; ``F`` factors, ``M`` modalities, ``J = prod(S)`` joint states,
``P`` policies of horizon ``H``, the ``K`` distinct prefixes of all depths stacked depth by depth):

- beliefs are flat: ``q[soff[f]:soff[f + 1]]`` is factor f's vector;
- ``state_of (F, J)``: the state of factor f in joint state j (first factor slowest, as ``np.ravel_multi_index``);
- ``lnA_joint (sum_m O_m * J,)``: per modality, ``guard(A_m)`` ``(O_m, J)`` broadcast to the joint states;
- ``deps (n, F)``: each array's dependency list padded with -1, ``ndeps (n,)`` its length; an array is read over
  the joint of its dependencies (the first slowest, ``aif.maths.outer``'s order);
- ``A_m`` and ``B_f`` as compressed rows (``ptr``, ``col``, ``val``; only the non-zero entries, so a deterministic
  B costs one entry per column): row ``a_row[m] + o`` is ``A_m[o]`` over the joint of its dependencies, row
  ``b_row[f] + u * S_f + s'`` is ``B_f[s', ..., u]``. A skipped entry is an exact zero, and adding ``0 * x``
  changes no sum, so the sums are those of the dense arrays;
- ``HA (sum_m D_m,)``: H[p(o | s)] per modality over its dependencies, at ``h_off``;
- ``lnC (sum_m T_m * O_m,)``: ln p(o) per modality and preference column, at ``c_off``, ``T_m`` columns;
- ``parent (K,)``, ``actions (K, F)``, ``inverse (H, P)``, ``lev_off (H + 1,)``: ``aif.control.policy_prefixes``;
  ``first (P, F)``: each policy's first action;
- ``a_flags (M,)``: the work the policy scoring skips for each modality (``A_IDENTITY``, ``A_CERTAIN``,
  ``A_SAME_DEPS``; ``aif.fast._flags``), each skip giving the same numbers to the bit;
- ``b_det (F,)``, ``b_t0 (F,)``, ``b_target``: deterministic transitions as the next state of each column
  (``aif.fast._moves``).

The tables travel as two arrays, ``ix`` (int64) and ``fx`` (float64), so that a call unboxes a handful of arrays
rather than thirty (measured: most of the call's cost otherwise): ``ix`` starts with the sizes ``F, M, J, P, H``
and the offsets of the tables named in ``aif.fast.INT_TABLES`` (in ``ix``) and ``aif.fast.FLOAT_TABLES`` (in
``fx``); ``unpack`` returns them as views.

Guards: ``kind`` 0 exact (0 ln 0 = 0 in ``xlogx``), 1 clip (ln max(x, eps)), 2 add (ln(x + eps)); ``aif.maths``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .fast import FLOAT_TABLES, INT_TABLES, SIZES

jit = numba.njit(cache=True, nogil=True)
# Helpers are inlined into their callers: an array passed to a compiled call is reference-counted on the way in
# and out, and inlining lets numba drop those counts (measured: the policy scoring of the 7x7 grid at horizon 3
# took 2.4x as long with the helpers as calls). The three stages a step calls once (infer, score, posterior) stay
# calls: inlining them too gave the same speed and took 15.3 s of CPU to compile instead of 9.8 s
# (benchmarks/results/bench_loop.md).
helper = numba.njit(cache=True, nogil=True, inline="always")


@helper
def glog(x, kind, eps):
    """ln x under the guard (``aif.maths.LogGuard.__call__``)."""
    if kind == 1:
        return math.log(max(x, eps))
    if kind == 2:
        return math.log(x + eps)
    return math.log(x) if x > 0.0 else -math.inf


@helper
def xlogx(x, kind, eps):
    """x ln x under the guard (``LogGuard.xlogx``: 0 ln 0 = 0 for the exact guard)."""
    if kind == 0:
        return x * math.log(x) if x > 0.0 else 0.0
    return x * glog(x, kind, eps)


@helper
def softmax_into(x, out):
    """out = exp(x - max x) / sum (``aif.maths.softmax``)."""
    top = x.max()
    total = 0.0
    last, value = math.nan, math.nan  # equal inputs, one exp (see ``score``)
    for i in range(x.shape[0]):
        if x[i] - top != last:
            last = x[i] - top
            value = math.exp(last)
        out[i] = value
        total += value
    for i in range(x.shape[0]):
        out[i] /= total


@helper
def joint_of(q, deps_row, ndeps, S, soff, out):
    """The joint of the beliefs of factors ``deps_row[:ndeps]`` (the first slowest) from the flat belief ``q``,
    written into ``out[:D]``; returns D."""
    D = 1
    out[0] = 1.0
    for k in range(ndeps):
        g = deps_row[k]
        n = S[g]
        # extend the joint by factor g: entries (d, s) -> d * n + s, filled from the back so d is read first
        for d in range(D - 1, -1, -1):
            base = out[d]
            for s in range(n - 1, -1, -1):
                out[d * n + s] = base * q[soff[g] + s]
        D *= n
    return D



@helper
def dot_row(ptr, col, val, r, work):
    """sum_d M[r, d] work[d] over the stored entries of row ``r``."""
    total = 0.0
    for k in range(ptr[r], ptr[r + 1]):
        total += val[k] * work[col[k]]
    return total


@helper
def dep_belief(q, deps_row, ndeps, S, soff, work):
    """The joint belief over factors ``deps_row[:ndeps]`` (``joint_of``): with one factor, its own vector in ``q``
    (``joint_of`` would copy it times 1.0: the same numbers), else the joint written into ``work``."""
    if ndeps == 1:
        g = deps_row[0]
        return q[soff[g]:soff[g + 1]]
    D = joint_of(q, deps_row, ndeps, S, soff, work)
    return work[:D]


@helper
def transition(q, u_row, S, soff, b_deps, b_ndeps, b_row, ptr, col, val, det, t0, target, work, out):
    """One step of B for every factor (``aif.control.predict_policies``): q(s_f') = sum_d B_f[s', d, u_f] q(d),
    d the joint of factor f's dependencies; ``q`` and ``out`` flat beliefs, ``u_row (F,)`` the actions. A
    deterministic B_f (``det[f]``) adds each q(d) into its next state ``target``, column by column: the sums of
    the rows below, in the same order, without a row's search for its few entries."""
    for f in range(S.shape[0]):
        x = dep_belief(q, b_deps[f], b_ndeps[f], S, soff, work)
        if det[f]:
            out_f = out[soff[f]:soff[f + 1]]
            out_f[:] = 0.0
            base = t0[f] + u_row[f] * x.shape[0]
            for d in range(x.shape[0]):
                out_f[target[base + d]] += x[d]
            continue
        first = b_row[f] + u_row[f] * S[f]
        for s in range(S[f]):
            out[soff[f] + s] = dot_row(ptr, col, val, first + s, x)


@helper
def expected_loglik(qs, f, logL, state_of, S, soff):
    """E_{q(s_not f)}[ln p(o | s)] as a function of s_f, on the joint states (``inference.expected_log_likelihood``)."""
    F, J = state_of.shape
    out = np.zeros(S[f])
    for j in range(J):
        w = logL[j]
        for g in range(F):
            if g != f:
                w *= qs[soff[g] + state_of[g, j]]
        out[state_of[f, j]] += w
    return out


@helper
def mean_field_vfe(qs, lp, logL, state_of, S, soff, kind, eps, accuracy):
    """F = sum_f q_f . (ln q_f - ln p_f) - E_q[ln p(o | s)] (``inference.mean_field_vfe``)."""
    F, J = state_of.shape
    vfe = 0.0
    for f in range(F):
        part = 0.0
        for s in range(S[f]):
            i = soff[f] + s
            part += qs[i] * (glog(qs[i], kind, eps) - lp[i])
        vfe += part
    if accuracy:
        acc = 0.0
        for j in range(J):
            w = logL[j]
            for g in range(F):
                w *= qs[soff[g] + state_of[g, j]]
            acc += w
        vfe -= acc
    return vfe


@jit
def infer(obs, prior, S, soff, state_of, lnA_joint, a_deps, a_ndeps, O, method, num_iter, tol, parallel,
          legacy_initial, kind, eps):
    """The posterior (flat) after outcome indices ``obs (M,)`` from the flat ``prior``: ``method`` 0 is
    ``FixedPoint`` (``tol < 0``: every sweep), 1 is ``Exact`` (``aif.inference``)."""
    F, J = state_of.shape
    M = O.shape[0]
    lp = np.empty(prior.shape[0])
    last, value = math.nan, math.nan  # equal entries, one logarithm (see ``score``)
    for i in range(prior.shape[0]):
        if prior[i] != last:
            last = prior[i]
            value = glog(last, kind, eps)
        lp[i] = value
    # ln p(o | s) on the joint states, of all modalities
    logL = np.zeros(J)
    off = 0
    for m in range(M):
        row = off + obs[m] * J
        for j in range(J):
            logL[j] += lnA_joint[row + j]
        off += O[m] * J
    qs = np.zeros(prior.shape[0])
    if F == 1:  # the fixed point in one step, the posterior itself (the joint, marginalised, as below: 0.0 + q is q)
        for j in range(J):
            logL[j] += lp[j]
        softmax_into(logL, qs)
        return qs
    if method == 1:  # Exact: the joint, marginalised
        joint = logL.copy()
        for j in range(J):
            for f in range(F):
                joint[j] += lp[soff[f] + state_of[f, j]]
        post = np.empty(J)
        softmax_into(joint, post)
        for j in range(J):
            for f in range(F):
                qs[soff[f] + state_of[f, j]] += post[j]
        return qs
    by_factor = np.zeros((F, J))  # ln p(o | s) of the modalities that read each factor
    off = 0
    for m in range(M):
        row = off + obs[m] * J
        for k in range(a_ndeps[m]):
            f = a_deps[m, k]
            for j in range(J):
                by_factor[f, j] += lnA_joint[row + j]
        off += O[m] * J
    for f in range(F):
        qs[soff[f]:soff[f + 1]] = 1.0 / S[f]
    vfe = mean_field_vfe(qs, lp, logL, state_of, S, soff, kind, eps, not legacy_initial)
    for _ in range(num_iter):
        source = qs.copy() if parallel else qs  # parallel: every factor reads the previous sweep
        for f in range(F):
            x = expected_loglik(source, f, by_factor[f], state_of, S, soff)
            for s in range(S[f]):
                x[s] += lp[soff[f] + s]
            softmax_into(x, qs[soff[f]:soff[f + 1]])
        if tol < 0.0:
            continue
        new_vfe = mean_field_vfe(qs, lp, logL, state_of, S, soff, kind, eps, True)
        if abs(vfe - new_vfe) < tol:
            break
        vfe = new_vfe
    return qs



# The layout the kernels read, written out here and checked against the one ``aif.fast.Tables`` writes. The positions
# below are compile-time constants of the kernels, and numba's cache is keyed on this file's source alone: a layout
# changed in aif/fast.py only would load machine code that reads the old one. So a change of layout is made in both
# files (which compiles the kernels again), or importing this module fails.
LAYOUT = (("F", "M", "J", "P", "H"),
          ("S", "soff", "state_of", "O", "a_deps", "a_ndeps", "a_row", "a_ptr", "a_col", "h_off", "c_off", "T",
           "b_deps", "b_ndeps", "b_row", "b_ptr", "b_col", "parent", "actions", "inverse", "lev_off", "first", "codes",
           "settings", "a_flags", "b_det", "b_t0", "b_target"),
          ("lnA_joint", "a_val", "HA", "lnC", "b_val", "ln_E", "signs", "settings_f"))
if (SIZES, INT_TABLES, FLOAT_TABLES) != LAYOUT:
    raise ImportError("aif.fast's table layout (SIZES, INT_TABLES, FLOAT_TABLES) differs from "
                      "aif._fast_kernels.LAYOUT: change both (numba's cached kernels are keyed on this file alone)")
HEAD = len(LAYOUT[0])
NI = len(LAYOUT[1])
(S_, SOFF, STATE_OF, O_, A_DEPS, A_NDEPS, A_ROW, A_PTR, A_COL, H_OFF, C_OFF, T_, B_DEPS, B_NDEPS, B_ROW, B_PTR, B_COL,
 PARENT, ACTIONS, INVERSE, LEV_OFF, FIRST, CODES, SETTINGS, A_FLAGS, B_DET, B_T0, B_TARGET) = range(NI)
A_IDENTITY, A_CERTAIN, A_SAME_DEPS = 1, 2, 4  # the bits of ``a_flags`` (``aif.fast._flags``)
LN_A_JOINT, A_VAL, HA_, LN_C, B_VAL, LN_E, SIGNS, SETTINGS_F = range(len(LAYOUT[2]))


@helper
def ints_at(ix, k):
    """Int table ``k`` (a position in ``INT_TABLES``), flat."""
    return ix[ix[HEAD + k]:ix[HEAD + k + 1]]


@helper
def floats_at(ix, fx, k):
    """Float table ``k`` (a position in ``FLOAT_TABLES``), flat."""
    base = HEAD + NI + 1
    return fx[ix[base + k]:ix[base + k + 1]]


@jit
def score(qs, ix, fx, outcome_kind, outcome_eps):
    """The EFE terms of every policy, ``(3, P)``: utility, ambiguity, state information gain, each summed over
    the policy's steps (``aif.control.prefix_tree_efe`` over ``aif.efe.step_terms``, without a state floor)."""
    F, P, H = ix[0], ix[3], ix[4]
    S, soff, O, T = ints_at(ix, S_), ints_at(ix, SOFF), ints_at(ix, O_), ints_at(ix, T_)
    a_deps, a_ndeps, a_row = ints_at(ix, A_DEPS).reshape(-1, F), ints_at(ix, A_NDEPS), ints_at(ix, A_ROW)
    a_ptr, a_col, h_off, c_off = ints_at(ix, A_PTR), ints_at(ix, A_COL), ints_at(ix, H_OFF), ints_at(ix, C_OFF)
    b_deps, b_ndeps, b_row = ints_at(ix, B_DEPS).reshape(F, F), ints_at(ix, B_NDEPS), ints_at(ix, B_ROW)
    b_ptr, b_col, a_flags = ints_at(ix, B_PTR), ints_at(ix, B_COL), ints_at(ix, A_FLAGS)
    b_det, b_t0, b_target = ints_at(ix, B_DET), ints_at(ix, B_T0), ints_at(ix, B_TARGET)
    parent, actions = ints_at(ix, PARENT), ints_at(ix, ACTIONS).reshape(-1, F)
    inverse, lev_off = ints_at(ix, INVERSE).reshape(H, P), ints_at(ix, LEV_OFF)
    a_val, HA, lnC, b_val = floats_at(ix, fx, A_VAL), floats_at(ix, fx, HA_), floats_at(ix, fx, LN_C), floats_at(
        ix, fx, B_VAL)
    n_belief = qs.shape[0]
    work = np.empty(ix[2])  # the joint of any dependency list fits in the joint of all factors
    out = np.zeros((3, P))
    previous = qs.reshape(1, n_belief)
    # q(o) ln q(o) is computed again only when q(o) differs from the last one: a sharp belief's entries are mostly
    # one value (the grid's tiny exp(2 ln eps) mass off the known cell), so the grid's 49 outcomes x 5 policies
    # per step take a few logarithms instead of 245, numba's scalar log being the kernel's largest cost there
    # (no SVML). The same input gives the same output, so the sums are unchanged to the bit.
    last_q, last_h = math.nan, math.nan
    for t in range(H):
        lo, hi = lev_off[t], lev_off[t + 1]
        current = np.empty((hi - lo, n_belief))
        step = np.zeros((3, hi - lo))  # utility, ambiguity, entropy of q(o), of each distinct prefix
        for i in range(hi - lo):
            transition(previous[parent[lo + i]], actions[lo + i], S, soff, b_deps, b_ndeps, b_row, b_ptr, b_col,
                       b_val, b_det, b_t0, b_target, work, current[i])
            x = work[:0]
            for m in range(O.shape[0]):
                flags = a_flags[m]
                if not flags & A_SAME_DEPS:  # else the joint of the modality before
                    x = dep_belief(current[i], a_deps[m], a_ndeps[m], S, soff, work)
                ambiguity = 0.0
                if not flags & A_CERTAIN:  # else a sum of zeros
                    for d in range(x.shape[0]):
                        ambiguity += HA[h_off[m] + d] * x[d]
                identity = flags & A_IDENTITY
                col = c_off[m] + min(t, T[m] - 1) * O[m]
                utility = 0.0
                entropy = 0.0
                for o in range(O[m]):
                    qo = x[o] if identity else dot_row(a_ptr, a_col, a_val, a_row[m] + o, x)
                    utility += qo * lnC[col + o]
                    if qo != last_q:
                        last_q = qo
                        last_h = xlogx(qo, outcome_kind, outcome_eps)
                    entropy -= last_h
                step[0, i] += utility
                step[1, i] += ambiguity
                step[2, i] += entropy
        for p in range(P):
            k = inverse[t, p]
            out[0, p] += step[0, k]
            out[1, p] += step[1, k]
            out[2, p] += step[2, k] - step[1, k]  # state information gain = H[q(o)] - ambiguity
        previous = current
    return out


@jit
def posterior(G, ln_E, gamma, out):
    """q(pi) = softmax(-gamma G + ln E) into ``out``, with G shifted by its lowest allowed value when gamma G
    would overflow (``aif.control.posterior_of``)."""
    P = G.shape[0]
    x = np.empty(P)
    top = 0.0
    for p in range(P):
        top = max(top, abs(G[p]))
    if gamma * top < 1e300:
        for p in range(P):
            x[p] = -gamma * G[p] + ln_E[p]
    else:
        low = math.inf
        for p in range(P):
            if math.isfinite(ln_E[p]):
                low = min(low, G[p])
        for p in range(P):
            x[p] = -gamma * ((G[p] - low) if math.isfinite(ln_E[p]) else 0.0) + ln_E[p]
    softmax_into(x, out)


@jit
def predict(qs, action, ix, fx, out):
    """The next prior (flat, into ``out``) from the flat belief ``qs`` and the action ``(F,)``
    (``aif.control.predict``)."""
    F = ix[0]
    transition(qs, action, ints_at(ix, S_), ints_at(ix, SOFF), ints_at(ix, B_DEPS).reshape(F, F),
               ints_at(ix, B_NDEPS), ints_at(ix, B_ROW), ints_at(ix, B_PTR), ints_at(ix, B_COL),
               floats_at(ix, fx, B_VAL), ints_at(ix, B_DET), ints_at(ix, B_T0), ints_at(ix, B_TARGET),
               np.empty(ix[2]), out)


@jit
def step(obs, prior, ix, fx, out, action):
    """One Agent step on outcome indices ``obs (M,)`` and the flat ``prior``, written into ``out`` and ``action``.
    Returns ``False``, having written nothing, when an index is out of range (the caller raises the NumPy path's
    error), else ``True``.

    ``out``: the flat posterior, ``terms (4, P)`` (utility, ambiguity, state_info_gain, risk), ``G (P,)``,
    ``q_pi (P,)`` and the flat next prior, one after the other (``aif.fast.Tables``). With deterministic
    selection the kernel takes the action (into ``action (F,)``) and predicts the next prior; otherwise both are
    left for the caller (stochastic selection draws in Python). Settings (``SETTINGS``): inference method (0 fixed
    point, 1 exact), num_iter, parallel, legacy initial VFE, inference guard kind, outcome guard kind, sampling
    (0 full, 1 marginal), deterministic selection (1) or not (0); (``SETTINGS_F``): tol (< 0: none), inference
    guard eps, outcome guard eps, gamma.
    """
    F, J, P = ix[0], ix[2], ix[3]
    n = prior.shape[0]
    O = ints_at(ix, O_)
    for m in range(O.shape[0]):
        if not 0 <= obs[m] < O[m]:
            return False
    settings, settings_f = ints_at(ix, SETTINGS), floats_at(ix, fx, SETTINGS_F)
    qs = infer(obs, prior, ints_at(ix, S_), ints_at(ix, SOFF), ints_at(ix, STATE_OF).reshape(F, J),
               floats_at(ix, fx, LN_A_JOINT), ints_at(ix, A_DEPS).reshape(-1, F), ints_at(ix, A_NDEPS),
               O, settings[0], settings[1], settings_f[0], settings[2] == 1, settings[3] == 1,
               settings[4], settings_f[1])
    out[:n] = qs
    terms = out[n:n + 4 * P].reshape(4, P)
    G, q_pi = out[n + 4 * P:n + 5 * P], out[n + 5 * P:n + 6 * P]
    terms[:3] = score(qs, ix, fx, settings[5], settings_f[2])
    codes, signs = ints_at(ix, CODES), floats_at(ix, fx, SIGNS)
    for p in range(P):
        # risk = -utility - information gain - ambiguity (``aif.efe.combine``); G summed term by term, in order
        terms[3, p] = -terms[0, p] - terms[2, p] - terms[1, p]
        G[p] = 0.0
        for k in range(codes.shape[0]):
            G[p] += signs[k] * terms[codes[k], p]
    posterior(G, floats_at(ix, fx, LN_E), settings_f[3], q_pi)
    if settings[7] == 0:
        return True
    first = ints_at(ix, FIRST).reshape(P, F)
    if settings[6] == 0:  # the first action of the most probable policy (the first of ties)
        action[:] = first[np.argmax(q_pi)]
    else:  # per factor, the most probable first action under q(pi)
        for f in range(F):
            marginal = np.zeros(first[:, f].max() + 1)
            for p in range(P):
                marginal[first[p, f]] += q_pi[p]
            action[f] = np.argmax(marginal)
    predict(qs, action, ix, fx, out[n + 6 * P:])
    return True


@helper
def draw_column(cdf, base, u):
    """The index drawn by the uniform ``u`` from the column CDF ``cdf[base:]`` (its last entry infinity):
    ``bisect.bisect_right``, as ``aif.envs.POMDPEnv`` samples."""
    i = 0
    while cdf[base + i] <= u:
        i += 1
    return i


@jit
def episode(obs, prior, ix, fx, out, actions, uniforms, agent_factor, act_start, e_S, ctrl, b_deps, b_ndeps, b_U,
            b_off, b_cdf, a_reads, a_nreads, a_off, a_cdf, o_off, state_reward, outcome_reward, ends, state,
            obs_rec, state_rec, rewards):
    """Up to ``n = len(uniforms)`` steps of an agent (``step``, deterministic selection) in a tabular process
    (``aif.envs.POMDPEnv``), as ``aif.rollout``'s loop takes them, the process drawing from ``uniforms (n, F_e +
    M)`` row by row what ``POMDPEnv.step`` draws (its ``F_e`` transitions, then its ``M`` observations).

    ``obs (M,)`` and ``state (F_e,)``: the observation the agent acts on first and the process's state, both
    updated in place to the last ones. Row ``t`` of ``out``, ``actions``, ``rewards``: step t's (``step``'s
    outputs; the reward); row ``t + 1`` of ``obs_rec``, ``state_rec``: what followed it. The process (``aif.fast.
    EnvTables``): factor ``f`` moves to the draw from ``B_f``'s column over its dependencies ``b_deps[f]`` and its
    control (the action on ``ctrl``, else 0), ``b_cdf`` CDFs of ``e_S[f]`` entries from ``b_off[f]``, column by
    column; modality ``m`` draws from ``A_m``'s column over ``a_reads[m]`` (``a_off``, ``o_off``: its CDFs and its
    outcome count's start); the reward is ``state_reward`` at the joint state plus each ``outcome_reward``, and
    the episode ends at a joint state where ``ends``. The environment's action is the agent's on ``agent_factor``
    plus ``act_start`` (``aif.envs.AgentWrapper``).

    Returns ``(steps taken, how)``: ``how`` 0 all ``n`` taken, 1 the episode ended at the last step taken, 2 the
    agent's kernel refused step ``steps``'s observation (an index out of its range; nothing of that step written).
    """
    n = uniforms.shape[0]
    F_e, M = e_S.shape[0], a_off.shape[0]
    width = out.shape[1]
    start = width - prior.shape[0]  # where a step writes the next prior
    new = np.empty(F_e, np.int64)
    current = prior
    for t in range(n):
        row = out[t]
        if not step(obs, current, ix, fx, row, actions[t]):
            return t, 2
        current = row[start:]
        u_row = uniforms[t]
        a = actions[t, agent_factor] + act_start
        for f in range(F_e):
            c = 0
            for k in range(b_ndeps[f]):
                g = b_deps[f, k]
                c = c * e_S[g] + state[g]
            c = c * b_U[f] + (a if f == ctrl else 0)
            new[f] = draw_column(b_cdf, b_off[f] + c * e_S[f], u_row[f])
        state[:] = new
        j = 0
        for f in range(F_e):
            j = j * e_S[f] + state[f]
        reward = state_reward[j]
        for m in range(M):
            c = 0
            for k in range(a_nreads[m]):
                g = a_reads[m, k]
                c = c * e_S[g] + state[g]
            size = o_off[m + 1] - o_off[m]
            obs[m] = draw_column(a_cdf, a_off[m] + c * size, u_row[F_e + m])
            reward += outcome_reward[o_off[m] + obs[m]]
        rewards[t] = reward
        obs_rec[t + 1] = obs
        state_rec[t + 1] = state
        if ends[j]:
            return t + 1, 1
    return n, 0
