#!/usr/bin/env bash
# make gpu-check: kipctl's checks for a lent GPU, one script (issue #24 item 7). On one H200 it
# is sized to finish in under 8 minutes and to carry under 64 MiB (MNIST 11 MB, three wheels).
#
#   make gpu-check-prepare            # here: .gpu/ (MNIST, ../shared/bench scripts), .whl/
#   device run: bash tools/gpu_check.sh  with carry [".gpu", ".whl"]   -> $OUT (results/gpu)
#   GPU_CHECK_SCALE=smoke make gpu-check    # the same script in a minute on the CPU (dry run)
#
# 1. the distill bench (FC1, RBF, Conv1, Myrtle-5) and ../shared/bench/kip_probe.py's bench, in
#    the same run, nothing else on the GPU; 2. Table 1's plain KIP rows (RBF and FC1, support 10
#    and 100) at the paper's length, 10000 steps x 5 inits, five processes at a time on the one
#    GPU, beside 3. the fast test tier. Each part is time-boxed so that the whole stays in budget.
set -uo pipefail
cd "$(dirname "$0")/.."
# RES: the summaries (committed: at most 8 files, what the device tool brings back from $OUT);
# RUNS: the kipctl run directories (git-ignored)
RES=${GPU_CHECK_RESULTS:-results/gpu}
RUNS=outputs/gpu-check
SCALE=${GPU_CHECK_SCALE:-full}
rm -rf "$RUNS"; mkdir -p "$RES" "$RUNS"
if [ -d .whl ] && ! python3 -c "import hydra, omegaconf" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export KIP_DATA_DIR=${KIP_DATA_DIR:-$PWD/.gpu/data}
export KIP_SHARED_BENCH=${KIP_SHARED_BENCH:-$PWD/.gpu/bench}
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the one GPU
log() { echo "[$(date +%T)] $*" | tee -a "$RES/gpu_check.log"; }

{ python3 -c "import jax, platform; print('python', platform.python_version(), 'jax', jax.__version__, jax.devices())"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
  nproc; uptime; } > "$RES/env.txt" 2>&1
log "env: $(tr '\n' ' ' < "$RES/env.txt")"

if [ "$SCALE" = smoke ]; then
  CASES=fc1-10-t2000,conv1-100-t1000; BSTEPS=2; STEPS=20; SUPPORTS="10"; SEEDS="0 1"
  TESTS="tests/test_kernels.py"; TEST_S=300; PROBE=""
else
  CASES=fc1-10-t6000,fc1-100-t6000,fc1-1000-t2000,rbf-100-t6000,conv1-100-t1000,myrtle5-10-t20
  BSTEPS=20; STEPS=10000; SUPPORTS="10 100"; SEEDS="0 1 2 3 4"
  TESTS="-m not\ slow"; TEST_S=200; PROBE=1
fi

PARTS=${GPU_CHECK_PARTS:-bench,table1,tests}  # a rerun can take a subset
if [[ $PARTS == *bench* ]]; then
log "1/3 bench: kipctl distill step ($CASES) and kip_probe, nothing else running"
timeout 170 python3 bench/bench_distill.py --cases "$CASES" --steps "$BSTEPS" --no-reference \
  --out "$RES/bench_distill" --note "one GPU ($(head -2 "$RES/env.txt" | tail -1)); floors from matmul_floor.py on the same GPU" \
  > "$RES/bench_distill.log" 2>&1 || log "bench_distill exit $?"
if [ -n "$PROBE" ]; then
  timeout 120 python3 "$KIP_SHARED_BENCH/kip_probe.py" bench > "$RES/kip_probe_bench.txt" 2>&1 \
    || log "kip_probe exit $?"
  python3 - "$RES" <<'PY' 2>&1 | tee -a "$RES/gpu_check.log"
import json, sys
res = sys.argv[1]
ours = {r["case"]: r for r in json.load(open(f"{res}/bench_distill.json"))["cases"]}
probe = [json.loads(l) for l in open(f"{res}/kip_probe_bench.txt") if '"support"' in l]
for p in probe:
    r = ours.get(f"fc1-{p['support']}-t{p['targets']}")
    if r:
        print(f"FC1 {p['support']}/{p['targets']}: kipctl {r['ms_per_step_pipelined']} ms "
              f"pipelined ({r['ms_per_step']} waited, path {r['path']}), kip_probe "
              f"{p['ms_per_step']} ms: {r['ms_per_step_pipelined'] / p['ms_per_step']:.2f}x")
PY
fi
fi

if [[ $PARTS == *table1* ]]; then
log "2/3 Table 1 KIP rows: rbf, fc1 x support $SUPPORTS x seeds $SEEDS, $STEPS steps"
cells=()
for k in rbf fc1; do for n in $SUPPORTS; do for s in $SEEDS; do cells+=("$k $n $s"); done; done; done
printf '%s\n' "${cells[@]}" | timeout 250 xargs -P 5 -L 1 bash -c \
  './kipctl distill dataset=mnist kernel=$0 support=$1 seed=$2 steps='"$STEPS"' target_batch=6000 \
   eval_every=0 log_every=500 ckpt_every=5000 hydra.run.dir='"$RUNS"'/table1/$0-n$1-s$2 \
   > '"$RUNS"'/table1-$0-n$1-s$2.log 2>&1 || echo "cell $0 $1 $2 exit $?"' \
  > "$RES/table1_xargs.log" 2>&1 &
kip=$!
fi

if [[ $PARTS == *tests* ]]; then
log "3/3 fast tests beside it (${TEST_S} s box)"
XDIST=$(python3 -c "import xdist" 2>/dev/null && echo "-n 4")
# -v: one line per test, so a run cut by the time box still names its failures in the log
eval timeout "$TEST_S" python3 -m pytest -v -p no:cacheprovider "$TESTS" $XDIST \
  > "$RES/tests.log" 2>&1 || log "tests exit $?"
{ echo "tests: $(grep -c ' PASSED' "$RES/tests.log") passed, $(grep -c ' FAILED' \
  "$RES/tests.log") failed"; grep -E ' (FAILED|ERROR)' "$RES/tests.log"; tail -1 "$RES/tests.log"
} | tee -a "$RES/gpu_check.log"
fi
if [[ $PARTS == *table1* ]]; then
wait $kip || log "table 1 xargs exit $?"
cat "$RES/table1_xargs.log" >> "$RES/gpu_check.log"
python3 tools/gpu_table1.py "$RUNS/table1" "$RES/table1" | tee -a "$RES/gpu_check.log"
fi
log "done"
if [ -n "${OUT:-}" ] && [ "$OUT" != "$RES" ]; then  # the device tool brings back $OUT only
  cp "$RES"/{gpu_check.log,env.txt,bench_distill.json,bench_distill.md,bench_distill.log,kip_probe_bench.txt,tests.log,table1.csv,table1.md} "$OUT"/ 2>/dev/null
fi
