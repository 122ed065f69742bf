# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test` (the test suite).
# Both create .venv on first use. torch is pinned to the CPU build 2.13.0 and installed in the same
# pip command as the project, so pip never pulls a multi-GB CUDA build; torchvision must not be
# installed beside it (it breaks transformers' image processors; see README, Quick start).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

EXAMPLES := examples/adamllm-example-domain examples/adamllm-example-backbone

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml setup.py $(wildcard examples/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 -e '.[test]' $(addprefix -e ,$(EXAMPLES))
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit('torchvision is installed: pip uninstall torchvision' if u.find_spec('torchvision') else 0)"
	touch $@

install: $(VENV)/.installed

# The main job: the whole method offline on the toy domain (adamllm demo; docs/shapes.md).
demo: install
	$(BIN)/adamllm demo --out runs/demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/trainer_throughput.py
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) build dist *.egg-info
