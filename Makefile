# Two entry points for people (`make demo`, `make test`); everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.zoo-installed
DEMO   ?= demo-run

.PHONY: setup test test-slow demo bench clean

setup: $(STAMP)

# Re-installs only when the declared or pinned dependencies change, so a second run takes seconds.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The suite people run: everything but the long end-to-end tests (a few minutes on 2 cores).
test: setup
	$(BIN)/python -m pytest -q -m "not slow"

# The long tests CI runs as well: SIGKILL at every save point, random kills, DDP failures.
test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# The main job: train and evaluate on the built-in synthetic dataset, then draw predictions.
demo: setup
	rm -rf $(DEMO)
	$(BIN)/zoo train unet --dataset synthetic --image-size 64 -o base_channels=16 -o count=768 \
		--epochs 12 --batch-size 16 --out $(DEMO)
	$(BIN)/zoo eval $(DEMO) --split test
	$(BIN)/python -m zoo.data.synthetic_png $(DEMO)/inputs
	$(BIN)/zoo predict $(DEMO) $(DEMO)/inputs --out $(DEMO)/predictions
	@echo "weights: $(DEMO)/model.safetensors  card: $(DEMO)/README.md  pictures: $(DEMO)/samples.png $(DEMO)/curves.png $(DEMO)/predictions/"

bench: setup
	$(BIN)/python -m benchmarks --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
