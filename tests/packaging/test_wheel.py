"""The built wheel (what `pip install .` and docker/Dockerfile install) holds every module and serves every preset.

The rest of the suite runs on the editable install, which maps whole folders and so can never
notice a package missing from the wheel (streamrec.models.memory was, with a hand-written list).
Here the sources the Dockerfile copies are copied to a temporary folder, built into a wheel
there, and the wheel installed into a fresh virtualenv that sees the test venv's dependencies
(torch, ...) through a plain path line in a .pth file: such a line does not run the test venv's
own .pth files, so streamrec's editable finder stays off and only the wheel can be imported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYOUT = {"streamrec": "streamrec", "stream": "streamrec/stream", "state": "streamrec/state",
          "models": "streamrec/models", "config": "streamrec/config"}
"""Source folder -> where its modules must land in the wheel (the design card's layout)."""


def dockerfile_sources() -> list[str]:
    """What docker/Dockerfile's build stage copies before it runs `pip install .`."""
    sources: list[str] = []
    for line in (REPO / "docker" / "Dockerfile").read_text().splitlines():
        if re.match(r"RUN pip install \.\s*$", line.strip()):
            return sources
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    raise AssertionError("docker/Dockerfile has no `RUN pip install .`")


def test_dockerignore_sends_what_the_dockerfile_copies() -> None:
    allowed = {line[1:].rstrip("/") for line in (REPO / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert sorted(set(dockerfile_sources()) - allowed) == []


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in dockerfile_sources():
        origin = REPO / name
        (shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__"))
         if origin.is_dir() else shutil.copy2(origin, src / name))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(dist), str(src)], cwd=dist)
    (built,) = dist.glob("streamrec-*.whl")
    return built


def test_wheel_holds_every_source_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{target}/{path.relative_to(REPO / folder).as_posix()}"
                for folder, target in LAYOUT.items() for path in (REPO / folder).rglob("*.py")
                if "__pycache__" not in path.parts}
    assert sorted(expected - names) == []


def test_wheel_holds_the_dashboard_and_docs_pages(wheel: Path) -> None:
    """The dashboard and /docs load nothing from the internet: every asset they use must ship in the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    static = REPO / "stream" / "api" / "static"
    expected = {f"streamrec/stream/api/static/{path.name}" for path in static.iterdir() if path.is_file()}
    assert {"dashboard.html", "charts.js", "docs.html", "docs.js"} <= {path.name for path in static.iterdir()}
    assert sorted(expected - names) == []


def test_wheel_imports_and_serves_every_preset_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=tmp_path)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=tmp_path).strip())
    (site / "test_venv_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    modules = sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("streamrec/") and name.endswith(".py") and not name.endswith("__main__.py")
    )
    listing = tmp_path / "modules.txt"
    listing.write_text("\n".join(modules))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    out = run([str(python), "-I", str(Path(__file__).with_name("wheel_check.py")), str(listing), str(site),
               str(tmp_path)], cwd=tmp_path, env=env)
    assert out.strip().endswith("ok"), out
