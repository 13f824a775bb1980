import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  KernelError, concat, defaultDevice, gae, info, memory, setDefaultDevice, setNumThreads, synchronize, synchronizeSync, tensor,
  tokenLogProbs,
} from '../lib/index.js';
import { addon } from '../lib/addon.js';
import { runOp } from '../lib/stream.js';
import { HAS_CUDA } from './helpers/devices.js';

describe('info()', () => {
  it('names the backends, the CPU ISA and threads, and why cuda is off', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(i.backends[0]).toBe('cpu');
    expect(i.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(i.cpu.supportedIsas).toContain(i.cpu.isa);
    expect(i.binary).toMatch(/\.node$/);
    if (i.cuda.available) {
      expect(i.backends).toContain('cuda');
      expect(i.cuda.devices.length).toBeGreaterThan(0);
    } else {
      expect(i.backends).toEqual(['cpu']);
      expect(i.cuda.reason).toMatch(/built without CUDA|no NVIDIA driver|driver too old|no CUDA device|CUDA_VISIBLE_DEVICES|cannot run this binary/);
    }
  });
});

describe('devices', () => {
  it("defaults to 'cpu' and rejects malformed devices", () => {
    expect(defaultDevice()).toBe('cpu');
    expect(() => setDefaultDevice('tpu' as never)).toThrow(RangeError);
    expect(() => setDefaultDevice(0 as never)).toThrow(TypeError);
    setDefaultDevice('cpu');
    expect(defaultDevice()).toBe('cpu');
  });

  it.skipIf(HAS_CUDA)('asking for cuda without one throws KernelError ENODEVICE, never falls back', () => {
    for (const ask of [() => setDefaultDevice('cuda'), () => tensor([1], undefined, { device: 'cuda:0' })]) {
      try {
        ask();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(KernelError);
        expect((e as KernelError).code).toBe('ENODEVICE');
        expect((e as Error).message).toContain(info().cuda.reason!);
      }
    }
    expect(defaultDevice()).toBe('cpu');
  });

  it.runIf(HAS_CUDA)('cuda tensors round-trip through the device', async () => {
    const a = tensor([1, 2, 3], undefined, { device: 'cuda' });
    expect(a.device).toBe('cuda:0');
    expect(Array.from(a.toArray())).toEqual([1, 2, 3]);
    expect(Array.from(await a.read())).toEqual([1, 2, 3]);
    expect(Array.from(a.to('cpu').toArray())).toEqual([1, 2, 3]);
    expect(memory().some((m) => m.device === 'cuda:0' && m.inUse >= 12)).toBe(true);
    a.dispose();
  });
});

