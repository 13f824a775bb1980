#!/usr/bin/env bash
# The GPU run, on the GPU machine (Python + PyTorch, no Node.js, no
# node_modules, no network), from the repository root, after
# scripts/gpu/prepare.sh. Writes to $OUT (8 files, the most that come back):
#   env.txt          nvidia-smi, node, torch, rlhf-kernels info
#   gpu-tests.txt    node --test dist/tests/gpu/ (CUDA parity of every family)
#   bench-cuda.json  rlhf-kernels bench --device cuda --size large --json
#   bench-cuda.log   its stderr (providers that did not run, problems), and
#                    the host-inclusive times of bench/gpu/device_time.ts
#   ncu.csv          Nsight Compute's device time of every kernel of device_time.ts;
#                    after "==== base
#                    build", all of them with .gpu/base.node.xz when prepare.sh
#                    made one; after "==== variant NAME", that launch-shape
#                    variant's cases with its build (.gpu/variants/)
#                    (RK_GPU_NCU=details: ncu-details.txt instead, the full
#                    section set of the kernels matching $RK_NCU_KERNELS)
#   torch.json       PyTorch eager / torch.compile on the same shapes
#   torch.log        its output
#   summary.md       ours vs torch, fraction of HBM bandwidth; device time per
#                    call of each device_time.ts case (and of the base build),
#                    and each variant's cases beside this build's
# RK_GPU_STEPS (default tests,bench,ncu,torch) picks the steps: a tuning
# call (RK_GPU_STEPS=ncu RK_DEVICE_TIME_CASES=^gae) times this build and the
# variants alone. RK_GPU_VARIANT_TESTS="NAME:FILE[,FILE...] ..." then runs
# the GPU tests FILE (in dist/tests/gpu/, side by side) with variant NAME's
# build, into gpu-tests.txt;
# RK_GPU_VARIANT_TESTS=auto runs the family's tests of each variant worth
# adopting (ncu_cases.ts winners: the best per family, >= 1.03x, no case
# slower), so one call both times the variants and checks the winners;
# "auto" among NAME:FILE items runs those too.
# Every step runs under its own timeout inside a total budget
# (RK_GPU_BUDGET seconds, default 420, +70 with a base build, +15 per
# variant) and tolerates the failure of the
# ones before; the summary table is printed last. RK_PYTHON picks the
# Python (default python3). RK_BENCH_OPS and RK_TORCH_FAMILIES narrow a
# rerun to some op families, and RK_BENCH_SECONDS (default 120) and
# RK_TORCH_SECONDS (default 150) cap those two steps; RK_GPU_NCU=0 skips
# the ncu step, and
# RK_GPU_NCU=details profiles instead of timing: every section of ncu's
# full set (occupancy, memory workload, warp stalls, source counters) for
# the kernels whose names match RK_NCU_KERNELS (a regex; default the
# kernels short of their goals), to tune them.
set -u
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
VARIANTS=$(grep -c . .gpu/variants/list.txt 2>/dev/null)  # 0 when missing or empty
VARIANTS=${VARIANTS:-0}
BUDGET=${RK_GPU_BUDGET:-$((420 + ($([ -f .gpu/base.node.xz ] && echo 70 || echo 0)) + 15 * VARIANTS))}
rm -rf /tmp/rk-cases.md /tmp/rk-ncu-*.csv /tmp/rk-device-time-*.log /tmp/rk-variants /tmp/rk-bin
PY=${RK_PYTHON:-python3}
STEPS=",${RK_GPU_STEPS:-tests,bench,ncu,torch},"
wants() { [[ $STEPS == *",$1,"* ]]; }
START=$SECONDS

# Seconds for a step: what it asks for, but leave `reserve` for the steps after it.
allot() {
  local want=$1 reserve=$2 left=$((BUDGET - (SECONDS - START) - $2))
  if [ "$left" -lt "$want" ]; then want=$left; fi
  if [ "$want" -lt 5 ]; then want=5; fi
  echo "$want"
}
step() { echo "== $* ($((SECONDS - START)) s in)"; }

# An xz file to an executable (xz, or Python's lzma where xz is missing).
unpack() {
  mkdir -p "$(dirname "$2")"
  { xz -dc "$1" > "$2" 2>/dev/null ||
    python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; } &&
    chmod +x "$2"
}

step "node"
NODE=/tmp/rk-node/node
if [ -x "$NODE" ] || { [ -f .gpu/node.xz ] && unpack .gpu/node.xz "$NODE"; }; then
  "$NODE" --version || NODE=
else
  echo "no node: .gpu/node.xz missing or unreadable"; NODE=
