# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test` (the test suite).
# Both create .venv on first use. torch is pinned to the CPU build 2.13.0 and installed in the same
# pip command as the project, so pip never pulls a multi-GB CUDA build; torchvision must not be
# installed beside it (it breaks transformers' image processors; see README, Quick start).
# Every other package is held at the version in constraints.txt (the set the README's numbers were
# measured with; pyproject.toml keeps loose ranges for library users). `make lock` refreshes it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

EXAMPLES := examples/adamllm-example-domain examples/adamllm-example-backbone
CONSTRAINTS := constraints.txt
LOCK_VENV := .venv-lock

.PHONY: install demo test test-vllm test-ray bench clean lock

$(VENV)/.installed: pyproject.toml setup.py $(CONSTRAINTS) $(wildcard examples/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch==2.13.0 -e '.[test]' $(addprefix -e ,$(EXAMPLES))
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit('torchvision is installed: pip uninstall torchvision' if u.find_spec('torchvision') else 0)"
	touch $@

install: $(VENV)/.installed

# The main job: the whole method offline on the toy domain (adamllm demo; docs/shapes.md).
demo: install
	$(BIN)/adamllm demo --out runs/demo

test: install
	$(BIN)/python -m pytest -q

# The vLLM lane: tests marked `vllm` (engine: vllm against the transformers engine) in an environment
# of their own (tests/vllm_lane/requirements.txt), kept outside the clone and rebuilt only when that file
# changes; the main environment stays as it is. The project is installed into it from this tree.
VLLM_PINS := tests/vllm_lane/requirements.txt
VLLM_ENV ?= $(HOME)/.cache/adamllm/vllm-env-$(shell sha256sum $(VLLM_PINS) | cut -c1-12)

$(VLLM_ENV)/.built:  # no prerequisite: the folder name holds the hash of $(VLLM_PINS) (a fresh clone is newer than the cache)
	rm -rf $(VLLM_ENV)
	$(PYTHON) -m venv $(VLLM_ENV)
	$(VLLM_ENV)/bin/pip install -q --upgrade pip
	$(VLLM_ENV)/bin/pip install -q -r $(VLLM_PINS)
	$(VLLM_ENV)/bin/pip install -q --force-reinstall 'torch===2.13.0' 'torchvision===0.28.0' 'numpy<2.4'
	touch $@

test-vllm: $(VLLM_ENV)/.built
	$(VLLM_ENV)/bin/pip install -q --no-deps --force-reinstall --no-build-isolation .
	rm -rf build
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_LOGGING_LEVEL=WARNING $(VLLM_ENV)/bin/python -m pytest -q -s -p no:cacheprovider -m vllm tests/vllm_lane

# The Ray lane: tests marked `ray` (adamllm run --executor ray against one process) in an environment
# of their own: the main environment's pins plus Ray (tests/ray_lane/requirements.txt), kept outside the
# clone under a name that hashes both files. The project is installed into it from this tree.
RAY_PINS := tests/ray_lane/requirements.txt
RAY_ENV ?= $(HOME)/.cache/adamllm/ray-env-$(shell cat $(RAY_PINS) $(CONSTRAINTS) | sha256sum | cut -c1-12)

$(RAY_ENV)/.built:  # no prerequisite: the folder name holds the hash of $(RAY_PINS) and $(CONSTRAINTS)
	rm -rf $(RAY_ENV)
	$(PYTHON) -m venv $(RAY_ENV)
	$(RAY_ENV)/bin/pip install -q --upgrade pip
	$(RAY_ENV)/bin/pip install -q -c $(CONSTRAINTS) torch==2.13.0 -r $(RAY_PINS) '.[test]'
	touch $@

test-ray: $(RAY_ENV)/.built
	$(RAY_ENV)/bin/pip install -q --no-deps --force-reinstall --no-build-isolation .
	rm -rf build
	$(RAY_ENV)/bin/python -m pytest -q -p no:cacheprovider -m ray tests/ray_lane

bench: install
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/trainer_throughput.py
	$(BIN)/python bench/generation.py

# Refresh constraints.txt: resolve the newest releases that pyproject.toml allows in a scratch venv
# (no constraints), write what was installed (editable project packages left out, torch's local
# "+cpu" label dropped), and remove the scratch venv. Then `make clean install`, rerun `make demo`
# and `make test`, and update the README's numbers before committing the new file.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q torch==2.13.0 -e '.[test,ray]' $(addprefix -e ,$(EXAMPLES))
	{ echo "# The versions the README's and docs/shapes.md's numbers are measured with: make installs with"; \
	  echo "# pip install -c constraints.txt. Written by 'make lock' (Python $$($(LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())'),"; \
	  echo "# $$(date -u +%Y-%m-%d)); the ranges for library users are in pyproject.toml."; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v -e '^#' -e '^-e ' | sed -E 's/\+[A-Za-z0-9.]+$$//'; \
	} > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)
	@echo "wrote $(CONSTRAINTS); now: make clean install, make demo, make test"

clean:
	rm -rf $(VENV) $(LOCK_VENV) build dist *.egg-info
