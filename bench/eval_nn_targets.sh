#!/usr/bin/env bash
# PAPER.md §6 / Tables A7-A8 natural baselines for kipctl eval-nn (results/eval_nn/README.md).
# Run one at a time on a shared machine; `uptime` is recorded next to each run.
set -euo pipefail
cd "$(dirname "$0")/.."
export KIP_DATA_DIR=${KIP_DATA_DIR:-../shared/data}
OUT=${OUT:-results/eval_nn/runs}
STEPS=${STEPS:-300}
run() { local name=$1; shift; uptime; /usr/bin/time -f "%e s wall" ./kipctl eval-nn "$@" \
          hydra.run.dir="$OUT/$name"; uptime; }
# MNIST, 1000 natural images, FC1 width 4096, Adam lr 4e-4, 5 inits (A7 MSE 92.8±0.4, A8 xent 91.3±0.4)
run mnist_fc1_mse  dataset=mnist net=fc1 support=1000 seeds=5 optimizer=adam lr=4e-4 loss=mse  steps=$STEPS log_every=25
run mnist_fc1_xent dataset=mnist net=fc1 support=1000 seeds=5 optimizer=adam lr=4e-4 loss=xent steps=$STEPS log_every=25
# CIFAR-10 (1000-image test split in KIP_DATA_DIR), natural 1000, FC1 xent (paper 35.4±0.3)
run cifar10_fc1_xent dataset=cifar10 net=fc1 support=1000 seeds=${CIFAR_SEEDS:-5} optimizer=adam lr=4e-4 loss=xent steps=${CIFAR_STEPS:-$STEPS} log_every=25
