# For a newcomer: `make setup` (.venv with the pinned packages, Detectron2 and the project), then `make test`
# and `make demo`; both run `make setup` first when .venv is missing. `make spotter` trains the CPU spotter alone.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/synth/text_spotter_R_18_FPN_synth.yaml
DEMO_OUTPUT ?= output/synth/text_spotter_R_18
export DETECTRON2_DATASETS ?= $(CURDIR)/datasets

.PHONY: setup test test-fast demo spotter data

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest tests -q

test-fast: setup
	$(PY) -m pytest tests -q -m "not slow"

# The whole DLD story on the synthetic data, resumable stage by stage (tools/run_dld_demo.py):
# data, recognition warm-up, teacher, DLD with gamma 0.1 and 0.3, the comparison table, output/dld_report/.
# PRESET=quick (the default) shows the pipeline in about 20 minutes on 2 CPU cores; PRESET=full runs the configs as they are.
PRESET ?= quick
demo: setup
	$(PY) tools/run_dld_demo.py --preset $(PRESET)

# The CPU-sized spotter alone: generate the data, the recognition warm-up on word crops, the joint training
# (each resumes from its last checkpoint if stopped, and is skipped once model_final.pth exists), then evaluate
# it on all of synth_text_val (detection and end-to-end H-mean), print its learning curve (table and PNG,
# tools/learning_curve.py) and draw a few predictions.
WARMUP_CONFIG ?= configs/synth/recognition_warmup_R_18_FPN_synth.yaml
WARMUP_OUTPUT ?= output/synth/recognition_warmup_R_18
spotter: setup $(DEMO_OUTPUT)/model_final.pth
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) --eval-only \
		OUTPUT_DIR $(DEMO_OUTPUT) MODEL.WEIGHTS $(DEMO_OUTPUT)/model_final.pth
	$(PY) tools/learning_curve.py $(WARMUP_OUTPUT) $(DEMO_OUTPUT)
	$(PY) tools/demo.py --config-file $(DEMO_CONFIG) --input $(DETECTRON2_DATASETS)/synth_text/val/images \
		--output $(DEMO_OUTPUT)/demo --max-images 8 --opts MODEL.WEIGHTS $(DEMO_OUTPUT)/model_final.pth

# Generates the synthetic splits of DEMO_CONFIG, or says they are up to date (seconds).
data: setup
	$(PY) tools/generate_synthetic_data.py --config-file $(DEMO_CONFIG)

$(WARMUP_OUTPUT)/model_final.pth: | data
	$(PY) tools/train_net.py --config-file $(WARMUP_CONFIG) --resume OUTPUT_DIR $(WARMUP_OUTPUT)

$(DEMO_OUTPUT)/model_final.pth: $(WARMUP_OUTPUT)/model_final.pth
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) --resume OUTPUT_DIR $(DEMO_OUTPUT) \
		MODEL.WEIGHTS $(WARMUP_OUTPUT)/model_final.pth
