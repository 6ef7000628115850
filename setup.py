"""Package discovery for the remapped layout; all metadata is in pyproject.toml.

The design card asks for top-level folders stream/, state/, models/, config/ installed as
sub-packages of one import package (streamrec.stream, ...) so nothing generic lands in
site-packages. pyproject's `[tool.setuptools.packages.find]` cannot remap folders, and a hand
list of packages silently left `streamrec.models.memory` out of every wheel, so the packages
are discovered here: every folder with an __init__.py under each mapped root.
tests/packaging/test_wheel.py builds the wheel and imports every module from a fresh virtualenv.
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "streamrec": "streamrec",
    "streamrec.stream": "stream",
    "streamrec.state": "state",
    "streamrec.models": "models",
    "streamrec.config": "config",
}
"""Import package -> folder; a sub-package's folder follows from its parent's (setuptools walks up the name)."""


def discover() -> list[str]:
    packages = []
    for package, folder in PACKAGE_DIRS.items():
        packages += [package] + [f"{package}.{sub}" for sub in find_packages(folder)]
    return sorted(packages)


setup(package_dir=PACKAGE_DIRS, packages=discover())
