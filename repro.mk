# Paper reproduction: make <target> SCALE=smoke|cpu|paper [LAUNCHER=joblib|submitit_slurm|ray]
#
#   tables:  table-1 table-2 table-a1 ... table-a10        (make tables: all of them)
#   figures: figure-2 figure-a1 figure-a3 figure-a4 figure-a5  (make figures: all of them)
#
# Every target is a chain of kipctl commands writing run directories under
# $(OUT)/repro/<SCALE>/<target>/ (OUT=outputs by default) with fixed names, so re-running a target recomputes nothing
# that is done (each run says "nothing to recompute") and an interrupted distill resumes from
# its checkpoint. The last step is `kipctl report`, which writes
# outputs/tables/<target>-<SCALE>.{csv,md,tex} or outputs/figures/<target>-<SCALE>.{png,pdf}
# with a caption giving dataset, scale, seeds, test-set size and date. tools/timed records the
# target's wall time in outputs/tables/<target>-<SCALE>.wall.json (REPRODUCTION.md quotes it).
#
#   paper: the paper's grid (support sizes, steps, target batches, seeds) as far as PAPER.md
#          gives it, with what still differs in each *_NOTE_paper: a GPU node or a cluster
#          (LAUNCHER=submitit_slurm); Myrtle label-solve rows exist only at this scale.
#   cpu:   the same grid cut down to finish on a 2-core CPU in at most a few hours; the cuts
#          are in each output's caption (and in REPRODUCTION.md).
#   smoke: minutes; tiny grids that exercise every step (table-a1, table-a7 and figure-2 run
#          in the test suite).
# ---------------------------------------------------------------------------------------------
SCALE ?= cpu
LAUNCHER ?=
ifeq ($(filter $(SCALE),smoke cpu paper),)
$(error SCALE must be smoke, cpu or paper, got '$(SCALE)')
endif
OUT ?= outputs
REPRO := $(OUT)/repro/$(SCALE)
LAUNCH := $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER),)
KIPCTL ?= ./kipctl
TODAY := $(shell date -u +%Y-%m-%d)
TIMED = tools/timed $(OUT)/tables/$@-$(SCALE).wall.json $(MAKE) --no-print-directory
comma := ,
# run-dir names from the swept values (stable across re-runs, unlike hydra.job.num)
SUB_KIP := 'hydra.sweep.subdir=$${kernel.name}-n$${support}-s$${seed}'
SUB_KIP_RHO := 'hydra.sweep.subdir=$${kernel.name}-n$${support}-rho$${rho}-s$${seed}'
SUB_KRR := 'hydra.sweep.subdir=$${kernel.name}-$${kernel.kind}-n$${support}-s$${seed}'
SUB_LS := 'hydra.sweep.subdir=$${kernel.name}-$${kernel.kind}-$${dataset.preprocessing}-n$${support}-t$${n_targets}-s$${seed}'
SUB_LS_DS := 'hydra.sweep.subdir=$${dataset.name}-$${kernel.name}-$${kernel.kind}-n$${support}-t$${n_targets}-s$${seed}'
SUB_EVAL := 'hydra.sweep.subdir=$${kernel.name}-$${kernel.kind}'
split_commas = $(subst $(comma), ,$(1))
TABLES := table-1 table-2 table-a1 table-a2 table-a3 table-a4 table-a5 table-a6 table-a7 \
          table-a8 table-a9 table-a10
FIGURES := figure-2 figure-a1 figure-a3 figure-a4 figure-a5

.PHONY: tables figures $(TABLES) $(FIGURES) $(addprefix _,$(TABLES) $(FIGURES))
tables: $(TABLES)
figures: $(FIGURES)
$(TABLES) $(FIGURES): install
	$(TIMED) _$@ SCALE=$(SCALE) LAUNCHER=$(LAUNCHER) OUT=$(OUT)

# Test-set sizes: MNIST full (10k) except smoke; CIFAR-10 the first 1000 test images except
# at paper scale.
NTEST_mnist_smoke := dataset.n_test=1000
NTEST_cifar10_smoke := dataset.n_test=500
NTEST_cifar10_cpu := dataset.n_test=1000
TEST_NOTE = $(if $(NTEST_$(1)_$(SCALE)),first $(subst dataset.n_test=,,$(NTEST_$(1)_$(SCALE))) test images,full test set)

# Target augmentation of KIP (a) / (a+l): kipctl's defaults (shifts up to 5 % of the image on
# grayscale data such as MNIST, 10 % on colour data; PAPER.md names the shift but gives no
# range). The 5 % was measured here: at 10 % MNIST's shifted targets no longer look like its
# centred test digits (results/repro/ablations/table-1-aug-shift-cpu.csv,
# table-a7-a8-aug-shift-cpu.csv). Until 2026-12-04 the default was 10 % everywhere and this file
# passed aug_shift=0.05 for MNIST.

