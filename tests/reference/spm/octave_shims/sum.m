function s = sum(x, varargin)
% Octave shim: MATLAB's sum(x, 'all') (Octave 7 lacks the 'all' option, which the current SPM's spm_KL_dir uses);
% every other call goes to the builtin.
if numel(varargin) >= 1 && ischar(varargin{1}) && strcmpi(varargin{1}, 'all')
  s = builtin('sum', x(:), varargin{2:end});
else
  s = builtin('sum', x, varargin{:});
end
end
