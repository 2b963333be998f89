"""The documentation site builds with warnings as errors, every internal link of it resolves, and a real headless
browser renders it.

``mkdocs build --strict`` fails on a broken link or cross-reference between pages, a docstring griffe cannot
parse, a missing benchmark table or notebook. The built HTML is then parsed: every ``href`` and ``src`` inside the
site must name a file that exists, and every ``#fragment`` an ``id`` (or ``name``) in that file. Chromium
(Debian's ``chromium``) takes a screenshot of the home page and of one API page into ``docs_screenshots/``
(untracked) for a person to look at; without it that part is skipped, naming what to install.
"""

import ast
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
    pytest.importorskip(module, reason='the docs extra: pip install -e ".[docs]"')

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs_screenshots"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SHOTS = {"home.png": "index.html", "api_aif_agent.png": "api/aif/agent.html"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # In a virtual environment that sees the system's packages (.ci/run's), nbconvert may be installed outside it,
    # with its templates under the base prefix, where Jupyter does not look from inside a venv.
    paths = [os.environ.get("JUPYTER_PATH", ""), os.path.join(sys.base_prefix, "share", "jupyter")]
    env = {**os.environ, "JUPYTER_PATH": os.pathsep.join(p for p in paths if p), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    warnings = "\n".join(line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{warnings or done.stderr[-4000:]}"
    return out


class _Links(HTMLParser):
    """The ``href``/``src`` values and the ``id``/``name`` anchors of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is None:
                continue
            if key in ("href", "src"):
                self.links.append(value)
            elif key == "id" or (key == "name" and tag == "a"):
                self.anchors.add(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _exporting_modules(package: str) -> list[str]:
    """The modules ``package/__init__.py`` imports from (``from .x import ...``, ``from . import x``)."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found += [node.module] if node.module else [alias.name for alias in node.names]
    return sorted(set(found))


@pytest.mark.parametrize("package", ["aif", "aif_deep"])
def test_every_exporting_module_has_an_api_page(package: str) -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    modules = _exporting_modules(package)
    assert len(modules) > 15
    for module in modules:
        page = ROOT / "docs" / "api" / package / f"{module}.md"
        assert page.is_file() and page.read_text().strip() == f"::: {package}.{module}", f"no API page {page}"
        assert f"- {package}.{module}: api/{package}/{module}.md" in nav, f"{package}.{module} is not in the nav"


def test_the_site_has_each_part(site: Path) -> None:
    for page in ("index.html", "getting-started.html", "concepts/cycle.html", "concepts/conventions.html",
                 "concepts/strategies.html", "concepts/file-format.html", "benchmarks/bench_loop.html"):
        assert (site / page).is_file(), f"{page} was not built"
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks and all((site / "notebooks" / f"{n}.html").is_file() for n in notebooks)
    # The notebooks are rendered with their committed outputs (figures as inline PNG), not executed.
    assert "data:image/png;base64," in (site / "notebooks" / f"{notebooks[0]}.html").read_text(encoding="utf-8")
    # The API reference is generated from the docstrings: the Agent's own docstring appears on its page.
    import aif

    first_line = (aif.Agent.__doc__ or "").strip().splitlines()[0]
    assert first_line.split("``")[0][:40] in (site / "api/aif/agent.html").read_text(encoding="utf-8")
    # The benchmark tables are included from benchmarks/results, not copied: a row of the file is on the page.
    row = next(line for line in (ROOT / "benchmarks/results/bench_loop.md").read_text().splitlines()
               if line.startswith("| T-maze"))
    assert row.split("|")[1].strip() in (site / "benchmarks/bench_loop.html").read_text(encoding="utf-8")


def test_every_internal_link_resolves(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    parsed = {page: _parse(page) for page in pages}
    broken = []
    for page, links in parsed.items():
        for link in links.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not the site's to resolve
            path = unquote(parts.path)
            # An absolute path is from the site's root (404.html's links, where the server serves any folder).
            target = ((site if path.startswith("/") else page.parent) / path.lstrip("/")).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{page.relative_to(site)}: {link} (no file {target})")
                continue
            if parts.fragment and target.suffix == ".html":
                anchors = parsed[target].anchors if target in parsed else _parse(target).anchors
                if unquote(parts.fragment) not in anchors:
                    broken.append(f"{page.relative_to(site)}: {link} (no id {parts.fragment!r})")
    assert len(pages) > 60, f"only {len(pages)} pages built"
    assert not broken, f"{len(broken)} internal links do not resolve:\n" + "\n".join(broken[:40])


def test_a_headless_browser_renders_the_home_page_and_an_api_page(site: Path) -> None:
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install -y chromium); .ci/run installs it")
    SCREENSHOTS.mkdir(exist_ok=True)
    for name, page in SHOTS.items():
        shot = SCREENSHOTS / name
        shot.unlink(missing_ok=True)
        done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--window-size=1280,900", f"--screenshot={shot}", (site / page).as_uri()],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and shot.is_file(), f"{browser} made no screenshot of {page}: {done.stderr}"
        from matplotlib.image import imread

        pixels = imread(shot)
        assert pixels.shape[:2] == (900, 1280), pixels.shape
        # A rendered page, not a blank one: many distinct colours (text, the header bar, code).
        colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 50, f"{name}: {len(colours)} colours; the page looks blank"
