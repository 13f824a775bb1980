#!/usr/bin/env bash
# Prepares the GPU run, here (where Node.js, npm and nvcc are). Builds the
# shipped prebuild (or, with RK_GPU_DEV=1, an sm_90-only build in
# build-gpu/), leaving build/ as it is, compiles the
# TypeScript, and packs what the GPU machine lacks into .gpu/ (git-ignored):
#   .gpu/rlhf_kernels.node       the addon (run.sh points RLHF_KERNELS_BINARY at it)
#   .gpu/node.xz                 this Node.js binary
#   .gpu/node_modules/tinybench  the runner's one run-time dependency
#   .gpu/shapes-large.json       the shape registry for the PyTorch peers
#   .gpu/mismatched.node.xz      a build with code for sm_75 alone (tests/gpu/packaging.test.ts)
#   .gpu/base.node.xz            with RK_GPU_BASE=<git revision>: that
#                                revision's addon (sm_90 only), for run.sh to
#                                time every case with both builds in one call.
#                                It must take the same calls as this dist/.
#   .gpu/variants/               one addon (sm_90 only) per line of
#                                scripts/gpu/variants.txt (or of the file
#                                RK_GPU_VARIANTS names; RK_GPU_VARIANTS=none:
#                                none): this source with other launch shapes
#                                (kernels/tuning.cuh), NAME.node.xz, and
#                                list.txt, the lines built
# The extra addons travel stripped and xz-compressed (about 1 MiB each instead
# of 9): run.sh unpacks them.
# Then, on the GPU machine: carry [".gpu", "dist"] (adding "build" does no
# harm), command `bash scripts/gpu/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The binary under test is the one the npm tarball ships (every arch, sm_90
# included), unless RK_GPU_DEV=1 asks for a quick sm_90-only build.
if [ "${RK_GPU_DEV:-0}" = 1 ]; then
  RLHF_KERNELS_BUILD_DIR=build-gpu RLHF_KERNELS_CUDA_ARCHS="${RLHF_KERNELS_CUDA_ARCHS:-90-real}" npm run build:native
  binary=build-gpu/Release/rlhf_kernels.node
else
  npm run build:prebuild
  binary=prebuilds/linux-x64/rlhf-kernels.glibc.node
fi
# A build with code for sm_75 alone: on a newer GPU it must report
# cudaErrorNoKernelImageForDevice (tests/gpu/packaging.test.ts).
RLHF_KERNELS_BUILD_DIR=build-sm75 RLHF_KERNELS_CUDA_ARCHS=75-real npm run build:native
npm run build:ts

# An addon, stripped and compressed, to DEST.
pack() { strip --strip-unneeded -o /tmp/rk-pack.node "$1" && xz -T2 -c /tmp/rk-pack.node > "$2" && rm -f /tmp/rk-pack.node; }

rm -f .gpu/mismatched.node .gpu/base.node
mkdir -p .gpu/node_modules
cp "$binary" .gpu/rlhf_kernels.node
pack build-sm75/Release/rlhf_kernels.node .gpu/mismatched.node.xz
xz -T2 -c "$(command -v node)" > .gpu/node.xz
rm -rf .gpu/node_modules/tinybench
cp -R node_modules/tinybench .gpu/node_modules/tinybench
node dist/lib/cli.js bench --list-shapes --size large --json > .gpu/shapes-large.json
rm -f .gpu/base.node.xz
if [ -n "${RK_GPU_BASE:-}" ]; then
  base=/tmp/rk-gpu-base
  rm -rf "$base" && mkdir -p "$base"
  git archive "$RK_GPU_BASE" | tar -x -C "$base"
  ln -s "$PWD/node_modules" "$base/node_modules"
  (cd "$base" && RLHF_KERNELS_CUDA_ARCHS=90-real node scripts/build-native.js)
  pack "$base/build/Release/rlhf_kernels.node" .gpu/base.node.xz
  echo "prepare: .gpu/base.node.xz is $(git rev-parse --short "$RK_GPU_BASE") (sm_90)"
fi

# The launch-shape variants: one build folder for all (only the kernels
# take the knobs, so only they recompile from one variant to the next).
rm -rf .gpu/variants
variants=${RK_GPU_VARIANTS:-scripts/gpu/variants.txt}
if [ "$variants" != none ]; then
  mkdir -p .gpu/variants
  { grep -vE '^[[:space:]]*(#|$)' "$variants" || true; } > .gpu/variants/list.txt
  while read -r name cases knobs <&3; do
    RLHF_KERNELS_BUILD_DIR=build-variant RLHF_KERNELS_CUDA_ARCHS=90-real RLHF_KERNELS_CUDA_DEFINES="$knobs" \
      node scripts/build-native.js
    pack build-variant/Release/rlhf_kernels.node ".gpu/variants/$name.node.xz"
    echo "prepare: variant $name ($knobs) for the cases $cases"
  done 3< .gpu/variants/list.txt
fi

# The transfer carries at most 64 MiB.
total=$(du -cm .gpu dist | tail -1 | cut -f1)
du -sh .gpu dist
if [ "$total" -gt 60 ]; then
  echo "prepare: .gpu + dist is ${total} MiB, too close to the transfer limit (64 MiB)" >&2
  exit 1
fi
echo "prepare: ready (${total} MiB). carry [\".gpu\", \"dist\"], run: bash scripts/gpu/run.sh"
