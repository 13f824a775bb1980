// The host pool (native/core/host_pool.h): large cpu storage is recycled, so
// ops must write every element of their outputs, and a block may come back
// only when no view and no queued work can reach it. Each check runs in a
// child process: the pool's mode is read from the environment at load, and
// the garbage collector must be callable (--expose-gc).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { info, memory, tensor, whiten } from '../lib/index.js';
import { addon } from '../lib/addon.js';

const child = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

function run(args: string[], env: Record<string, string> = {}): unknown {
  const out = execFileSync(process.execPath, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('host pool', () => {
  // Every cpu tensor from the pool, filled with 0xff bytes when handed out:
  // an output element an op leaves unwritten stays a NaN no kernel makes.
  it.each(info().cpu.supportedIsas)('every op writes every output element (poisoned storage, %s)', (isa) => {
    const r = run([child('host_pool_poison_child.mjs')], { RLHF_KERNELS_HOST_POOL_POISON: '1', RLHF_KERNELS_ISA: isa }) as {
      isa: string; checked: number; poisoned: string[];
    };
    expect(r.isa).toBe(isa);
    expect(r.checked).toBeGreaterThan(2000);
    expect(r.poisoned).toEqual([]);
  });

  it('recycles through GC and dispose(), never under queued work or a live view; workers give back at exit; queued work keeps its storage across an await', () => {
    const r = run(['--expose-gc', child('host_pool_gc_child.mjs')]) as { results: Record<string, true | string> };
    for (const [name, result] of Object.entries(r.results)) expect(result, name).toBe(true);
    expect(Object.keys(r.results).length).toBe(6);
  });

  it('RLHF_KERNELS_HOST_POOL=0 turns it off', () => {
    const entry = new URL('../dist/lib/index.js', import.meta.url).href;
    const code = `const rk = await import(${JSON.stringify(entry)});
      const { addon } = await import(${JSON.stringify(new URL('../dist/lib/addon.js', import.meta.url).href)});
      const t = rk.whiten(new Float32Array(1 << 20).fill(1));
      console.log(JSON.stringify({ pool: addon().hostPool(), ok: t.toArray()[0] === 0 }));`;
    const r = run(['--input-type=module', '-e', code], { RLHF_KERNELS_HOST_POOL: '0' }) as { pool: object; ok: boolean };
    expect(r).toMatchObject({ pool: { limit: 0, inUse: 0 }, ok: true });
  });

  // Huge-page blocks are carved 2 MiB aligned out of a larger mapping: sizes
  // on both sides of the 4 MiB threshold and odd sizes must keep every byte
  // and recycle as any block does, with the advice on and off.
  it.each([['on', {}], ['off', { RLHF_KERNELS_HUGE_PAGES: '0' }]])('blocks across the huge-page threshold (advice %s)', (mode, env) => {
    const entry = new URL('../dist/lib/index.js', import.meta.url).href;
    const code = `const rk = await import(${JSON.stringify(entry)});
      const { addon } = await import(${JSON.stringify(new URL('../dist/lib/addon.js', import.meta.url).href)});
      const bad = [];
      for (const n of [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 12345, 9 * (1 << 20) + 7]) {
        for (let round = 0; round < 2; round++) {
          const data = new Float32Array(n);
          for (let i = 0; i < n; i++) data[i] = ((i * 2654435761) % 1000003) / 1000003 + round;
          const x = rk.tensor(data);
          const back = x.toArray();
          let same = back.length === n;
          for (let i = 0; same && i < n; i += 1) same = back[i] === data[i];
          const w = rk.whiten(x).toArray();
          let mean = 0;
          for (let i = 0; i < n; i++) mean += w[i];
          if (!same || !(Math.abs(mean / n) < 1e-4) || w[n - 1] !== w[n - 1]) bad.push([n, round]);
          x.dispose();
        }
      }
      console.log(JSON.stringify({ hugeFrom: addon().hostPool().hugeFrom, bad }));`;
    const r = run(['--input-type=module', '-e', code], env) as { hugeFrom: number; bad: unknown[] };
    expect(r.bad).toEqual([]);
    expect(r.hugeFrom).toBe(mode === 'on' && process.platform === 'linux' ? 4 << 20 : 0); // MADV_HUGEPAGE is Linux's
  });

  it('memory() reports its idle blocks as cpu pooled; hostPoolTrim() releases them', () => {
    const x = tensor(new Float32Array(1 << 20).fill(2));
    const before = addon().hostPool();
    expect(before.limit).toBeGreaterThan(0);
    const out = whiten(x);
    expect(addon().hostPool().inUse).toBeGreaterThanOrEqual(before.inUse + 4 * (1 << 20));
    out.dispose(); // never handed out: back at once, once the stream ran it
    addon().synchronize(-1);
    expect(memory()[0]!.pooled).toBe(addon().hostPool().idle);
    expect(addon().hostPool().idle).toBeGreaterThanOrEqual(4 * (1 << 20));
    addon().hostPoolTrim();
    expect(memory()[0]!.pooled).toBe(0);
  });
});
