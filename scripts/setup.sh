#!/usr/bin/env bash
# Creates .venv, installs the pinned runtime and test packages (requirements-dev.txt, which includes
# requirements.txt: the torch pair and everything the project imports), Detectron2 and the project (editable).
# Detectron2: the official git route first; where github is unreachable, the sal-detectron2==0.7.2 wheel
# (upstream Detectron2 Python sources, see ../shared/DESIGN.md "Stack"). Prints which route it used.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q -r requirements-dev.txt

if python -c "import detectron2" 2>/dev/null; then
  echo "[setup] detectron2 already installed: $(python -c 'import detectron2,os;print(os.path.dirname(detectron2.__file__))')"
elif timeout 60 git ls-remote https://github.com/facebookresearch/detectron2 HEAD >/dev/null 2>&1 \
     && pip install -q --no-build-isolation "git+https://github.com/facebookresearch/detectron2.git"; then
  echo "[setup] detectron2 installed from the official git repository"
else
  # The wheel goes in --no-deps (its metadata asks for numpy<2): first its own requirements, unpinned (the
  # project does not import them; the git route above lets pip resolve the same list).
  pip install -q fvcore iopath pycocotools "omegaconf>=2.1,<2.4" hydra-core termcolor yacs tabulate cloudpickle \
    tqdm tensorboard matplotlib Pillow packaging
  tmp=$(mktemp -d)
  pip download -q --no-deps --only-binary=:all: --python-version 3.10 -d "$tmp" sal-detectron2==0.7.2
  whl=$(ls "$tmp"/sal_detectron2-0.7.2-*.whl)
  # The wheel is tagged cp310 but holds pure Python sources (its _C is never loaded on 3.11).
  cp "$whl" "$tmp/sal_detectron2-0.7.2-py3-none-any.whl"
  pip install -q --no-deps "$tmp/sal_detectron2-0.7.2-py3-none-any.whl"
  rm -rf "$tmp"
  echo "[setup] github unreachable: detectron2 installed from the PyPI fallback sal-detectron2==0.7.2"
fi
pip install -q --no-deps -e .
python -c "import dld, detectron2, torch; print('[setup] ok: torch', torch.__version__, 'detectron2', detectron2.__version__)"
