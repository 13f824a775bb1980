#!/usr/bin/env node
// Rewrites a kernels/*.cu file into C++ for the emulator's build (the host
// compiler cannot parse CUDA's launch syntax):
//   kernel<<<grid, block, smem, stream>>>(args)   -> ::rk_emu::Launch(grid, block, smem, stream).run(kernel, args)
//   extern __shared__ T name[];                   -> T* const name = dynamic shared memory
//   cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), ...)
//                                                 -> ::rk_emu::launchCooperative((kernel), ...)
// Lines keep their numbers (#line names the source). Anything left of the
// syntax is an error here rather than a puzzling one from the compiler.
// Usage: node translate.mjs in.cu out.cpp
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node translate.mjs in.cu out.cpp');
  process.exit(2);
}
let text = readFileSync(input, 'utf8');
text = text.replace(
  /([A-Za-z_][\w:]*(?:<[^<>;(){}]*>)?)\s*<<<([\s\S]*?)>>>\s*\((\s*\))?/g,
  (_, kernel, config, empty) => `::rk_emu::Launch(${config}).run(${kernel}${empty ? ')' : ', '}`,
);
text = text.replace(
  /extern\s+__shared__\s+([\w:]+)\s+(\w+)\s*\[\s*\]\s*;/g,
  '$1* const $2 = static_cast<$1*>(::rk_emu::dynamicShared());',
);
text = text.replace(
  /cudaLaunchCooperativeKernel\(\s*reinterpret_cast<const void\s*\*>\(/g,
  '::rk_emu::launchCooperative((',
);
for (const left of ['<<<', 'extern __shared__', 'cudaLaunchCooperativeKernel(']) {
  const at = text.indexOf(left);
  if (at >= 0) {
    const line = text.slice(0, at).split('\n').length;
    console.error(`${input}:${line}: the emulator's translation does not handle this form of ${left}`);
    process.exit(1);
  }
}
mkdirSync(dirname(output), { recursive: true });
writeFileSync(output, `#line 1 "${input}"\n${text}`);
