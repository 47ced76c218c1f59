"""Installs the `dld` package (Dynamic Low-Resolution Distillation for Detectron2) from projects/DLD."""
from setuptools import find_packages, setup

setup(
    name="dld-detectron2",
    version="0.1.0",
    description="Dynamic Low-Resolution Distillation for end-to-end scene-text spotting, on Detectron2",
    package_dir={"": "projects/DLD"},
    packages=find_packages("projects/DLD"),
    python_requires=">=3.10",
    # Pinned versions live in requirements.txt; detectron2 is installed by scripts/setup.sh.
    install_requires=[],
)
