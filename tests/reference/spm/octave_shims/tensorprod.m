function C = tensorprod(A, b, dimA, dimB)
% Octave shim for MATLAB's tensorprod (R2022a) as the current SPM's spm_dot calls it: A contracted over its
% axis dimA with the vector b (dimB = 1); the result keeps A's other axes in order.
if dimB ~= 1 || ~isvector(b), error('tensorprod shim: only a vector along its first axis is supported'); end
s = size(A);
if dimA > numel(s), s(end + 1:dimA) = 1; end
others = [1:dimA - 1, dimA + 1:numel(s)];
C = reshape(permute(A, [others, dimA]), [], s(dimA)) * b(:);
rest = s(others);
if numel(rest) < 2, rest(end + 1:2) = 1; end
C = reshape(C, rest);
end
