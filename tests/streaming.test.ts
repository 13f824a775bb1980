/**
 * Large cpu outputs (32 MiB and more) leave the kernels through
 * non-temporal stores on AVX2 and AVX-512: token log-prob gradients out of
 * place, GAE advantages and returns. A child process per ISA
 * (tests/stream_child.mjs), with poisoned pool blocks, checks that each
 * streamed output equals the same numbers computed without streaming, bit
 * for bit, and that every element is written.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { info } from '../lib/index.js';

describe('streamed outputs', () => {
  it.each(info().cpu.supportedIsas)('equal the cached path and are written whole (%s)', (isa) => {
    const child = fileURLToPath(new URL('./stream_child.mjs', import.meta.url));
    const out = execFileSync(process.execPath, [child], {
      env: { ...process.env, RLHF_KERNELS_ISA: isa, RLHF_KERNELS_HOST_POOL_POISON: '1' }, encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { isa: string; results: Record<string, object> };
    expect(r.isa).toBe(isa);
    expect(Object.keys(r.results).length).toBe(7);
    for (const [name, result] of Object.entries(r.results)) expect(result, name).toEqual({ differ: 0, unwritten: 0 });
  });
});
