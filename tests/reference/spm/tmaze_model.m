function [mdp, T] = tmaze_model()
% The T-maze of SPM's DEM_demo_MDP_X (A, B, C and the ten policies V, here with rewards worth 3 nats), with
% Dirichlet counts a, b, d, e to learn, a Gamma prior on 1/precision (beta = 1), learning rate eta = 1/2 and
% Occam's window over policies opened wide (zeta = 1e8, so every policy stays in play). Shared by make_*.m.
p = .98; q = 1 - p;
A{1}(:,:,1) = [1 0 0 0; 0 1 0 0; 0 0 1 0; 0 0 0 1; 0 0 0 0];   % where am I; the cue (CS right)
A{1}(:,:,2) = [1 0 0 0; 0 1 0 0; 0 0 1 0; 0 0 0 0; 0 0 0 1];   % ... (CS left)
A{2}(:,:,1) = [1 0 0 1; 0 p q 0; 0 q p 0];                     % neutral, reward, loss
A{2}(:,:,2) = [1 0 0 1; 0 q p 0; 0 p q 0];
B{1}(:,:,1) = [1 0 0 1; 0 1 0 0; 0 0 1 0; 0 0 0 0];            % stay (the cue location returns to start)
B{1}(:,:,2) = [0 0 0 0; 1 1 0 1; 0 0 1 0; 0 0 0 0];            % go left
B{1}(:,:,3) = [0 0 0 0; 0 1 0 0; 1 0 1 1; 0 0 0 0];            % go right
B{1}(:,:,4) = [0 0 0 0; 0 1 0 0; 0 0 1 0; 1 0 0 1];            % go to the cue
B{2} = eye(2);
C{1} = zeros(5, 3); C{1}(1, :) = -1;
C{2} = [0 0 0; 3 3 3; -3 -3 -3];
V(:,:,1) = [1 1 1 1 2 3 4 4 4 4; 1 2 3 4 2 3 1 2 3 4];
V(:,:,2) = 1;
T = 3;

mdp.V = V; mdp.A = A; mdp.B = B; mdp.C = C;
mdp.a = {A{1} * 64 + (A{1} > 0) / 8, A{2} * 4 + (A{2} > 0) / 2};   % a weak likelihood for rewards
mdp.b = {B{1} * 8 + (B{1} > 0) / 4, B{2} * 8 + 1/4};
mdp.d = {[8 1 1 1]', [1 1]'};
mdp.e = ones(size(V, 2), 1);
mdp.beta = 1; mdp.eta = 0.5; mdp.zeta = 1e8; mdp.tau = 4;
mdp.s = []; mdp.o = []; mdp.u = [];   % fixed per trial by the caller

end
