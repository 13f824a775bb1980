// The addon is context-aware: worker threads load it and compute at once,
// each with its own cpu stream, sharing the process's thread pool.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

const entry = new URL('../dist/lib/index.js', import.meta.url).href;

// Each worker computes with the addon and posts what it got.
const source = `
  import { parentPort, workerData } from 'node:worker_threads';
  const rk = await import(${JSON.stringify(entry)});
  const n = 1 << 16;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i % 97) * workerData.scale;
  let sum = 0;
  for (let round = 0; round < 20; round++) {
    const t = rk.tensor(data, [256, 256]);
    const back = await t.read();
    sum += back[n - 1];
    t.dispose();
  }
  await rk.synchronize();
  parentPort.postMessage({ sum, isa: rk.info().cpu.isa });
`;

describe('worker_threads', () => {
  it('two workers load the addon and compute at once', async () => {
    void fileURLToPath; // the entry must be built: npm test runs tsc first (pretest)
    const workers = [1, 2].map((scale) => new Worker(source, { eval: true, workerData: { scale } }));
    const results = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0] as { sum: number; isa: string }));
    await Promise.all(workers.map((w) => w.terminate()));
    const last = ((1 << 16) - 1) % 97;
    expect(results[0]!.sum).toBe(20 * last * 1);
    expect(results[1]!.sum).toBe(20 * last * 2);
    expect(results[0]!.isa).toBe(results[1]!.isa);
  });

  // Node unloads an addon when the last worker that loaded it exits; the
  // process-wide thread pool's threads run the addon's code for the life of
  // the process, so it is linked -z nodelete. Without that, they crashed in
  // unmapped code about 1 run in 8 of this file.
  it.runIf(process.platform === 'linux')('keeps the addon mapped after the last worker that loaded it exits', async () => {
    const w = new Worker(
      `const rk = await import(${JSON.stringify(entry)});
       await rk.tensor(new Float32Array(1 << 16)).read();`,
      { eval: true },
    );
    await once(w, 'exit');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync('/proc/self/maps', 'utf8')).toContain('rlhf_kernels');
  });

  it('a worker that exits with work queued does not crash the process', async () => {
    const w = new Worker(
      `const rk = await import(${JSON.stringify(entry)});
       for (let i = 0; i < 50; i++) rk.tensor(new Float32Array(1 << 16)).read();
       process.exit(0);`,
      { eval: true },
    );
    const [code] = await once(w, 'exit');
    expect(code).toBe(0);
  });
});
