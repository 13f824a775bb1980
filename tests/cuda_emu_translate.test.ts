/**
 * The CUDA emulator's source translation (native/cuda_emu/translate.mjs):
 * the launch syntax, dynamic shared memory and the cooperative launch become
 * plain C++, line numbers stay, and a form it does not know is an error
 * naming the line rather than a confusing one from the compiler.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../native/cuda_emu/translate.mjs', import.meta.url));

function translate(source: string): { status: number | null; out: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rk-emu-'));
  const input = join(dir, 'k.cu'), output = join(dir, 'out', 'k.cpp');
  writeFileSync(input, source);
  const r = spawnSync(process.execPath, [script, input, output], { encoding: 'utf8' });
  return { status: r.status, out: r.status === 0 ? readFileSync(output, 'utf8') : '', stderr: r.stderr };
}

describe('translate.mjs', () => {
  it('rewrites launches, extern __shared__ and the cooperative cast, keeping line numbers', () => {
    const source = [
      'kernel<true><<<blocks, 256, 0, stream>>>(p, n);',
      'probe<<<1, 1>>>();',
      'k2<<<grid(a, b),',
      '     kBlock>>>(',
      '    x);',
      '  extern __shared__ int32_t rows[];',
      'return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(ppo<Op>), dim3(g), dim3(t), args, smem, s);',
    ].join('\n');
    const r = translate(source);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^#line 1 ".*k\.cu"$/);
    expect(lines[1]).toBe('::rk_emu::Launch(blocks, 256, 0, stream).run(kernel<true>, p, n);');
    expect(lines[2]).toBe('::rk_emu::Launch(1, 1).run(probe);');
    expect(lines.slice(3, 6).join('\n')).toBe('::rk_emu::Launch(grid(a, b),\n     kBlock).run(k2, \n    x);');
    expect(lines[6]).toBe('  int32_t* const rows = static_cast<int32_t*>(::rk_emu::dynamicShared());');
    expect(lines[7]).toBe('return ::rk_emu::launchCooperative((ppo<Op>), dim3(g), dim3(t), args, smem, s);');
    expect(lines).toHaveLength(source.split('\n').length + 1);
  });

  it('refuses a form it does not translate, naming the line', () => {
    const r = translate('int x;\nreturn cudaLaunchCooperativeKernel((void*)k, g, t, args, 0, s);\n');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/k\.cu:2: .*cudaLaunchCooperativeKernel\(/);
  });
});
