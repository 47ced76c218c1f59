# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first when it is missing.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/synth/text_spotter_R_18_FPN_synth.yaml
DEMO_OUTPUT ?= output/synth/text_spotter_R_18
export DETECTRON2_DATASETS ?= $(CURDIR)/datasets

.PHONY: setup test test-fast demo

$(VENV)/.installed: requirements.txt setup.py scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest tests -q

test-fast: setup
	$(PY) -m pytest tests -q -m "not slow"

# Generate the synthetic data, train the CPU-sized spotter (resuming from its last checkpoint if it was
# stopped; skipped once model_final.pth exists), evaluate it on synth_text_val and draw a few predictions.
demo: setup $(DEMO_OUTPUT)/model_final.pth
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) --eval-only \
		OUTPUT_DIR $(DEMO_OUTPUT) MODEL.WEIGHTS $(DEMO_OUTPUT)/model_final.pth
	$(PY) tools/demo.py --config-file $(DEMO_CONFIG) --input $(DETECTRON2_DATASETS)/synth_text/val/images \
		--output $(DEMO_OUTPUT)/demo --max-images 8 --opts MODEL.WEIGHTS $(DEMO_OUTPUT)/model_final.pth

$(DEMO_OUTPUT)/model_final.pth:
	$(PY) tools/generate_synthetic_data.py --config-file $(DEMO_CONFIG)
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG) --resume OUTPUT_DIR $(DEMO_OUTPUT)
