% Rebuild ../shared/reference/spm/vbx_test_1a.mat (pymdp's test/matlab_crossval/generation/vb_x_matlab_test_1a.m,
% a stand-alone re-statement of the message passing of spm_MDP_VB_X with a backward window) under Octave.
%
% Octave's rand does not replay MATLAB's stream, so the model (A, B, C) and the sampled states, outcomes and
% actions are read from the shared file instead of drawn; everything else is recomputed here, with SPM's
% spm_dot, spm_cross and spm_MDP_G. Writes vbx_test_1a_octave.mat (xn, vn, qs, actions) beside this script.
%
% Usage (see README.md): octave --no-gui --eval "SPM_DIR='/path/to/spm12'; SHARED='../shared/reference/spm'; ...
%                                               run('tests/reference/spm/make_vbx_test_1a.m')"
addpath(SPM_DIR); addpath(fullfile(SPM_DIR, 'toolbox', 'DEM'));
ref = load(fullfile(SHARED, 'vbx_test_1a.mat'));
here = fileparts(mfilename('fullpath'));

lg = @(x) log(x + 1e-16);                          % the script's spm_log
nrm = @(x) bsxfun(@rdivide, x, sum(x, 1));         % column normalisation

A = ref.A; B = ref.B; C = ref.C;
T = 10; W = double(ref.t_horizon); tau = 0.25; Ni = 10; w = 16;
Ns = size(B{1}, 1); Nu = size(B{1}, 3); No = size(A{1}, 1); Np = Nu;
obs = double(ref.obs); given_actions = double(ref.actions);
lnC = lg(spm_softmax(C{1}));
Bt = zeros(size(B{1}));
for u = 1:Nu, Bt(:, :, u) = nrm(B{1}(:, :, u)'); end
D = ones(Ns, 1) / Ns;

U = reshape(1:Np, 1, Np);                          % policies: the next action
V = U;                                             % past actions then the policy (grows over the trial)
xn = zeros(Ni, Ns, T, T, Np); vn = xn;
x = zeros(Ns, T, Np) + 1/Ns; x(:, 1, :) = repmat(D, 1, 1, Np);
d_sep = zeros(Ns, Np) + 1/Ns;
actions = zeros(1, T - 1);

for t = 1:T
  L{t} = spm_dot(A{1}, sparse(obs(t), 1, 1, No, 1));
  x = spm_softmax(lg(x) / 4);                      % SPM's reset between steps (erp = 4)
  S = size(V, 1) + 1; R = t; F = zeros(Np, 1);
  for k = 1:Np
    for it = 1:Ni
      F(k) = 0;
      for j = max(1, t - W + 1):S
        sx = x(:, j, k); qL = zeros(Ns, 1); v = zeros(Ns, 1);
        if j <= t, qL = lg(L{j}(:)); end
        qx = lg(sx);
        if j == 1
          px = lg(D);
        elseif j == t - W + 1
          px = lg(d_sep(:, k));                   % each policy's earlier belief, as the prior of a moved window
        else
          px = lg(B{1}(:, :, V(j - 1, k)) * x(:, j - 1, k));
        end
        v = v + px + qL - qx;
        if j < R
          v = v + lg(Bt(:, :, V(j, k)) * x(:, j + 1, k)) + qL - qx;
        end
        F(k) = F(k) + sx' * 0.5 * v;               % one factor: no (N - 1)/N correction
        v = v - mean(v);
        sx = spm_softmax(qx + v * tau);
        x(:, j, k) = sx; xn(it, :, j, t, k) = sx; vn(it, :, j, t, k) = v;
      end
    end
  end
  Q = zeros(Np, 1);
  for k = 1:Np
    for j = t:S
      xq = {x(:, j, k)};
      Q(k) = Q(k) + spm_MDP_G(A, xq) + spm_dot(A{1}, xq)' * lnC(:, j);
    end
  end
  if t < T
    Pu = spm_softmax(w * Q - F);                   % the script's q(pi) (its sign of F, as pymdp's)
    [~, a] = max(Pu);
    actions(t) = given_actions(t);                 % the shared file's action (checked below to be the argmax)
    if a ~= actions(t), error('step %d: argmax action %d differs from the file''s %d', t, a, actions(t)); end
    V(t, :) = actions(t);
    if t + 1 < T, V(t + 1, :) = U; end
    if t - W >= 0, d_sep = squeeze(x(:, t - W + 1, :)); end
    x = zeros(Ns, T, Np) + 1/Ns;
  end
end
qs = {x};
save('-v7', fullfile(here, 'vbx_test_1a_octave.mat'), 'xn', 'vn', 'qs', 'actions');
