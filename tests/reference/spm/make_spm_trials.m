% SPM's spm_MDP_VB_X over six trials of the T-maze of DEM_demo_MDP_X (the same A, B, C, V), with the policy
% precision updated under its prior (MDP.beta), habits (MDP.e) and learning of a, b, d, e at the end of each
% trial, and a reversal: the hidden context flips from the fourth trial on. Writes spm_trials.mat beside this
% script.
%
% Octave's rand does not replay MATLAB's stream, so the states (MDP.s), outcomes (MDP.o) and actions (MDP.u)
% of every trial are fixed here (the most likely outcome of each state, one unlikely loss); MDP.zeta (Occam's
% window over policies) is set wide so that every policy stays in play, and the wall-clock field rt is not kept.
%
% Usage (see README.md): octave --no-gui --eval "SPM_DIR='/path/to/spm12'; run('tests/reference/spm/make_spm_trials.m')"
addpath(SPM_DIR); addpath(fullfile(SPM_DIR, 'toolbox', 'DEM'));
here = fileparts(mfilename('fullpath'));

[mdp, T] = tmaze_model();
A = mdp.A; B = mdp.B; C = mdp.C; V = mdp.V;

context = [1 1 1 2 2 2];                          % the reversal: the context flips at trial 4
moves   = [4 2; 4 3; 2 2; 4 3; 3 3; 4 2];         % the first factor's actions in each trial
lose    = [0 0 1 0 0 0];                          % trial 3 ends with the unlikely loss
N = numel(context);
for i = 1:N
  s = [1 0 0; context(i) * [1 1 1]]; u = [moves(i, :); 1 1]; o = zeros(2, T);
  for t = 2:T, s(1, t) = find(B{1}(:, s(1, t - 1), u(1, t - 1))); end
  for t = 1:T
    for g = 1:2, [~, o(g, t)] = max(A{g}(:, s(1, t), s(2, t))); end
  end
  if lose(i), o(2, T) = 5 - o(2, T); end           % reward (2) <-> loss (3)
  M(i) = mdp; M(i).s = s; M(i).o = o; M(i).u = u;
end
OUT = spm_MDP_VB_X(M);

% what each trial computed, one cell per trial (scipy.io.loadmat reads a cell as an object array)
for i = 1:N
  X = OUT(i);
  F{i} = X.F; G{i} = X.G; w{i} = X.w; wn{i} = X.wn; un{i} = X.un; dn{i} = X.dn; R{i} = X.R;
  Qx1{i} = X.Q{1}; Qx2{i} = X.Q{2}; X1{i} = X.X{1}; X2{i} = X.X{2};
  o_all{i} = X.o; u_all{i} = X.u; s_all{i} = X.s;
  a1{i} = X.a{1}; a2{i} = X.a{2}; b1{i} = X.b{1}; b2{i} = X.b{2}; d1{i} = X.d{1}; d2{i} = X.d{2}; e{i} = X.e;
  xn1{i} = X.xn{1}; vn1{i} = X.vn{1};
end
a0 = mdp.a; b0 = mdp.b; d0 = mdp.d; e0 = mdp.e; beta = mdp.beta; eta = mdp.eta;
save('-v7', fullfile(here, 'spm_trials.mat'), 'A', 'B', 'C', 'V', 'a0', 'b0', 'd0', 'e0', 'beta', 'eta', ...
     'F', 'G', 'w', 'wn', 'un', 'dn', 'R', 'Qx1', 'Qx2', 'X1', 'X2', 'o_all', 'u_all', 's_all', ...
     'a1', 'a2', 'b1', 'b2', 'd1', 'd2', 'e', 'xn1', 'vn1');
