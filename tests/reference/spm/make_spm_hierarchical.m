% A two-level (deep temporal) model through SPM12's spm_MDP_VB_X (MDP.MDP + MDP.link): a miniature of
% DEM_demo_MDP_reading. Writes spm_hierarchical.mat beside this script.
%
% Higher level (semantic), three steps: which of four two-page stories is being read (1 flee-feed, 2 wait-feed:
% happy; 3 flee-wait, 4 wait-flee: sad), which page is in view (stay or proceed), and the report (none, happy,
% sad, set by the action); outcomes: the word on the page (flee, feed, wait), the page, and feedback (none,
% right, wrong; preferences 0, 2, -4 nats). Five policies over the trial (MDP.V): read both pages and
% report happy, or sad, or nothing; report happy, or sad, at once.
% Lower level (lexical), three steps for every step of the higher: which word (linked to the higher level's word
% outcome: MDP.link{1, 1} = eye(3)) and where the eye is (centre, left, right); outcomes: what is seen (nothing,
% bird, seed, cat: flee = seed left, cat right; feed = seed left, bird right; wait = nothing left, bird right)
% and where. Nine policies over its trial, one saccade per move; no preferences (purely epistemic).
% Both levels' A and B are one-hot; both infer the precision (beta = 1); Occam's window over policies is opened
% wide (zeta = 1e8) at both. The lower level keeps SPM's default chi = 1/64: its trial stops as soon as the
% entropy of its beliefs about the linked factor's initial state falls below chi.
%
% Octave's rand is not MATLAB's, so states, outcomes and actions are fixed at both levels: the higher level's in
% MDP.s, MDP.o, MDP.u, the lower level's in MDP.MDP(t).s, .o, .u, one lower MDP per higher step (spm_MDP_VB_X
% takes MDP.MDP(t) for step t when there is one, carrying Dirichlet counts, none here, from the last lower trial;
% a given mdp.s(f, 1) is kept, else it is read from the higher outcome through the link). The story is 3 (flee,
% wait: sad): the agent proceeds to page 2 and reports sad; at each page it looks left then right.
%
% The second part runs DEM_demo_MDP_reading's own model (its arrays written out here from the demo's description:
% six four-word stories, words of two pictures in four quadrants that may be flipped; moving policies, MDP.U, at
% both levels; T = 5 above, 3 below; chi = 1/64, tau = 2 below; SPM's Occam's window does not act on moving
% policies) with states, outcomes and actions fixed: story 1 read page by page, reported happy. Its fields are
% prefixed r.
%
% Usage (see README.md): octave --no-gui --eval "SPM_DIR='/path/to/spm12'; run('tests/reference/spm/make_spm_hierarchical.m')"
addpath(SPM_DIR); addpath(fullfile(SPM_DIR, 'toolbox', 'DEM'));
here = fileparts(mfilename('fullpath'));

% lower level (lexical): word x where
%--------------------------------------------------------------------------
seen = [3 4; 3 2; 1 2];              % words' (left, right) sights: 1 nothing, 2 bird, 3 seed, 4 cat
a = zeros(4, 3, 3); where = zeros(3, 3, 3); b = zeros(3, 3, 3);
for w = 1:3
  a(1, w, 1) = 1;                     % the centre shows nothing
  a(seen(w, 1), w, 2) = 1; a(seen(w, 2), w, 3) = 1;
  for l = 1:3, where(l, w, l) = 1; end
