"""Installs the `dld` package (Dynamic Low-Resolution Distillation for Detectron2) from projects/DLD.

Runtime dependencies are requirements.txt, the test tools requirements-dev.txt (the extra "test"): every pin
lives in those two files. Detectron2 is not on PyPI and is not declared here: scripts/setup.sh installs it.
"""
import os
from typing import List

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def requirements(name: str) -> List[str]:
    """The requirement lines of a requirements file, without comments and `-r` includes."""
    with open(os.path.join(HERE, name)) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [line for line in lines if line and not line.startswith("-")]


setup(
    name="dld-detectron2",
    version="0.1.0",
    description="Dynamic Low-Resolution Distillation for end-to-end scene-text spotting, on Detectron2",
    package_dir={"": "projects/DLD"},
    packages=find_packages("projects/DLD"),
    python_requires=">=3.10",
    install_requires=requirements("requirements.txt"),
    extras_require={
        "test": requirements("requirements-dev.txt") + requirements("requirements-export.txt"),
        "export": requirements("requirements-export.txt"),
    },
)
