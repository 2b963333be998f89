"""README.md as a user meets it: every Python snippet runs as written, in order, and prints what the README says
it prints; every ``aif`` command it shows runs; the install notes hold.

A ```python block is executed in one namespace shared with the blocks before it (the README is read top to
bottom); a ```text block right after it is the output it must print. ``aif`` commands are taken from ```bash
blocks and from inline code, and run with ``aif.cli.main`` in a temporary folder; a long demo gets small
settings appended (argparse keeps the last value), so the README's line itself is what runs.
"""

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from aif.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = [(m.group(1), m.group(2), README.count("\n", 0, m.start()) + 1)
          for m in re.finditer(r"^```(\w*)\n(.*?)^```$", README, flags=re.M | re.S)]
SMALL = {("demo", "tmaze"): ["--trials", "2"]}  # the demo's 100 trials take seconds; 2 show the same output


def test_python_snippets_run_as_written_and_print_what_the_readme_shows():
    pytest.importorskip("torch")
    namespace: dict = {}
    ran = 0
    for i, (lang, code, line) in enumerate(BLOCKS):
        if lang != "python":
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)
        ran += 1
        if i + 1 < len(BLOCKS) and BLOCKS[i + 1][0] == "text":
            assert printed.getvalue() == BLOCKS[i + 1][1], f"README.md line {line}: printed output differs"
    assert ran >= 4


def cli_examples():
    """``aif ...`` command lines shown in the README: in bash blocks (after ``&&``) and in inline code."""
    found = [part.strip() for lang, code, _ in BLOCKS if lang == "bash" for ln in code.splitlines()
             for part in ln.split("#")[0].split("&&") if part.strip().startswith("aif ")]
    prose = re.sub(r"^```.*?^```$", "", README, flags=re.M | re.S)
    found += re.findall(r"`(aif (?:--|demo)[^`]*)`", prose)
    return list(dict.fromkeys(found))


def test_the_readme_shows_the_commands_it_should():
    examples = cli_examples()
    assert "aif demo tmaze --out out/" in examples and "aif --version" in examples
    assert re.search(r"^bash \.ci/run$", README, flags=re.M)  # the test command is CI's script


@pytest.mark.parametrize("command", cli_examples())
def test_cli_example_runs(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative --out folders land here
    argv = shlex.split(command)[1:]
    argv += SMALL.get(tuple(argv[:2]), [])
    try:
        code = main(argv)
    except SystemExit as e:  # --help and --version exit through argparse
        code = e.code
    assert code == 0, f"{command!r} exited with {code}: {capsys.readouterr().err}"
    assert capsys.readouterr().out
    if "--out" in argv:
        out = tmp_path / argv[argv.index("--out") + 1]
        assert sorted(p.suffix for p in out.iterdir()) == [".png"] * 4


def test_ci_script_installs_the_torch_build_the_readme_names():
    script = (ROOT / ".ci" / "run").read_text()
    pins = set(re.findall(r"torch==[\d.]+", script))
    assert pins and all(f"`{pin}`" in README for pin in pins)
    assert "download.pytorch.org/whl/cpu" in README  # how to get the CPU build elsewhere


def test_importing_aif_deep_without_torch_says_how_to_install_it():
    # A None entry in sys.modules makes `import torch` fail as it does where torch is not installed.
    code = "import sys; sys.modules['torch'] = None\ntry:\n import aif_deep\nexcept ImportError as e:\n print(e)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert 'pip install "aif[deep]"' in done.stdout and "download.pytorch.org/whl/cpu" in done.stdout


def test_license_and_versions():
    import aif

    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the aif developers")
    assert "license = MIT" in (ROOT / "setup.cfg").read_text()
    aif_deep = pytest.importorskip("aif_deep")
    assert aif_deep.__version__ == aif.__version__
