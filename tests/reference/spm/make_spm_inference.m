% SPM's spm_MDP_VB_X's inference within trials, for checking a whole trial step by step: four trials of the T-maze
% of tmaze_model.m with a known likelihood and initial state (MDP.A, MDP.D: no a or d, whose novelty terms would
% enter G), habits (MDP.e), transitions learned (MDP.b), the precision updated under beta = 1, and a reversal
% (the context flips at trial 3). Writes spm_inference.mat beside this script.
%
% As in make_spm_trials.m the states, outcomes and actions are fixed (Octave's rand is not MATLAB's) and Occam's
% window over policies is opened wide; rt is not kept.
%
% Usage (see README.md): octave --no-gui --eval "SPM_DIR='/path/to/spm12'; run('tests/reference/spm/make_spm_inference.m')"
addpath(SPM_DIR); addpath(fullfile(SPM_DIR, 'toolbox', 'DEM'));
here = fileparts(mfilename('fullpath'));

[mdp, T] = tmaze_model();
mdp = rmfield(mdp, {'a', 'd'});
mdp.D = {[1 0 0 0]', [1 1]' / 2};
A = mdp.A; B = mdp.B; C = mdp.C; V = mdp.V; D = mdp.D;

context = [1 1 2 2];
moves   = [4 2; 2 2; 4 3; 3 3];
for i = 1:numel(context)
  s = [1 0 0; context(i) * [1 1 1]]; u = [moves(i, :); 1 1]; o = zeros(2, T);
  for t = 2:T, s(1, t) = find(B{1}(:, s(1, t - 1), u(1, t - 1))); end
  for t = 1:T
    for g = 1:2, [~, o(g, t)] = max(A{g}(:, s(1, t), s(2, t))); end
  end
  M(i) = mdp; M(i).s = s; M(i).o = o; M(i).u = u;
end
OUT = spm_MDP_VB_X(M);
for i = 1:numel(OUT)
  X = OUT(i);
  F{i} = X.F; G{i} = X.G; w{i} = X.w; wn{i} = X.wn; un{i} = X.un; dn{i} = X.dn; R{i} = X.R;
  Qx1{i} = X.Q{1}; Qx2{i} = X.Q{2}; X1{i} = X.X{1}; X2{i} = X.X{2}; o_all{i} = X.o; u_all{i} = X.u;
  b1{i} = X.b{1}; b2{i} = X.b{2}; e{i} = X.e; xn1{i} = X.xn{1}; xn2{i} = X.xn{2}; vn1{i} = X.vn{1};
end
b0 = mdp.b; e0 = mdp.e; beta = mdp.beta; eta = mdp.eta;
save('-v7', fullfile(here, 'spm_inference.mat'), 'A', 'B', 'C', 'D', 'V', 'b0', 'e0', 'beta', 'eta', 'F', 'G', ...
     'w', 'wn', 'un', 'dn', 'R', 'Qx1', 'Qx2', 'X1', 'X2', 'o_all', 'u_all', 'b1', 'b2', 'e', 'xn1', 'xn2', 'vn1');