end
for k = 1:3, b(k, :, k) = 1; end      % saccade to location k
lo.A = {a, where};
lo.B = {eye(3), b};
lo.D = {ones(3, 1) / 3, [1 0 0]'};   % the word's prior is replaced by the higher level's
[k1, k2] = ndgrid(1:3, 1:3);
lo.V = ones(2, 9, 2); lo.V(:, :, 2) = [k1(:)'; k2(:)'];
lo.zeta = 1e8; lo.beta = 1;
lA = lo.A; lB = lo.B; lV = lo.V;

% higher level (semantic): story x page x report
%--------------------------------------------------------------------------
words = [1 2; 3 2; 1 3; 3 1];         % the two words (1 flee, 2 feed, 3 wait) of each story
happy = [1 1 0 0];
A1 = zeros(3, 4, 2, 3); A2 = zeros(2, 4, 2, 3); A3 = zeros(3, 4, 2, 3);
for s = 1:4, for p = 1:2, for r = 1:3
  A1(words(s, p), s, p, r) = 1;
  A2(p, s, p, r) = 1;
  if r == 1, A3(1, s, p, r) = 1; elseif (r == 2) == happy(s), A3(2, s, p, r) = 1; else, A3(3, s, p, r) = 1; end
end, end, end
hB2 = cat(3, eye(2), [0 0; 1 1]);     % stay, proceed
hB3 = zeros(3, 3, 3); for k = 1:3, hB3(k, :, k) = 1; end
hi.A = {A1, A2, A3};
hi.B = {eye(4), hB2, hB3};
hi.C = {zeros(3, 1), zeros(2, 1), [0 2 -4]'};
hi.D = {ones(4, 1) / 4, [1 0]', [1 0 0]'};
% policies (step, policy, factor): story never acted on; page: proceed then stay, or stay; report
hi.V = ones(2, 5, 3);
hi.V(:, :, 2) = [2 2 2 1 1; 1 1 1 1 1];
hi.V(:, :, 3) = [1 1 1 2 3; 2 3 1 2 3];
hi.zeta = 1e8; hi.beta = 1;
hi.link = {eye(3), [], []; [], [], []};   % lower factor 1 (word) <- higher modality 1 (word)

% fixed states, outcomes and actions at both levels
%--------------------------------------------------------------------------
story = 3; T = 3;
hi.s = [story story story; 1 2 2; 1 1 3];
hi.u = [1 1; 2 1; 1 3];
hi.o = zeros(3, T);
for t = 1:T
  hi.o(1, t) = words(story, hi.s(2, t)); hi.o(2, t) = hi.s(2, t);
  hi.o(3, t) = find(A3(:, story, hi.s(2, t), hi.s(3, t)));
end
look = [2 3];                         % left, then right
for t = 1:T
  m = lo; w = hi.o(1, t);
  m.s = [w w w; 1 look]; m.u = [1 1; look];
  m.o = [1 seen(w, :); 1 look];
  M(t) = m;
end
hi.MDP = M;
OUT = spm_MDP_VB_X(hi);

% the higher level, and each lower trial (cells of T)
%--------------------------------------------------------------------------
F = OUT.F; G = OUT.G; R = OUT.R; w = OUT.w; wn = OUT.wn; un = OUT.un; dn = OUT.dn;
X1 = OUT.X{1}; X2 = OUT.X{2}; X3 = OUT.X{3}; Q1 = OUT.Q{1}; Q2 = OUT.Q{2}; Q3 = OUT.Q{3};
O1 = [OUT.O{1, :}];                   % the word outcome the higher level inferred (from the lower level)
xn1 = OUT.xn{1}; s = OUT.s; o = OUT.o; u = OUT.u;
for t = 1:T
  L = OUT.mdp(t);
  lT(t) = L.T; lD{t} = L.D{1}; lF{t} = L.F; lG{t} = L.G; lR{t} = L.R; lw{t} = L.w; lwn{t} = L.wn;
  lX1{t} = L.X{1}; lX2{t} = L.X{2}; lQ1{t} = L.Q{1}; lo_all{t} = L.o; lxn1{t} = L.xn{1};
  lo_given{t} = M(t).o;               % the outcomes fixed for the whole lower trial (lo_all: those it used)
end
A = hi.A; B = hi.B; C = hi.C; D = hi.D; V = hi.V;
save('-v7', fullfile(here, 'spm_hierarchical.mat'), 'A', 'B', 'C', 'D', 'V', 'lA', 'lB', 'lV', 'F', 'G', 'R', ...
     'w', 'wn', 'un', 'dn', 'X1', 'X2', 'X3', 'Q1', 'Q2', 'Q3', 'O1', 'xn1', 's', 'o', 'u', 'lT', 'lD', 'lF', ...
     'lG', 'lR', 'lw', 'lwn', 'lX1', 'lX2', 'lQ1', 'lo_all', 'lo_given', 'lxn1');

% DEM_demo_MDP_reading's model
%==========================================================================
clear M lo hi
pictures = {{'bird','cat';'null','null'}, {'bird','seed';'null','null'}, {'bird','null';'null','seed'}};
sights = {'null','bird','seed','cat'};
a1 = zeros(4, 3, 4, 2, 2); a2 = zeros(4, 3, 4, 2, 2);
for w = 1:3, for l = 1:4, for ud = 1:2, for lr = 1:2
  g = pictures{w}; if ud == 2, g = flipud(g); end; if lr == 2, g = fliplr(g); end
  a1(find(strcmp(sights, g{l})), w, l, ud, lr) = 1; a2(l, w, l, ud, lr) = 1;   % g{l}: quadrant l, column-major
end, end, end, end
saccade = zeros(4, 4, 4); for k = 1:4, saccade(k, :, k) = 1; end
lo.T = 3; lo.A = {a1, a2}; lo.B = {eye(3), saccade, eye(2), eye(2)};
lo.D = {[1 1 1]', [1 0 0 0]', [1 1]', [8 1]'}; lo.chi = 1/64; lo.tau = 2;
lo = spm_MDP_check(lo);              % moving policies: the four saccades
tales = [1 3 2 3; 3 3 3 2; 3 1 3 2; 1 3 2 1; 3 3 3 1; 3 1 3 1];    % flee 1, feed 2, wait 3; stories 1-3 happy
h1 = zeros(3, 6, 4, 3); h2 = zeros(4, 6, 4, 3); h3 = zeros(3, 6, 4, 3);
for s = 1:6, for p = 1:4, for r = 1:3
  h1(tales(s, p), s, p, r) = 1; h2(p, s, p, r) = 1;
  if r == 1, h3(1, s, p, r) = 1; elseif (r == 2) == (s <= 3), h3(2, s, p, r) = 1; else, h3(3, s, p, r) = 1; end
end, end, end
turn = cat(3, eye(4), diag(ones(3, 1), -1)); turn(4, 4, 2) = 1;   % stay, next page
report = zeros(3, 3, 3); for k = 1:3, report(k, :, k) = 1; end
U = zeros(1, 3, 3); U(1, 1, :) = [1 2 1]; U(1, 2, :) = [1 1 2]; U(1, 3, :) = [1 1 3];  % next page, happy, sad
hi.T = 5; hi.U = U; hi.A = {h1, h2, h3}; hi.B = {eye(6), turn, report};
hi.C = {zeros(3, 1), zeros(4, 1), [0 0 -4]'}; hi.D = {ones(6, 1), [1 0 0 0]', [1 0 0]'};
hi.link = sparse(1, 1, 1, 4, 3);
T = 5; story = 1;
hi.s = [story * ones(1, T); 1 2 3 4 4; 1 1 1 1 2];
hi.u = [1 1 1 1; 2 2 2 1; 1 1 1 2];
hi.o = zeros(3, T);
for t = 1:T
  hi.o(:, t) = [tales(story, hi.s(2, t)); hi.s(2, t); find(h3(:, story, hi.s(2, t), hi.s(3, t)))];
end
look = [2 3; 3 4; 4 2; 2 4; 3 2];    % the two saccades of each lower trial; no flips
for t = 1:T
  m = lo; w = hi.o(1, t);
  m.s = [w w w; 1 look(t, :); 1 1 1; 1 1 1]; m.u = [1 1; look(t, :); 1 1; 1 1]; m.o = zeros(2, 3);
  for k = 1:3, m.o(:, k) = [find(a1(:, w, m.s(2, k), 1, 1)); m.s(2, k)]; end
  M(t) = m;
end
hi.MDP = M;
OUT = spm_MDP_VB_X(spm_MDP_check(hi));
rF = OUT.F; rG = OUT.G; rR = OUT.R; rX1 = OUT.X{1}; rO1 = [OUT.O{1, :}]; ro = OUT.o; ru = OUT.u;
clear rlT rlD rlF rlG rlR rlX1 rlo_given rlu_given
for t = 1:T
  L = OUT.mdp(t);
  rlT(t) = L.T; rlD{t} = L.D{1}; rlF{t} = L.F; rlG{t} = L.G; rlR{t} = L.R; rlX1{t} = L.X{1};
  rlo_given{t} = M(t).o; rlu_given{t} = M(t).u;
end
rA = hi.A; rB = hi.B; rC = hi.C; rD = hi.D; rlA = lo.A; rlB = lo.B; rlD0 = lo.D;
save('-v7', '-append', fullfile(here, 'spm_hierarchical.mat'), 'rF', 'rG', 'rR', 'rX1', 'rO1', 'ro', 'ru', 'rlT', ...
     'rlD', 'rlF', 'rlG', 'rlR', 'rlX1', 'rlo_given', 'rlu_given', 'rA', 'rB', 'rC', 'rD', 'rlA', 'rlB', 'rlD0');
