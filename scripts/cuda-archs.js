// The CUDA architectures of a release build: the default list that
// CMakeLists.txt gives RK_CUDA_ARCHS. build-native.js passes it whenever
// RLHF_KERNELS_CUDA_ARCHS is unset, so that a list asked for once does not
// stay in a build directory's CMake cache.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** e.g. "75-real;80-real;...;120-virtual" */
export function defaultCudaArchs(root) {
  const cmake = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
  const m = /set\(RK_CUDA_ARCHS "([^"]+)"/.exec(cmake);
  if (!m) throw new Error(`rlhf-kernels: ${join(root, 'CMakeLists.txt')} sets no default RK_CUDA_ARCHS`);
  return m[1];
}
