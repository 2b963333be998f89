% Occam's window over policies (MDP.zeta, SPM's default 3) in spm_MDP_VB_X: three trials of the T-maze of
% tmaze_model.m as in make_spm_inference.m (A and D known, b and e learned, beta = 1, a reversal at trial 2) but with
% the default window, so that from the second step on the policies whose q(pi) fell more than zeta nats below the
% best one's are dropped for the rest of the trial (their F, G, R, un are 0 there). Writes spm_occam.mat beside
% this script.
%
% Usage (see README.md): octave --no-gui --eval "SPM_DIR='/path/to/spm12'; run('tests/reference/spm/make_spm_occam.m')"
addpath(SPM_DIR); addpath(fullfile(SPM_DIR, 'toolbox', 'DEM'));
here = fileparts(mfilename('fullpath'));

[mdp, T] = tmaze_model();
mdp = rmfield(mdp, {'a', 'd', 'zeta'});            % zeta: SPM's default, 3
mdp.D = {[1 0 0 0]', [1 1]' / 2};
A = mdp.A; B = mdp.B; C = mdp.C; V = mdp.V; D = mdp.D;

context = [1 2 2];
moves   = [4 2; 4 3; 2 2];
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
  F{i} = X.F; G{i} = X.G; w{i} = X.w; wn{i} = X.wn; un{i} = X.un; R{i} = X.R;
  Qx1{i} = X.Q{1}; Qx2{i} = X.Q{2}; X1{i} = X.X{1}; X2{i} = X.X{2}; o_all{i} = X.o; u_all{i} = X.u;
  b1{i} = X.b{1}; b2{i} = X.b{2}; e{i} = X.e;
end
b0 = mdp.b; e0 = mdp.e; beta = mdp.beta; eta = mdp.eta;
save('-v7', fullfile(here, 'spm_occam.mat'), 'A', 'B', 'C', 'D', 'V', 'b0', 'e0', 'beta', 'eta', 'F', 'G', ...
     'w', 'wn', 'un', 'R', 'Qx1', 'Qx2', 'X1', 'X2', 'o_all', 'u_all', 'b1', 'b2', 'e');