# =============================================================================================
# Tables 1 / 2: KIP, KIP (a+l), NN on KIP images, Label Solve, by support size.
# $(call support_table,<id>,<dataset>,<LS kind for FC1>)
# =============================================================================================
T1_SUPPORT_smoke := 10
T1_SUPPORT_cpu := 10,100
T1_SUPPORT_paper := 10,100,500,5000,10000
T1_SEEDS_smoke := 0
T1_SEEDS_cpu := 0
T1_SEEDS_paper := 0,1,2,3,4
T1_KIP_smoke := steps=5 target_batch=200 eval_every=0
T1_KIP_cpu := steps=1000 target_batch=6000
T1_KIP_paper := steps=10000 target_batch=6000
T1_KIP_AL_smoke := $(T1_KIP_smoke)
T1_KIP_AL_cpu := steps=5000 target_batch=2000
T1_KIP_AL_paper := $(T1_KIP_paper)
T1_NN_smoke := net.width=256 steps=20 seeds=1 center=true
T1_NN_cpu := net.width=1024 steps=500 seeds=2 center=true
T1_NN_paper := steps=5000 seeds=5 center=true
T1_LS_smoke := n_targets=1000
T1_LS_cpu :=
T1_LS_paper :=
T1_MYRTLE_A_paper := kernel=myrtle5 kernel.kind=ntk,nngp
T1_NOTE_smoke := support 10 only, 5 KIP steps with 200 targets, NN width 256 for 20 steps, LS with 1000 targets, no Myrtle rows
T1_NOTE_cpu := supports 10 and 100, one KIP init (paper: 5) of 1000 steps with 6000 targets (paper: 10-20k steps) and its final checkpoint (paper: best 5 by train loss), KIP (a+l) 5000 steps with 2000 augmented targets (shifts up to 5 %, kipctl's MNIST default), NN width 1024 for 500 steps with 2 inits (paper: not stated for Table 1; A7-A10 use 4096), LS over 60k targets with 3 draws, no Myrtle rows (GPU-days on this CPU)
T1_NOTE_paper := 5 KIP inits of 10k steps, the final checkpoint of each (paper: the 5 with the lowest train loss)
T1_LS_SEEDS_smoke := 0
T1_LS_SEEDS_cpu := 0,1,2
T1_LS_SEEDS_paper := 0,1,2,3,4

T2_SUPPORT_smoke := 10
T2_SUPPORT_cpu := 10,100
T2_SUPPORT_paper := 10,100,500,5000,10000
T2_SEEDS_smoke := 0
T2_SEEDS_cpu := 0
T2_SEEDS_paper := 0,1,2,3,4
T2_KIP_smoke := steps=3 target_batch=200 eval_every=0
T2_KIP_cpu := steps=3000 target_batch=5000
T2_KIP_paper := steps=10000 target_batch=50000
T2_KIP_AL_smoke := $(T2_KIP_smoke)
T2_KIP_AL_cpu := steps=2000 target_batch=5000
T2_KIP_AL_paper := steps=2000 target_batch=5000
T2_NN_smoke := net.width=256 steps=20 seeds=1 loss=xent center=true
T2_NN_cpu := net.width=1024 steps=300 seeds=2 loss=xent center=true
T2_NN_paper := steps=5000 seeds=5 loss=xent center=true
T2_LS_smoke := n_targets=1000
T2_LS_cpu :=
T2_LS_paper :=
T2_MYRTLE_A_paper := kernel=myrtle10 kernel.kind=nngp dataset.preprocessing=zca
T2_MYRTLE_B_paper := kernel=myrtle10 kernel.kind=ntk
T2_NOTE_smoke := support 10 only, 3 KIP steps with 200 targets, NN width 256 for 20 steps, LS with 1000 targets, no Myrtle rows
T2_NOTE_cpu := supports 10 and 100, one KIP init (paper: 5) of 3000 steps with 5000 targets (paper: 10k steps full-batch 50k), KIP (a+l) 2000 steps with 5000 targets (the (a+l) setting PAPER.md gives for Tables A7-A10), NN width 1024 for 300 steps with 2 inits (paper: not stated), LS over all 50k targets with 3 draws, no Myrtle rows
T2_NOTE_paper := 5 KIP inits, target batch 50k (full-batch GD), KIP (a+l) 2000 steps with 5000 targets (A7-A10's (a+l) setting), final checkpoints (paper: best 5 by train loss)
T2_LS_SEEDS_smoke := 0
T2_LS_SEEDS_cpu := 0,1,2
T2_LS_SEEDS_paper := 0,1,2,3,4

define support_table
	$(KIPCTL) distill -m dataset=$(2) kernel=rbf,fc1 support=$($(1)_SUPPORT_$(SCALE)) \
	    seed=$($(1)_SEEDS_$(SCALE)) $($(1)_KIP_$(SCALE)) $(NTEST_$(2)_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/$(3)/kip $(SUB_KIP) $(LAUNCH)
	$(KIPCTL) distill -m dataset=$(2) kernel=rbf,fc1 support=$($(1)_SUPPORT_$(SCALE)) \
	    seed=$($(1)_SEEDS_$(SCALE)) $($(1)_KIP_AL_$(SCALE)) augment=true learn_labels=true \
	    $(NTEST_$(2)_$(SCALE)) hydra.sweep.dir=$(REPRO)/$(3)/kip_al $(SUB_KIP) \
	    $(LAUNCH)
	for n in $(call split_commas,$($(1)_SUPPORT_$(SCALE))); do \
	  for s in $(call split_commas,$($(1)_SEEDS_$(SCALE))); do \
	    $(KIPCTL) eval-nn dataset=$(2) net=fc1 data=$(REPRO)/$(3)/kip/fc1-n$$n-s$$s/support.npz \
	        $($(1)_NN_$(SCALE)) $(NTEST_$(2)_$(SCALE)) \
	        hydra.run.dir=$(REPRO)/$(3)/nn/fc1-n$$n-s$$s || exit 1; done; done
	$(KIPCTL) label-solve -m dataset=$(2) kernel=fc1 kernel.kind=$(4) \
	    support=$($(1)_SUPPORT_$(SCALE)) seed=$($(1)_LS_SEEDS_$(SCALE)) $($(1)_LS_$(SCALE)) \
	    $(NTEST_$(2)_$(SCALE)) hydra.sweep.dir=$(REPRO)/$(3)/ls $(SUB_LS) $(LAUNCH)
	$(if $($(1)_MYRTLE_A_$(SCALE)),$(KIPCTL) label-solve -m dataset=$(2) \
	    $($(1)_MYRTLE_A_$(SCALE)) support=$($(1)_SUPPORT_$(SCALE)) \
	    seed=$($(1)_LS_SEEDS_$(SCALE)) hydra.sweep.dir=$(REPRO)/$(3)/ls $(SUB_LS) $(LAUNCH))
	$(if $($(1)_MYRTLE_B_$(SCALE)),$(KIPCTL) label-solve -m dataset=$(2) \
	    $($(1)_MYRTLE_B_$(SCALE)) support=$($(1)_SUPPORT_$(SCALE)) \
	    seed=$($(1)_LS_SEEDS_$(SCALE)) hydra.sweep.dir=$(REPRO)/$(3)/ls $(SUB_LS) $(LAUNCH))
	$(KIPCTL) report $(REPRO)/$(3) paper=$(3) out=$(OUT)/tables name=$(3)-$(SCALE) \
	    caption="$(5) ($(2), accuracy %; SCALE=$(SCALE): $($(1)_NOTE_$(SCALE)); KIP seeds $($(1)_SEEDS_$(SCALE)); $(call TEST_NOTE,$(2)); $(TODAY))"
endef

_table-1:
	$(call support_table,T1,mnist,table-1,ntk,Table 1)
_table-2:
	$(call support_table,T2,cifar10,table-2,nngp,Table 2)

# =============================================================================================
# Tables A1 / A2: KRR accuracy of class-balanced natural subsets, Linear / RBF / FC1 kernels.
# =============================================================================================
A1_SUPPORT_smoke := 10,20
A1_SUPPORT_cpu := 10,20,40,80,160,320,640,1280,2560,5000,10000
A1_SUPPORT_paper := 10,20,40,80,160,320,640,1280,2560,5000,10000
A1_SEEDS_smoke := 2
A1_SEEDS_cpu := 5
A1_SEEDS_paper := 20
A1_NOTE_smoke := 2 resamplings
A1_NOTE_cpu := 5 resamplings (paper: 20), sizes up to 10000 as in the paper
A1_NOTE_paper := 20 resamplings
A2_SUPPORT_smoke := 10,20
A2_SUPPORT_cpu := 10,20,40,80,160,320,640,1280,2560,5000,10000
A2_SUPPORT_paper := 10,20,40,80,160,320,640,1280,2560,5000,10000
A2_SEEDS_smoke := 2
A2_SEEDS_cpu := 5
A2_SEEDS_paper := 20
A2_NOTE_smoke := 2 resamplings
A2_NOTE_cpu := 5 resamplings (paper: 20), sizes up to 10000 as in the paper
A2_NOTE_paper := 20 resamplings

# $(call natural_table,<A1|A2>,<dataset>,<id>,<title>)
define natural_table
	$(KIPCTL) eval-krr -m dataset=$(2) kernel=linear,rbf,fc1 support=$($(1)_SUPPORT_$(SCALE)) \
	    seeds=$($(1)_SEEDS_$(SCALE)) $(NTEST_$(2)_$(SCALE)) hydra.sweep.dir=$(REPRO)/$(3) \
	    $(SUB_KRR) $(LAUNCH)
	$(KIPCTL) report $(REPRO)/$(3) by=kernel,support values=accuracy_mean,accuracy_std \
	    out=$(OUT)/tables name=$(3)-$(SCALE) \
	    caption="$(4) ($(2), KRR on natural class-balanced subsets, accuracy as fractions; SCALE=$(SCALE): $($(1)_NOTE_$(SCALE)); $(call TEST_NOTE,$(2)); $(TODAY))"
endef

_table-a1:
	$(call natural_table,A1,mnist,table-a1,Table A1)
_table-a2:
	$(call natural_table,A2,cifar10,table-a2,Table A2)

# =============================================================================================
# Tables A3 / A4: full-data context: KRR on (nearly) all training data vs KIP (a+l) images.
# =============================================================================================
A3_NATURAL_smoke := 200
A3_NATURAL_cpu := 10000
A3_NATURAL_paper := 60000
A4_NATURAL_smoke := 200
A4_NATURAL_cpu := 5000
A4_NATURAL_paper := 50000
A3_KIP_smoke := support=20 steps=3 target_batch=200 eval_every=0
A3_KIP_cpu := support=500 steps=300 target_batch=6000
A3_KIP_paper := support=10000 steps=10000 target_batch=6000
A4_KIP_smoke := support=20 steps=3 target_batch=200 eval_every=0
A4_KIP_cpu := support=500 steps=200 target_batch=2000
A4_KIP_paper := support=10000 steps=10000 target_batch=50000
A3_NOTE_smoke := 200 natural images, KIP (a+l) 20 images for 3 steps
A4_SEEDS_cpu := seeds=3
A3_NOTE_cpu := 10000 natural images (paper: all 60000) in 20 class-balanced draws, KIP (a+l) 500 images for 300 steps, targets shifted up to 5 % (paper: 10000 images)
A3_NOTE_paper := all training data (random, not class-balanced), KIP (a+l) 10000 images
A4_NOTE_smoke := 200 natural images, KIP (a+l) 20 images for 3 steps
A4_NOTE_cpu := 5000 natural images (paper: all 50000) in 3 class-balanced draws, KIP (a+l) 500 images for 200 steps with 2000 targets (paper: 10000 images, full batch)
A4_NOTE_paper := all training data (random, not class-balanced), KIP (a+l) 10000 images
SAMPLING_paper := sampling=random

# $(call full_data_table,<A3|A4>,<dataset>,<id>,<title>)
define full_data_table
	$(KIPCTL) eval-krr -m dataset=$(2) kernel=rbf,fc1 support=$($(1)_NATURAL_$(SCALE)) \
	    $($(1)_SEEDS_$(SCALE)) $(SAMPLING_$(SCALE)) $(NTEST_$(2)_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/$(3)/natural \
	    $(SUB_KRR) $(LAUNCH)
	$(KIPCTL) distill -m dataset=$(2) kernel=rbf,fc1 $($(1)_KIP_$(SCALE)) augment=true \
	    learn_labels=true $(NTEST_$(2)_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/$(3)/kip_al \
	    $(SUB_KIP) $(LAUNCH)
	$(KIPCTL) report $(REPRO)/$(3) by=command,kernel,support values=accuracy \
	    out=$(OUT)/tables name=$(3)-$(SCALE) \
	    caption="$(4) ($(2), KRR accuracy as fractions: natural training data (eval-krr) vs KIP (a+l) images (distill); SCALE=$(SCALE): $($(1)_NOTE_$(SCALE)); $(call TEST_NOTE,$(2)); $(TODAY))"
endef

_table-a3:
	$(call full_data_table,A3,mnist,table-a3,Table A3)
_table-a4:
	$(call full_data_table,A4,cifar10,table-a4,Table A4)

# =============================================================================================
# Tables A5 / A6: networks trained on KIP images (kernel family FC1-3, Conv1-2: PAPER.md §6
# and §7; Figure A1's "Avg All" family also has Conv3) vs natural images, clean and 90%
# corrupted. One corrupt-sweep per network; the networks of a table share their KIP cells
# (cells_dir: the distill cells do not depend on the network).
# =============================================================================================
NETS_FAMILY := kernel=family_fc_conv kernel.members=[fc1,fc2,fc3,conv1,conv2]
A5_NETS := fc1 lenet
A6_NETS := fc3 conv2 wrn
# per-network overrides (smoke: narrow networks)
A5_fc1_smoke := net.width=256
A6_fc3_smoke := net.width=64
A6_conv2_smoke := net.width=16
A6_wrn_smoke := net.width=1
A5_fc1_cpu := net.width=1024
A6_conv2_cpu := net.width=32
A6_wrn_cpu := net.width=1
A5_GRID_smoke := supports=[10] distill.steps=2 distill.target_batch=100 nn.steps=10 nn.seeds=1
A5_GRID_cpu := supports=[10,100] distill.steps=100 distill.target_batch=1000 nn.steps=300 nn.seeds=2
A5_GRID_paper := supports=[10,100,200] distill.steps=2000 distill.target_batch=6000 nn.steps=1000 nn.seeds=5
A6_GRID_smoke := supports=[10] distill.steps=2 distill.target_batch=100 nn.steps=5 nn.seeds=1
A6_GRID_cpu := supports=[10,100,200] distill.steps=100 distill.target_batch=1000 nn.steps=200 nn.seeds=2
A6_GRID_paper := supports=[10,100,200] distill.steps=2000 distill.target_batch=50000 nn.steps=1000 nn.seeds=5 nn.lr_grid=[1e-3,1e-2,1e-1]
A5_NN := nn.loss=xent nn.optimizer=adam nn.lr=1e-3
A6_NN := nn.loss=xent nn.optimizer=momentum nn.lr=1e-2
A5_NOTE_smoke := 10 images, 2 KIP steps, FC1 width 256, 10 NN steps
A5_NOTE_cpu := 10 and 100 images (paper: also 200), KIP 100 steps with 1000 targets, FC1 width 1024, 300 NN steps, 2 inits
A5_NOTE_paper := 10, 100 and 200 images, KIP 2000 steps with 6000 targets, 1000 NN steps (PAPER.md: a few hundred), 5 inits
A6_NOTE_smoke := 10 images, 2 KIP steps, FC3 width 64, Conv2 16 channels, WRN-16-1, 5 NN steps at lr 0.01 (no grid)
A6_NOTE_cpu := 10, 100 and 200 images as in the paper, KIP 100 steps with 1000 targets, FC3 width 1024, Conv2 32 channels (paper: 512), WRN-16-1 (kipctl's default WRN-16-4; PAPER.md gives no size), 200 NN steps at lr 0.01 (paper: a tuned grid), 2 inits
A6_NOTE_paper := 10, 100 and 200 images, KIP 2000 steps with the full 50k targets (PAPER.md also says smaller target batches transfer better), 1000 NN steps (PAPER.md: a few hundred), 5 inits, lr chosen on a validation split (paper: lr / L2 / parameterisation / loss grid)

# $(call nets_table,<A5|A6>,<dataset>,<id>,<title>): one corrupt-sweep per network
define nets_table
	$(foreach net,$($(1)_NETS),$(KIPCTL) corrupt-sweep dataset=$(2) $(NETS_FAMILY) \
	    net=$(net) $($(1)_$(net)_$(SCALE)) data_types=[natural,kip] evaluators=[nn] rhos=[0,0.9] \
	    $($(1)_GRID_$(SCALE)) $($(1)_NN) $(NTEST_$(2)_$(SCALE)) \
	    cells_dir=$(REPRO)/cells-$(3) hydra.run.dir=$(REPRO)/$(3)/$(net) && ) true
	$(KIPCTL) report $(REPRO)/$(3) sweep=rho out=$(OUT)/tables name=$(3)-$(SCALE) \
	    caption="$(4) ($(2), networks trained on natural vs KIP images (kernel family FC1-3/Conv1-2), clean and 90% noise-corrupted, accuracy %; SCALE=$(SCALE): $($(1)_NOTE_$(SCALE)); $(call TEST_NOTE,$(2)); $(TODAY))"
endef

_table-a5:
	$(call nets_table,A5,mnist,table-a5,Table A5)
_table-a6:
	$(call nets_table,A6,cifar10,table-a6,Table A6)

# =============================================================================================
# Tables A7-A10: FC1 network trained on natural vs KIP_rho (a) images, rho 0/0.5/0.75/0.9.
# A7/A8 (and A9/A10) keep their cells in one shared directory: the KIP cells are identical
# (only the networks' loss differs), so the second table trains no KIP again.
# =============================================================================================
A7_CELLS_smoke := supports=[20] rhos=[0,0.9] distill.steps=5 distill.target_batch=200
A7_NN_smoke := nn.steps=20 nn.seeds=2 net.width=256
A7_CELLS_cpu := supports=[1000] rhos=[0,0.5,0.75,0.9] distill.steps=8000 distill.target_batch=2000
A7_NN_cpu := nn.steps=500 nn.seeds=2 net.width=4096
A7_CELLS_paper := supports=[1000] rhos=[0,0.5,0.75,0.9] distill.steps=10000 distill.target_batch=30000
A7_NN_paper := nn.steps=5000 nn.seeds=5 net.width=4096
A9_CELLS_smoke := supports=[20] rhos=[0,0.9] distill.steps=3 distill.target_batch=200
A9_NN_smoke := nn.steps=20 nn.seeds=2 net.width=256
A9_CELLS_cpu := supports=[1000] rhos=[0,0.5,0.75,0.9] distill.steps=500 distill.target_batch=2000
A9_NN_cpu := nn.steps=300 nn.seeds=2 net.width=1024
A9_CELLS_paper := supports=[1000,10000] rhos=[0,0.5,0.75,0.9] distill.steps=10000 distill.target_batch=25000
A9_NN_paper := nn.steps=5000 nn.seeds=5 net.width=4096
A7_NOTE_smoke := 20 images, 5 KIP steps, 20 NN steps, width 256, 2 inits
A7_NOTE_cpu := 1000 images (paper: also 5000 and 10000); KIP 8000 steps with 2000 targets (paper: 10k steps, 30k targets), augmented with shifts up to 5 % (kipctl's MNIST default); FC1 width 4096 as in the paper, 500 steps, 2 inits (paper: 5)
A7_NOTE_paper := 1000 images (paper: also 5000 and 10000), 5 inits, no KIP (a+l) rows
A9_NOTE_smoke := 20 images, 3 KIP steps, 20 NN steps, width 256, 2 inits
A9_NOTE_cpu := 1000 images (paper: also 5000 and 10000); KIP 500 steps with 2000 targets (paper: 10k steps, 25k targets); FC1 width 1024 (paper: 4096), 300 steps, 2 inits (paper: 5)
A9_NOTE_paper := 1000 and 10000 images (paper: also 5000), 5 inits

# the KIP_rho (a) cells Tables A7/A8 (MNIST) and A9/A10 (CIFAR-10) share, and Figure A3 reuses
fc1_cells = $(REPRO)/cells-$(1)-fc1

# $(call corruption_table,<A7|A9>,<dataset>,<id>,<loss>,<title>)
define corruption_table
	$(KIPCTL) corrupt-sweep dataset=$(2) kernel=fc1 data_types=[natural,kip] evaluators=[nn] \
	    nn.loss=$(4) nn.lr=4e-4 nn.center=true $($(1)_CELLS_$(SCALE)) $($(1)_NN_$(SCALE)) \
	    $(NTEST_$(2)_$(SCALE)) \
	    cells_dir=$(call fc1_cells,$(2)) hydra.run.dir=$(REPRO)/$(3)
	$(KIPCTL) report $(REPRO)/$(3) paper=$(3) out=$(OUT)/tables name=$(3)-$(SCALE) \
	    caption="$(5) ($(2), FC1 network, $(4), centred f - f0, noise corruption; SCALE=$(SCALE): $($(1)_NOTE_$(SCALE)); $(call TEST_NOTE,$(2)); $(TODAY))"
endef

_table-a7:
	$(call corruption_table,A7,mnist,table-a7,mse,Table A7)
_table-a8:
	$(call corruption_table,A7,mnist,table-a8,xent,Table A8)
_table-a9:
	$(call corruption_table,A9,cifar10,table-a9,mse,Table A9)
_table-a10:
	$(call corruption_table,A9,cifar10,table-a10,xent,Table A10)

# =============================================================================================
# Figure 2: Label Solve accuracy vs support size and number of targets.
# =============================================================================================
F2_SUPPORT_smoke := 10,20
F2_SUPPORT_cpu := 10,20,40,80,100,160,320,500,640,1280
F2_SUPPORT_paper := 10,20,40,80,160,320,640,1280,2560,5120,10000
F2_TARGETS_smoke := 500,1000
F2_TARGETS_cpu := 1000,10000,null
F2_TARGETS_paper := 1000,10000,null
F2_DATASETS_smoke := mnist
F2_DATASETS_cpu := mnist
F2_DATASETS_paper := mnist,fashion_mnist
F2_MYRTLE_paper := kernel=myrtle5
F2_NOTE_smoke := FC1, MNIST; one support draw per cell
F2_NOTE_cpu := FC1, MNIST (paper: also Fashion-MNIST, CIFAR-10, Myrtle-5/10); one support draw per cell; sizes up to 1280 (paper: 10000)
F2_NOTE_paper := FC1 and Myrtle-5 on MNIST and Fashion-MNIST (paper: also CIFAR-10 with Myrtle-10)

_figure-2:
	$(KIPCTL) label-solve -m dataset=$(F2_DATASETS_$(SCALE)) kernel=fc1 \
	    support=$(F2_SUPPORT_$(SCALE)) n_targets=$(F2_TARGETS_$(SCALE)) $(NTEST_mnist_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/figure-2 $(SUB_LS_DS) $(LAUNCH)
	$(if $(F2_MYRTLE_$(SCALE)),$(KIPCTL) label-solve -m dataset=$(F2_DATASETS_$(SCALE)) \
	    $(F2_MYRTLE_$(SCALE)) support=$(F2_SUPPORT_$(SCALE)) n_targets=$(F2_TARGETS_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/figure-2 $(SUB_LS_DS) $(LAUNCH))
	$(KIPCTL) report $(REPRO)/figure-2 by=dataset,kernel,support,n_targets values=test_accuracy \
	    figure=figure-2 out=$(OUT)/figures name=figure-2-$(SCALE) \
	    caption="Figure 2 (Label Solve; SCALE=$(SCALE): $(F2_NOTE_$(SCALE)); $(call TEST_NOTE,mnist); $(TODAY))"

# =============================================================================================
# Figure A1: KIP on one kernel or the family, evaluated over FC1-3/Conv1-3 NTK and NNGP.
# =============================================================================================
FA1_TRAIN_smoke := fc1 conv1 family_fc_conv
FA1_TRAIN_cpu := fc1 fc2 fc3 conv1 conv2 conv3 family_fc_conv
FA1_TRAIN_paper := $(FA1_TRAIN_cpu)
FA1_EVAL_smoke := fc1,conv1
FA1_EVAL_cpu := fc1,fc2,fc3,conv1,conv2,conv3
FA1_EVAL_paper := $(FA1_EVAL_cpu)
FA1_SUPPORT_smoke := 10
FA1_SUPPORT_cpu := 10,100
FA1_SUPPORT_paper := 10,100,500
FA1_KIP_smoke := steps=2 target_batch=100 eval_every=0
FA1_KIP_cpu := steps=100 target_batch=1000 eval_every=0
FA1_KIP_paper := steps=5000 target_batch=1000 eval_every=0
FA1_NTEST_smoke := dataset.n_test=200
FA1_NTEST_cpu := dataset.n_test=1000
FA1_NTEST_paper :=
FA1_NOTE_smoke := trained on FC1 / Conv1 / the family, evaluated over FC1 and Conv1 NTK+NNGP only; 10 images, 2 KIP steps with 100 targets, first 200 test images
FA1_NOTE_cpu := 10 and 100 images (paper: also 500), 100 KIP steps with 1000 targets, first 1000 test images
FA1_NOTE_paper := 10, 100 and 500 images, KIP 5000 steps with 1000 targets (small batches transfer better, PAPER.md §2), 1 KIP init, full test set

_figure-a1:
	$(KIPCTL) distill -m dataset=mnist kernel=$(subst $() ,$(comma),$(FA1_TRAIN_$(SCALE))) \
	    support=$(FA1_SUPPORT_$(SCALE)) $(FA1_KIP_$(SCALE)) $(FA1_NTEST_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/figure-a1/kip $(SUB_KIP) $(LAUNCH)
	for n in $(call split_commas,$(FA1_SUPPORT_$(SCALE))); do \
	  for k in $(FA1_TRAIN_$(SCALE)) natural; do \
	    if [ $$k = natural ]; then src=natural; else src=$(REPRO)/figure-a1/kip/$$k-n$$n-s0/support.npz; fi; \
	    $(KIPCTL) eval-krr -m dataset=mnist source=$$src support=$$n kernel=$(FA1_EVAL_$(SCALE)) \
	        kernel.kind=ntk,nngp $(FA1_NTEST_$(SCALE)) \
	        hydra.sweep.dir=$(REPRO)/figure-a1/eval/$$k-n$$n $(SUB_EVAL) $(LAUNCH) || exit 1; \
	  done; done
	$(KIPCTL) report $(REPRO)/figure-a1 figure=figure-a1 out=$(OUT)/figures \
	    name=figure-a1-$(SCALE) \
	    caption="Figure A1 (MNIST, KIP trained on one kernel or the FC1-3/Conv1-3 family, KRR accuracy averaged over FC1-3/Conv1-3 NTK+NNGP; SCALE=$(SCALE): $(FA1_NOTE_$(SCALE)); $(TODAY))"

# =============================================================================================
# Figure A3: KRR accuracy vs corruption fraction, natural vs KIP_rho (a) images.
# =============================================================================================
FA3_GRID_smoke := supports=[10] rhos=[0,0.9] distill.steps=3 distill.target_batch=200 seeds=2
FA3_GRID_cpu := supports=[100] rhos=[0,0.5,0.75,0.9] distill.steps=300 distill.target_batch=2000 seeds=5
FA3_GRID_paper := supports=[10,100,1000] rhos=[0,0.2,0.4,0.6,0.8,0.9] distill.steps=5000 distill.target_batch=6000 seeds=20
FA3_NOTE_smoke := 10 images, 3 KIP steps, 2 natural resamplings
FA3_NOTE_cpu := MNIST 100 images with KIP 300 steps x 2000 targets, MNIST targets shifted up to 5 %; support 1000: the KIP cells and networks of Tables A7-A10 (KRR on MNIST 8000 / CIFAR-10 500 KIP steps); 5 natural resamplings
FA3_NOTE_paper := 10/100/1000 images, KIP 5000 steps, 20 natural resamplings

# At cpu and paper scale the figure also has the support-1000 panels of Tables A7-A10: the KRR
# evaluation of their KIP_rho (a) cells (cells_dir: the same images, not trained again) next to
# natural subsets, and those tables' own network rows. Run it after table-a7 ... table-a10
# (otherwise it trains their KIP cells itself, which those tables then reuse).
FA3_TABLE_CELLS_cpu := yes
FA3_TABLE_CELLS_paper := yes
FA3_NATURAL_SEEDS_cpu := seeds=5
FA3_NATURAL_SEEDS_paper := seeds=20

# $(call fa3_table_cells,<A7|A9>,<dataset>,<a7|a9>): KRR of a corruption table's KIP cells
# (its _CELLS grid only: the networks' settings do not change a KRR evaluation)
define fa3_table_cells
$(KIPCTL) corrupt-sweep dataset=$(2) kernel=fc1 data_types=[natural$(comma)kip] \
	    evaluators=[krr] $($(1)_CELLS_$(SCALE)) \
	    $(FA3_NATURAL_SEEDS_$(SCALE)) \
	    $(NTEST_$(2)_$(SCALE)) cells_dir=$(call fc1_cells,$(2)) \
	    hydra.run.dir=$(REPRO)/figure-a3/$(2)-$(3)-cells
endef

_figure-a3:
	$(KIPCTL) corrupt-sweep dataset=mnist kernel=fc1 data_types=[natural,kip] evaluators=[krr] \
	    $(FA3_GRID_$(SCALE)) $(NTEST_mnist_$(SCALE)) \
	    hydra.run.dir=$(REPRO)/figure-a3/mnist
	$(if $(FA3_TABLE_CELLS_$(SCALE)),$(call fa3_table_cells,A7,mnist,a7))
	$(if $(FA3_TABLE_CELLS_$(SCALE)),$(call fa3_table_cells,A9,cifar10,a9))
	$(KIPCTL) report $(REPRO)/figure-a3 \
	    $(if $(FA3_TABLE_CELLS_$(SCALE)),$(wildcard $(addprefix $(REPRO)/table-,a7 a8 a9 a10))) \
	    figure=figure-a3 out=$(OUT)/figures name=figure-a3-$(SCALE) \
	    caption="Figure A3 (FC1 test accuracy vs noise-corruption fraction, natural vs KIP_rho (a) images; SCALE=$(SCALE): $(FA3_NOTE_$(SCALE)); $(call TEST_NOTE,mnist) (MNIST)$(if $(FA3_TABLE_CELLS_$(SCALE)),$(comma) $(call TEST_NOTE,cifar10) (CIFAR-10)); $(TODAY))"

# =============================================================================================
# Figures A4 / A5: image grids, KIP-learned vs natural, clean and 90% corrupted.
# =============================================================================================
FA4_KIP_smoke := steps=3 target_batch=200 eval_every=0
FA4_KIP_cpu := steps=500 target_batch=6000
FA4_KIP_paper := steps=10000 target_batch=6000
FA5_KIP_smoke := steps=3 target_batch=200 eval_every=0
FA5_KIP_cpu := steps=300 target_batch=2000
FA5_KIP_paper := steps=10000 target_batch=50000

# $(call image_figure,<FA4|FA5>,<dataset>,<id>,<title>)
define image_figure
	$(KIPCTL) distill -m dataset=$(2) kernel=fc1 support=10 rho=0,0.9 augment=true \
	    $($(1)_KIP_$(SCALE)) $(NTEST_$(2)_$(SCALE)) \
	    hydra.sweep.dir=$(REPRO)/$(3) \
	    $(SUB_KIP_RHO) $(LAUNCH)
	$(KIPCTL) report $(REPRO)/$(3) figure=$(3) out=$(OUT)/figures name=$(3)-$(SCALE) \
	    caption="$(4) ($(2), FC1 KIP (a) images vs the natural images they started from, clean and 90% noise-corrupted; SCALE=$(SCALE): $(strip $($(1)_KIP_$(SCALE))); $(TODAY))"
endef

_figure-a4:
	$(call image_figure,FA4,mnist,figure-a4,Figure A4)
_figure-a5:
	$(call image_figure,FA5,cifar10,figure-a5,Figure A5)

# =============================================================================================
# REPRODUCTION.md: copy the SCALE=cpu tables it quotes into results/repro/ (committed) and
# regenerate it from them (tools/make_reproduction.py; numbers are never typed by hand).
# =============================================================================================
REPRODUCTION_ITEMS := $(TABLES) $(FIGURES) audit
.PHONY: reproduction
reproduction: install
	mkdir -p results/repro  # items whose outputs are not on this machine keep their files
	for t in $(REPRODUCTION_ITEMS); do \
	  for f in $(OUT)/tables/$$t-cpu.* $(OUT)/figures/$$t-cpu.*; do \
	    [ -f "$$f" ] && cp "$$f" results/repro/ || true; done; \
	  [ -d $(OUT)/repro/cpu/$$t ] && rm -f results/repro/$$t-cpu-seconds-not_done.* && \
	    $(KIPCTL) report $(OUT)/repro/cpu/$$t by=command \
	    values=seconds format=csv out=results/repro name=$$t-cpu-seconds \
	    caption="compute seconds of the runs of make $$t SCALE=cpu" > /dev/null || true; done
	$(PY) tools/make_reproduction.py --src results/repro --out REPRODUCTION.md

# =============================================================================================
# DP-KIP (issue #26, docs/dp.md): MNIST FC1 support 10 / 100 at epsilon 1 / 2 / 8 beside KIP
# from the same noise init and natural subsets -> results/dp/ (table, accuracy-epsilon figure).
# Resumable: finished runs under $(REPRO)/dp-kip are skipped.
# =============================================================================================
DPKIP_smoke := --steps 5 --target-batch 200
DPKIP_cpu := --steps 500 --target-batch 1000
DPKIP_paper := --steps 2000 --target-batch 6000 --seeds 3

.PHONY: dp-kip _dp-kip
dp-kip: install
	$(TIMED) _$@ SCALE=$(SCALE) OUT=$(OUT)
_dp-kip:
	$(PY) tools/dp_kip_results.py $(DPKIP_$(SCALE)) --work $(REPRO)/dp-kip \
	    --out $(if $(filter cpu,$(SCALE)),results/dp,$(OUT)/dp-kip-$(SCALE))

# =============================================================================================
# kipctl audit (issue #15, docs/audit.md): membership inference and nearest-image leakage of
# natural / KIP / KIP_rho supports, with the null (nothing can leak) and leak (the members
# themselves) sanity cells. One process; its run dir resumes (finished distillations and
# cached scores are reused). The report is the strongest attack per cell and member group.
# =============================================================================================
AUDIT_smoke := universe=200 support=10 shadows=4 rhos=[0,0.9] distill.steps=10 distill.target_batch=100 dp_target_batch=20 dataset.n_test=1000
AUDIT_cpu := universe=4000 support=100 shadows=16 rhos=[0,0.5,0.75,0.9] distill.steps=300 distill.target_batch=1000
AUDIT_paper := universe=20000 support=100 shadows=64 rhos=[0,0.5,0.75,0.9] distill.steps=10000 distill.target_batch=6000
AUDIT_NOTE_smoke := support 10, universe 200, 4 runs, 10 KIP steps with 100 member targets (DP-KIP: 20 expected), first 1000 test images
AUDIT_NOTE_cpu := support 100, universe 4000 (2000 members per run), 16 runs (8 select attacks and thresholds, 8 are measured), KIP 300 steps with 1000 member targets (KIP_rho augmented, shifts up to 5 %), DP-KIP 300 steps with 100 expected member targets, full test set
AUDIT_NOTE_paper := support 100, universe 20000, 64 runs, KIP 10k steps with 6000 member targets (a GPU cluster's worth)

.PHONY: audit _audit
audit: install
	$(TIMED) _$@ SCALE=$(SCALE) OUT=$(OUT)
_audit:
	$(KIPCTL) audit dataset=mnist kernel=fc1 $(AUDIT_$(SCALE)) hydra.run.dir=$(REPRO)/audit
	$(KIPCTL) report $(REPRO)/audit audit=strongest out=$(OUT)/tables name=audit-$(SCALE) \
	    caption="kipctl audit (MNIST, FC1 kernel; membership inference on held-out runs: AUC, TPR at 1% / 0.1% FPR and empirical epsilon with runs x images cluster-bootstrap 95% intervals, certified epsilon lower bound (one-run audit, 95%), DP guarantee (replace-one), KRR test accuracy; SCALE=$(SCALE): $(AUDIT_NOTE_$(SCALE)); $(TODAY))"