fi
# The runner's dependency, where Node's resolution looks for it; the sm_90 addon.
[ -e node_modules ] || ln -s .gpu/node_modules node_modules
[ -f .gpu/rlhf_kernels.node ] && export RLHF_KERNELS_BINARY="$PWD/.gpu/rlhf_kernels.node"
[ -f .gpu/mismatched.node.xz ] && unpack .gpu/mismatched.node.xz /tmp/rk-bin/mismatched.node &&
  export RLHF_KERNELS_MISMATCHED_BINARY=/tmp/rk-bin/mismatched.node
[ -f .gpu/base.node.xz ] && unpack .gpu/base.node.xz /tmp/rk-bin/base.node

step "environment"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,power.limit --format=csv 2>&1
  nvidia-smi -L 2>&1
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  [ -n "$NODE" ] && { echo "node $("$NODE" --version)"; timeout 30 "$NODE" dist/lib/cli.js info 2>&1; }
} > "$OUT/env.txt"
head -3 "$OUT/env.txt"

if [ -n "$NODE" ] && wants tests; then
  step "CUDA parity tests"
  # The files run side by side; the PPO suite, the longest, took 110 s on an
  # H200 machine in one file (its float64 references on the CPU), now two.
  # A file cut short by the timeout reports nothing.
  timeout -k 5 "$(allot 120 230)" "$NODE" --test dist/tests/gpu/ > "$OUT/gpu-tests.txt" 2>&1
  echo "exit $?; $(grep -E '^# (pass|fail|skipped)' "$OUT/gpu-tests.txt" | tr '\n' ' ')"

  step "selftest (cpu and cuda)"
  timeout -k 5 "$(allot 30 200)" "$NODE" dist/lib/cli.js selftest >> "$OUT/gpu-tests.txt" 2>&1
  echo "exit $?; $(tail -1 "$OUT/gpu-tests.txt")"
fi
if [ -n "$NODE" ] && wants bench; then
  step "rlhf-kernels bench (cuda, large)"
  t=$(allot "${RK_BENCH_SECONDS:-120}" 90)
  # No new case in the last fifth of the step: the case in hand can finish.
  # The flagship first: cases run in the order of --op until the budget.
  timeout -k 5 "$t" "$NODE" dist/lib/cli.js bench --device cuda --size large --json --budget $((t * 4 / 5)) \
    --op "${RK_BENCH_OPS:-token_logprobs,ppo,advantages,preference,calibration}" \
    > "$OUT/bench-cuda.json" 2> "$OUT/bench-cuda.log"
  echo "exit $?"
