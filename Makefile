# kipctl — set-up, tests and paper reproduction targets.
VENV ?= .venv
PY := $(VENV)/bin/python
KIP_DATA_DIR ?= $(abspath ../shared/data)
export KIP_DATA_DIR

.PHONY: install test test-fast demo bench clean-outputs

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV) || (rm -rf $(VENV) && python3 -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## make test: every test tier (unit, config, integration, slow real-data tests)
test: install
	$(PY) -m pytest -q

## make test-fast: skip the slow real-data tier
test-fast: install
	$(PY) -m pytest -q -m "not slow"

## make demo: a real KRR evaluation on MNIST (RBF kernel, 100 natural images, 5 resamplings)
demo: install
	./kipctl eval-krr dataset=mnist kernel=rbf support=100 seeds=5

clean-outputs:
	rm -rf outputs

# Paper reproduction targets (make table-1 SCALE=cpu, make tables, make figures, ...): repro.mk
include repro.mk
