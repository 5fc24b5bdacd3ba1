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

# ---------------------------------------------------------------------------------------------
# Paper reproduction: make <target> SCALE=smoke|cpu|paper [LAUNCHER=joblib|submitit_slurm|ray]
# Every target is a resumable kipctl sweep into outputs/repro/<SCALE>/<target>/ (re-running
# recomputes nothing that is done) followed by `kipctl report`, which writes
# outputs/tables/<target>-<SCALE>.{csv,md,tex} or outputs/figures/<target>-<SCALE>.{png,pdf}.
# Implemented so far: table-a1, table-a7, figure-2 (see REPRODUCTION.md for what SCALE=cpu
# cuts). The other tables and figures of the paper are not wired up yet.
# ---------------------------------------------------------------------------------------------
SCALE ?= cpu
LAUNCHER ?=
REPRO := outputs/repro/$(SCALE)
LAUNCH := $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER),)
KIPCTL := ./kipctl
TODAY := $(shell date +%Y-%m-%d)
ifeq ($(filter $(SCALE),smoke cpu paper),)
$(error SCALE must be smoke, cpu or paper, got '$(SCALE)')
endif

# Table A1: KRR accuracy of class-balanced natural MNIST subsets, Linear / RBF / FC1 kernels.
A1_SUPPORT_smoke := 10,20
A1_SUPPORT_cpu := 10,20,40,80,160,320,640,1280,2560,5000
A1_SUPPORT_paper := 10,20,40,80,160,320,640,1280,2560,5000,10000
A1_SEEDS_smoke := 2
A1_SEEDS_cpu := 5
A1_SEEDS_paper := 20
A1_EXTRA_smoke := dataset.n_test=1000
A1_NOTE_smoke := first 1000 test images; 2 resamplings
A1_NOTE_cpu := full test set; 5 resamplings (paper: 20); sizes up to 5000 (paper: 10000)
A1_NOTE_paper := full test set; 20 resamplings

table-a1: install
	$(KIPCTL) eval-krr -m dataset=mnist kernel=linear,rbf,fc1 support=$(A1_SUPPORT_$(SCALE)) \
	    seeds=$(A1_SEEDS_$(SCALE)) $(A1_EXTRA_$(SCALE)) hydra.sweep.dir=$(REPRO)/table-a1 $(LAUNCH)
	$(KIPCTL) report $(REPRO)/table-a1 by=kernel,support values=accuracy_mean,accuracy_std \
	    out=outputs/tables name=table-a1-$(SCALE) \
	    caption="Table A1 (MNIST, KRR on natural class-balanced subsets, accuracy as fractions; SCALE=$(SCALE): $(A1_NOTE_$(SCALE)); $(TODAY))"

# Tables A7: FC1 network trained (MSE) on natural vs KIP_rho images at rho 0/0.5/0.75/0.9.
A7_GRID_smoke := supports=[20] rhos=[0,0.9] distill.steps=5 distill.target_batch=200 nn.steps=20 nn.seeds=2 net.width=256 dataset.n_test=1000
A7_GRID_cpu := supports=[1000] rhos=[0,0.5,0.75,0.9] distill.steps=200 distill.target_batch=2000 nn.steps=500 nn.seeds=2 net.width=1024
A7_GRID_paper := supports=[1000] rhos=[0,0.5,0.75,0.9] distill.steps=10000 distill.target_batch=30000 nn.steps=5000 nn.seeds=5 net.width=4096
A7_NOTE_smoke := 20 images, 5 KIP steps, 20 NN steps, width 256, first 1000 test images
A7_NOTE_cpu := 1000 images; KIP 200 steps with 2000 targets (paper: 10k steps, 30k targets); FC1 width 1024 (paper: 4096), 500 steps, 2 seeds (paper: 5)
A7_NOTE_paper := paper protocol

table-a7: install
	$(KIPCTL) corrupt-sweep dataset=mnist kernel=fc1 data_types=[natural,kip] evaluators=[nn] \
	    nn.loss=mse nn.lr=4e-4 nn.center=true $(A7_GRID_$(SCALE)) hydra.run.dir=$(REPRO)/table-a7
	$(KIPCTL) report $(REPRO)/table-a7 paper=table-a7 out=outputs/tables name=table-a7-$(SCALE) \
	    caption="Table A7 (MNIST, FC1 network, MSE, centred f - f0; SCALE=$(SCALE): $(A7_NOTE_$(SCALE)); $(TODAY))"

# Figure 2: Label Solve accuracy vs support size and number of targets (FC1, MNIST).
F2_SUPPORT_smoke := 10,20
F2_SUPPORT_cpu := 10,20,40,80,160,320,640,1280
F2_SUPPORT_paper := 10,20,40,80,160,320,640,1280,2560,5120,10000
F2_TARGETS_smoke := 500,1000
F2_TARGETS_cpu := 1000,10000,null
F2_TARGETS_paper := 1000,10000,null
F2_EXTRA_smoke := dataset.n_test=1000
F2_NOTE_smoke := first 1000 test images; one support draw per cell
F2_NOTE_cpu := full test set; one support draw per cell; sizes up to 1280 (paper: 10000)
F2_NOTE_paper := full test set

figure-2: install
	$(KIPCTL) label-solve -m dataset=mnist kernel=fc1 support=$(F2_SUPPORT_$(SCALE)) \
	    n_targets=$(F2_TARGETS_$(SCALE)) $(F2_EXTRA_$(SCALE)) hydra.sweep.dir=$(REPRO)/figure-2 $(LAUNCH)
	$(KIPCTL) report $(REPRO)/figure-2 by=support,n_targets values=test_accuracy figure=figure-2 \
	    out=outputs/figures name=figure-2-$(SCALE) \
	    caption="Figure 2 (MNIST, FC1 NTK Label Solve; SCALE=$(SCALE): $(F2_NOTE_$(SCALE)); $(TODAY))"

.PHONY: table-a1 table-a7 figure-2
