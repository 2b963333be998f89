% Preference learning (MDP.c) in SPM's spm_MDP_VB_X over three trials of the T-maze of tmaze_model.m. SPM12
% cannot run it (spm_MDP_VB_X.m line 1138: "binary operator '.*' not implemented for 'cell' by 'matrix'
% operations", the outcome is a cell there); the current SPM (github.com/spm/spm) can, under Octave with the
% two shims in octave_shims/ (tensorprod; sum(x, 'all')). Writes spm_preferences.mat beside this script.
%
% Usage (see README.md): octave --no-gui --eval "SPM_DIR='/path/to/spm'; run('tests/reference/spm/make_spm_preferences.m')"
here = fileparts(mfilename('fullpath'));
addpath(SPM_DIR); addpath(fullfile(SPM_DIR, 'toolbox', 'DEM')); addpath(fullfile(here, 'octave_shims'));

[mdp, T] = tmaze_model();
mdp = rmfield(mdp, {'C', 'a', 'b'});
mdp.c = {[1/4 2 2 2 2]', [2 8 1/2]'};              % counts over outcomes, the same at every step
moves = [4 2; 3 3; 4 3]; context = [1 2 2];
for i = 1:numel(context)
  s = [1 0 0; context(i) * [1 1 1]]; u = [moves(i, :); 1 1]; o = zeros(2, T);
  for t = 2:T, s(1, t) = find(mdp.B{1}(:, s(1, t - 1), u(1, t - 1))); end
  for t = 1:T
    for g = 1:2, [~, o(g, t)] = max(mdp.A{g}(:, s(1, t), s(2, t))); end
  end
  M(i) = mdp; M(i).s = s; M(i).o = o; M(i).u = u;
end
OUT = spm_MDP_VB_X(M);
for i = 1:numel(OUT)
  c1{i} = OUT(i).c{1}; c2{i} = OUT(i).c{2}; C1{i} = OUT(i).C{1}; C2{i} = OUT(i).C{2}; o_all{i} = OUT(i).o;
end
c0 = mdp.c; eta = mdp.eta;
save('-v7', fullfile(here, 'spm_preferences.mat'), 'c0', 'eta', 'c1', 'c2', 'C1', 'C2', 'o_all');
