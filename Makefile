# kipctl — set-up, tests and paper reproduction targets.
VENV ?= .venv
PY := $(VENV)/bin/python
KIP_DATA_DIR ?= $(abspath ../shared/data)
export KIP_DATA_DIR
# A second venv on Python 3.12, which gets the newest jax (Python 3.11 stops at jax 0.10.2).
VENV312 ?= .venv312
# python3.12 from PATH, else the newest pyenv-installed 3.12 (a pyenv shim on PATH may not run).
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -1); do $$p -c 'import sys; print(sys.executable)' 2>/dev/null && break; done)

.PHONY: install test test-fast test-py312 demo bench clean-outputs gpu-check gpu-check-prepare

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV) || (rm -rf $(VENV) && python3 -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# pytest-xdist workers for the test targets (PYTEST_WORKERS=0: one process, no xdist). Two on
# this 2-core machine: much of a test is compiling and Python, one core each.
PYTEST_WORKERS ?= 2

## make test: every test tier (unit, config, integration, slow real-data tests)
test: install
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

## make test-fast: skip the slow real-data tier
test-fast: install
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not slow"

$(VENV312)/.installed: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "no python3.12 found: set PYTHON312=/path/to/python3.12" >&2; exit 1; }
	test -x $(VENV312)/bin/python || $(PYTHON312) -m venv $(VENV312) || (rm -rf $(VENV312) && $(PYTHON312) -m venv $(VENV312))
	$(VENV312)/bin/python -m pip install -q --upgrade pip
	$(VENV312)/bin/python -m pip install -q -e '.[dev]'
	touch $@

## make test-py312: the fast tier (not slow) on Python 3.12 with the newest jax, in $(VENV312)
test-py312: $(VENV312)/.installed
	$(VENV312)/bin/python -m pytest -q -n $(PYTEST_WORKERS) -m "not slow" -x

## make demo: a real KRR evaluation on MNIST (RBF kernel, 100 natural images, 5 resamplings)
demo: install
	./kipctl eval-krr dataset=mnist kernel=rbf support=100 seeds=5

## make gpu-check-prepare: what a lent GPU needs beside the working tree (the device tool's
## carry): MNIST and ../shared/bench's scripts in .gpu/, hydra/omegaconf wheels in .whl/
gpu-check-prepare:
	mkdir -p .gpu/data .gpu/bench .whl
	cp -r $(KIP_DATA_DIR)/mnist .gpu/data/
	cp ../shared/bench/kip_probe.py ../shared/bench/matmul_floor.py .gpu/bench/
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	    --implementation cp --platform manylinux_2_28_x86_64 -d .whl hydra-core==1.3.8 \
	    omegaconf==2.3.1
	python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
	du -sh .gpu .whl

## make gpu-check: tools/gpu_check.sh (on a lent GPU: the device tool runs it with carry
## [".gpu", ".whl"]; GPU_CHECK_SCALE=smoke runs a one-minute version on the CPU)
gpu-check:
	bash tools/gpu_check.sh

clean-outputs:
	rm -rf outputs

# Paper reproduction targets (make table-1 SCALE=cpu, make tables, make figures, ...): repro.mk
include repro.mk