describe('synchronize and threads', () => {
  it('synchronize resolves and synchronizeSync returns', async () => {
    await synchronize();
    await synchronize('cpu');
    synchronizeSync('cpu');
    await expect(synchronize('gpu' as never)).rejects.toThrow(RangeError);
  });

  it.each([['on the calling thread', '100000'], ['on the pool', '0']])(
    'synchronize settles %s only once the queued work has run',
    (_, spinUs) => {
      const child = fileURLToPath(new URL('./sync_child.mjs', import.meta.url));
      const out = execFileSync(process.execPath, [child], { env: { ...process.env, RLHF_KERNELS_SPIN_US: spinUs }, encoding: 'utf8' });
      // Uniform logits: every log-prob is -ln(32000).
      expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ drained: true, logprob: Math.fround(-Math.log(32000)) });
    },
  );

  it('setNumThreads checks its argument and keeps working', () => {
    expect(() => setNumThreads(0)).toThrow(/setNumThreads: n expected an integer in \[1, 1024\], got 0/);
    expect(() => setNumThreads(1.5)).toThrow(RangeError);
    const n = info().cpu.threads;
    setNumThreads(1);
    expect(info().cpu.threads).toBe(1);
    setNumThreads(n);
    expect(info().cpu.threads).toBe(n);
  });

  it('KernelError claims only its own instances and the RangeErrors a running kernel raised (code EBADINPUT)', () => {
    const found = Object.assign(new RangeError('x'), { code: 'EBADINPUT' });
    expect(found).toBeInstanceOf(KernelError);
    expect(new KernelError('x', 'EOOM')).toBeInstanceOf(KernelError);
    for (const other of [new RangeError('x'), Object.assign(new TypeError('x'), { code: 'EBADINPUT' }),
      Object.assign(new RangeError('x'), { code: 'EOOM' }), new Error('x'), { code: 'EBADINPUT' }, null, 'EBADINPUT'])
      expect(other instanceof KernelError).toBe(false);
    class Sub extends KernelError {}
    expect(found instanceof Sub).toBe(false);
    expect(new Sub('x', 'ECUDA')).toBeInstanceOf(KernelError);
  });

  it('reports a failure of queued work to the waits pending then, and not to later ones', async () => {
    const V = 32000, N = 2048;
    const busy = tensor(new Float32Array(N * V), [N, V]);
    const ids = new Int32Array(4);
    // copy: false lets the targets change after the call's check, as if another op wrote them.
    const targets = tensor(ids, [4], { copy: false });
    tokenLogProbs(busy, tensor(new Int32Array(N), [N]));
    const out = tokenLogProbs(tensor(new Float32Array(4 * V), [4, V]), targets);
    ids[1] = V + 7; // before the kernel runs: the busy op is ahead of it
    const shared = [synchronize('cpu'), out.logprobs.read()];
    for (const p of shared) {
      const e = await p.then(() => undefined, (err: unknown) => err);
      expect((e as Error).message).toBe(`tokenLogProbs: targets[1] is ${V + 7}, expected a token id in [0, ${V}) or ignoreIndex (-100)`);
      // Found while running: a RangeError (the op's contract) that is also a
      // KernelError (the stream's), code EBADINPUT.
      expect(e).toBeInstanceOf(RangeError);
      expect(e).toBeInstanceOf(KernelError);
      expect((e as KernelError).code).toBe('EBADINPUT');
    }
    await expect(synchronize('cpu')).resolves.toBeUndefined();
    await expect(out.lse.read()).resolves.toBeInstanceOf(Float32Array);
  });

  it('gives a failure to the waits covering the failing op only: one begun before it resolves, a read of its output rejects', async () => {
    const V = 32000, N = 2048;
    const busy = tensor(new Float32Array(N * V), [N, V]);
    const busyTargets = tensor(new Int32Array(N));
    const small = tensor(new Float32Array(4 * V), [4, V]);
    for (let k = 0; k < 10; k++) {
      tokenLogProbs(busy, busyTargets);
      const early = synchronize('cpu');  // begun now: covers the busy op, not the bad one below
      const bad = concat([tensor(new Int32Array([0, V + 7, 1, 2]))]);  // written by a queued copy: the kernel checks it
      const out = tokenLogProbs(small, bad);
      const late = out.logprobs.read();
      await expect(early).resolves.toBeUndefined();
      await expect(late).rejects.toThrow(`tokenLogProbs: targets[1] is ${V + 7}`);
      await expect(synchronize('cpu')).resolves.toBeUndefined();  // reported once
    }
  });

  it('bounds the cpu queue: with 256 ops queued, an op call waits until half have run', async () => {
    const B = 64, T = 1024;
    const x = tensor(Float32Array.from({ length: B * T }, (_, i) => Math.sin(i)), [B, T]);
    const outs = [tensor(new Float32Array(B * T), [B, T]), tensor(new Float32Array(B * T), [B, T])];
    const args = { rewards: x.toArray(), values: x.toArray(), advantages: outs[0]!.toArray(), returns: outs[1]!.toArray(),
      rows: B, steps: T, gamma: 0.99, lambda: 0.95 };
    await synchronize('cpu');
    let most = 0;
    for (let i = 0; i < 1500; i++) most = Math.max(most, runOp('gae', -1, args) - addon().completed());
    // The calls outran the stream (each op takes longer than its call), and never by more than the bound.
    expect(most).toBeGreaterThan(128);
    expect(most).toBeLessThanOrEqual(256);
    await synchronize('cpu');
    const again = gae(x, x, { gamma: 0.99, lambda: 0.95 });
    expect([...outs[0]!.toArray()]).toEqual([...again.advantages.toArray()]);
  });

  it('RLHF_KERNELS_NUM_THREADS: a whole integer in [1, 1024] sets the threads; anything else is named in info()', () => {
    const entry = new URL('../dist/lib/index.js', import.meta.url).href;
    const cpuInfo = (value: string) => {
      const code = `const { info } = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(info().cpu));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
        env: { ...process.env, RLHF_KERNELS_NUM_THREADS: value, RLHF_KERNELS_ISA: '' }, encoding: 'utf8',
      });
      return JSON.parse(out) as { threads: number; note?: string };
    };
    const three = cpuInfo('3');
    expect(three.threads).toBe(3);
    expect(three.note).toBeUndefined();
    const hardware = cpuInfo('').threads;
    for (const bad of ['0', '1025', 'abc', '2x', '1.5'])
      expect(cpuInfo(bad), bad).toEqual(expect.objectContaining({
        threads: hardware, note: `RLHF_KERNELS_NUM_THREADS=${bad} is not an integer in [1, 1024]; using the ${hardware} hardware threads`,
      }));
  });
});