fi
if [ -n "$NODE" ]; then

  # Kernel by kernel device time (Nsight Compute), beside the host-inclusive wall times.
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  if [ -n "$NCU" ] && [ "${RK_GPU_NCU:-1}" = 1 ] && wants ncu; then
    # device_time.js under ncu with the caller's environment: the CSV to
    # /tmp/rk-ncu-NAME.csv, its output to /tmp/rk-device-time-NAME.log.
    ncuTime() {
      timeout -k 5 "$1" "$NCU" --clock-control none --metrics gpu__time_duration.sum --csv \
        --log-file "/tmp/rk-ncu-$2.csv" "$NODE" dist/bench/gpu/device_time.js > "/tmp/rk-device-time-$2.log" 2>&1
      echo "exit $?; $(grep -c device_time: "/tmp/rk-device-time-$2.log") ops"
    }
    step "device time (ncu)"
    ncuTime "$(allot 60 80)" this
    cat /tmp/rk-ncu-this.csv > "$OUT/ncu.csv" 2>/dev/null
    cat /tmp/rk-device-time-this.log >> "$OUT/bench-cuda.log"
    BASE_CSV=
    if [ -f /tmp/rk-bin/base.node ]; then
      step "device time of the base build (ncu)"
      RLHF_KERNELS_BINARY=/tmp/rk-bin/base.node ncuTime "$(allot 60 $((70 + 15 * VARIANTS)))" base
      { echo "==== base build"; cat /tmp/rk-ncu-base.csv; } >> "$OUT/ncu.csv"
      { echo "== base build"; cat /tmp/rk-device-time-base.log; } >> "$OUT/bench-cuda.log"
      BASE_CSV=/tmp/rk-ncu-base.csv
    fi
    # Each launch-shape variant on its own cases (scripts/gpu/variants.txt).
    VARIANT_ARGS=()
    if [ "$VARIANTS" -gt 0 ]; then
      mkdir -p /tmp/rk-variants
      while read -r name cases knobs <&3; do
        step "variant $name: $knobs (ncu)"
        unpack ".gpu/variants/$name.node.xz" "/tmp/rk-bin/variants/$name.node" || { echo "cannot unpack $name"; continue; }
        RLHF_KERNELS_BINARY="/tmp/rk-bin/variants/$name.node" RK_DEVICE_TIME_CASES="$cases" \
          ncuTime "$(allot 20 70)" "variant-$name"
        { echo "==== variant $name: $knobs"; cat "/tmp/rk-ncu-variant-$name.csv"; } >> "$OUT/ncu.csv"
        cp "/tmp/rk-ncu-variant-$name.csv" "/tmp/rk-variants/$name.csv"
        cp "/tmp/rk-device-time-variant-$name.log" "/tmp/rk-variants/$name.log"
      done 3< .gpu/variants/list.txt
      VARIANT_ARGS=(--variants .gpu/variants/list.txt /tmp/rk-variants)
      TESTS=${RK_GPU_VARIANT_TESTS:-}
      if [[ " $TESTS " == *" auto "* ]]; then
        WINNERS=$(timeout 30 "$NODE" dist/bench/gpu/ncu_cases.js --winners .gpu/variants/list.txt /tmp/rk-variants \
          /tmp/rk-device-time-this.log /tmp/rk-ncu-this.csv)
        echo "winners: ${WINNERS:-none}" | tr '\n' ' '; echo
        TESTS=$(echo " $TESTS " | sed "s| auto | $(echo $WINNERS) |")
      fi
      # NAME:FILE,FILE...: the files side by side, in one node --test.
      for test in $TESTS; do
        step "variant ${test%%:*}: tests/gpu/${test#*:}"
        IFS=, read -ra names <<< "${test#*:}"
        files=("${names[@]/#/dist/tests/gpu/}")
        { echo "==== variant ${test%%:*}: ${test#*:}"
          RLHF_KERNELS_BINARY="/tmp/rk-bin/variants/${test%%:*}.node" \
            timeout -k 5 "$(allot 120 20)" "$NODE" --test "${files[@]}" 2>&1; } >> "$OUT/gpu-tests.txt"
        echo "exit $?; $(grep -E '^# (pass|fail)' "$OUT/gpu-tests.txt" | tail -2 | tr '\n' ' ')"
      done
    fi
    timeout 30 "$NODE" dist/bench/gpu/ncu_cases.js /tmp/rk-device-time-this.log /tmp/rk-ncu-this.csv $BASE_CSV ${VARIANT_ARGS[@]+"${VARIANT_ARGS[@]}"} > /tmp/rk-cases.md 2>&1
  elif [ -n "$NCU" ] && [ "${RK_GPU_NCU:-1}" = details ]; then
    step "kernel profiles (ncu --set full)"
    # Two launches of each matching kernel (device_time.ts runs each op 4 times).
    timeout -k 5 "$(allot 120 80)" "$NCU" --set full --import-source yes --page details \
      --kernel-name "regex:${RK_NCU_KERNELS:-gaeKernel|ppo|preferenceLoss}" --launch-skip 1 --launch-count 10 \
      "$NODE" dist/bench/gpu/device_time.js > "$OUT/ncu-details.txt" 2>> "$OUT/bench-cuda.log"
    echo "exit $?; $(grep -c '^  [a-zA-Z_].*(' "$OUT/ncu-details.txt") kernel reports"
  fi
fi

if wants torch; then
  step "torch peers"
  timeout 60 "$PY" bench/gpu/torch_check.py > "$OUT/torch.log" 2>&1
  echo "torch_check exit $?" | tee -a "$OUT/torch.log"
  t=$(allot "${RK_TORCH_SECONDS:-150}" 15)
  # RK_TORCH_FAMILIES (e.g. gae,ppo): only those shape families.
  SHAPES=.gpu/shapes-large.json
  if [ -n "${RK_TORCH_FAMILIES:-}" ]; then
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); keep=sys.argv[2].split(","); d["shapes"]={k:v for k,v in d["shapes"].items() if k in keep}; json.dump(d,open(sys.argv[3],"w"))' \
      "$SHAPES" "$RK_TORCH_FAMILIES" /tmp/rk-shapes.json && SHAPES=/tmp/rk-shapes.json
  fi
  timeout -k 5 "$t" "$PY" bench/gpu/torch_peers.py --shapes "$SHAPES" --out "$OUT/torch.json" \
    --budget $((t * 9 / 10)) >> "$OUT/torch.log" 2>&1
  echo "exit $?; $(tail -1 "$OUT/torch.log")"
fi

step "summary"
if [ -n "$NODE" ]; then
  timeout 30 "$NODE" dist/bench/gpu/summary.js "$OUT/bench-cuda.json" "$OUT/torch.json" "$OUT/summary.md"
  [ -s /tmp/rk-cases.md ] && { echo; cat /tmp/rk-cases.md; } | tee -a "$OUT/summary.md"
else
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join("%s %s %s %s: %.4g ms" % (r["op"], r["direction"], r["shape"], r["provider"], r["medianMs"]) for r in d.get("results", [])) or d.get("error", "no torch rows"))' \
    "$OUT/torch.json" 2>&1 | tee "$OUT/summary.md"
fi
echo "== done in $((SECONDS - START)) s"
