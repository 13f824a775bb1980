/**
 * Waiting for the cuda stream: read() and synchronize('cuda') batched into
 * one native wait per device (lib/stream.ts waitCuda), so a trainer's
 * `Promise.all` of statistics holds one thread of libuv's pool, not one each.
 * node:test + node:assert only; skips without cuda.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { addon } from '../../lib/addon.js';
import { info, memory, synchronize, tensor, tokenLogProbs, tokenLogProbsBackward } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { collectGarbage, skip } from './common.js';

const GPU = 'cuda:0';


/**
 * Records the native batches (their sizes) and the most running at once,
 * while `body` runs; with `holdMs`, each native wait settles that much later
 * (as on a busy stream, also where the emulator has run every launch already).
 */
async function watchBatches(body: () => Promise<void>, holdMs = 0): Promise<{ sizes: number[]; mostAtOnce: number }> {
  const native = addon();
  const original = native.copyToHostManyAsync;
  const sizes: number[] = [];
  let running = 0, mostAtOnce = 0;
  native.copyToHostManyAsync = (device: number, srcs: number[], dsts: ArrayBufferView[]) => {
    sizes.push(srcs.length);
    mostAtOnce = Math.max(mostAtOnce, ++running);
    const held = original.call(native, device, srcs, dsts).then(
      (v) => new Promise<void>((done) => setTimeout(() => done(v), holdMs)),
      (e: unknown) => new Promise<void>((_, fail) => setTimeout(() => fail(e), holdMs)));
    return held.finally(() => running--);
  };
  try {
    await body();
  } finally {
    native.copyToHostManyAsync = original;
  }
  return { sizes, mostAtOnce };
}

function gpuInUse(): number {
  return memory().find((m) => m.device === GPU)!.inUse;
}

describe('cuda waits', { skip }, () => {
  it('batch the reads and synchronize() calls of one run: each read gets its own data, snapshots freed', async () => {
    const rng = new Rng();
    // Small (copied on the calling thread when the stream is done) and over 1 MiB (always on the pool).
    const data = [1, 7, 33, 1025, 300_000, 5].map((n) => rng.normals(n));
    const ts = data.map((d) => tensor(d, undefined, { device: GPU }));
    await synchronize(GPU);
    const before = gpuInUse();
    let reads: Float32Array[] = [];
    const seen = await watchBatches(async () => {
      const first = Promise.all([...ts.map((t) => t.read()), synchronize(GPU)]);
      reads = (await first).slice(0, ts.length) as Float32Array[];
      // Calls made once the first batch has begun form the next.
      await Promise.all([ts[0]!.read(), ts[1]!.read()]);
    });
    assert.deepEqual(seen.sizes, [ts.length, 2]);
    for (let k = 0; k < ts.length; k++) assert.deepEqual(reads[k], data[k], `read ${k}`);
    assert.equal(gpuInUse(), before, 'the snapshots went back to the pool');
  });

  it('hold one native wait per device while the stream is busy; fs keeps its pool threads', async () => {
    // The emulator runs each launch to completion at the call: a smaller stand-in there.
    const emulated = /emulator/.test(info().cuda.devices[0]?.name ?? '');
    const V = 32000, N = emulated ? 64 : 2048;
    const logits = tensor(new Float32Array(N * V).fill(0.5), [N, V], { device: GPU });
    const targets = tensor(new Int32Array(N), [N], { device: GPU });
    const small = tensor([1, 2, 3], undefined, { device: GPU });
    let statFirst = false;
    const seen = await watchBatches(async () => {
      // Several forward passes queued: on a GPU the stream is busy for milliseconds.
      for (let k = 0; k < 16; k++) {
        const r = tokenLogProbs(logits, targets);
        r.logprobs.dispose();
        r.lse.dispose();
      }
      const waits: Promise<unknown>[] = [];
      for (let k = 0; k < 16; k++) {
        waits.push(small.read());
        // Reads made while a batch waits join the next one (at most one more).
        await Promise.resolve();
      }
      let readsDone = false;
      const all = Promise.all(waits).then(() => (readsDone = true));
      await stat('.');
      statFirst = !readsDone;
      await all;
    }, 20);
    // The first read's wait, then every later one in the next: one running at a time.
    assert.equal(seen.mostAtOnce, 1, 'native waits at once');
    assert.deepEqual(seen.sizes, [1, 15]);
    console.log(`fs.stat settled ${statFirst ? 'before' : 'after'} the reads`);
  });

  it('read what the tensor held at the call, whatever is queued after it (an in-place backward)', async () => {
    const rng = new Rng();
    const N = 64, V = 1000;
    const x = rng.normals(N * V, 2);
    const logits = tensor(x, [N, V], { device: GPU });
    const targets = tensor(Int32Array.from({ length: N }, (_, i) => (i * 37) % V), [N], { device: GPU });
    const fwd = tokenLogProbs(logits, targets);
    const before = logits.read();
    tokenLogProbsBackward(logits, targets, { lse: fwd.lse, gradLogprobs: tensor(new Float32Array(N).fill(1), [N], { device: GPU }) }, { inPlace: true });
    const after = logits.read();
    assert.deepEqual(await before, x);
    const grad = await after;
    assert.notDeepEqual(grad, x);
    assert.ok(grad.every((g) => Math.abs(g) <= 1), 'the gradient of a log-prob: p - onehot, within [-1, 1]');
  });

  it('hold nothing per read: a tight loop of small reads keeps its heap and device memory', async () => {
    const t = tensor([1, 2, 3], undefined, { device: GPU });
    const spin = async (n: number) => {
      for (let i = 0; i < n; i++) await t.read();
    };
    // After a full collection: the JS heap's live bytes, and the device memory in use.
    const measure = () => {
      collectGarbage();
      return { heap: process.memoryUsage().heapUsed, device: gpuInUse() };
    };
    await spin(60_000); // the heap at its working size
    const before = measure();
    await spin(300_000);
    const after = measure();
    // A promise never settled keeps ~50 bytes a read on the heap (+14 MB here; runs
    // without a leak differ by under 1 MB); a snapshot not freed, 12 bytes of device memory.
    // (Memory outside the heap, e.g. the native part of a JS object per read that
    // waits for a finalizer, moves by up to 17 MB between clean runs: not checked.)
    const heap = after.heap - before.heap;
    assert.ok(heap < 4e6, `heap grew ${(heap / 1e6).toFixed(1)} MB over 300k reads`);
    assert.equal(after.device, before.device, 'device memory in use');
  });

  it('give a failure found on the device to the waits pending then, and not to later ones', async () => {
    const V = 100;
    const logits = tensor(new Float32Array(4 * V), [4, V], { device: GPU });
    const bad = tensor([1, V + 7, 2, 3], undefined, { dtype: 'int32', device: GPU });
    const out = tokenLogProbs(logits, bad);
    // synchronize() of every device starts its waits at once: it shares the cuda wait too
    const shared = [synchronize(), synchronize(GPU), out.logprobs.read(), out.lse.read()];
    for (const p of shared) await assert.rejects(p, { name: 'RangeError', message: new RegExp(`targets\\[1\\] is ${V + 7}`) });
    await synchronize(GPU);
    assert.ok((await out.lse.read()).every(Number.isFinite));
  });

  it('leave a failure to the waits covering the failing op: a wait in flight before it was launched resolves', async () => {
    const V = 16, R = 512;
    const logits = tensor(new Float32Array(R * V), [R, V], { device: GPU });
    const ids = new Int32Array(R).fill(3);
    ids[7] = 99;
    const bad = tensor(ids, undefined, { device: GPU });
    const big = tensor(new Float32Array(16 << 20).fill(2), undefined, { device: GPU });  // 64 MiB: its read waits on libuv's pool
    for (let k = 0; k < 20; k++) {
      const early = big.read();
      await null;
      await null;  // its wait has begun
      const out = tokenLogProbs(logits, bad).logprobs;
      const [a, b, c] = await Promise.allSettled([early, out.read(), synchronize(GPU)]);
      assert.equal(a.status, 'fulfilled', `run ${k}: the earlier read took a later op's failure`);
      assert.equal(b.status, 'rejected', `run ${k}: the failing op's read resolved`);
      assert.equal(c.status, 'rejected', `run ${k}`);
      await synchronize(GPU);
      out.dispose();
    }
    big.dispose();
  });

  it('report a failure exactly once when a wait in flight takes the slot while a later op is being queued', async () => {
    // A read over 1 MiB waits on the pool; the op is queued while that wait
    // runs (after a random delay), so the wait's take of the error slot lands
    // before, during or after the op's launch. The report must reach the read
    // or the synchronize() after it, never both, never neither. (The slot was
    // once armed as the op took its address: a take in between read it clear,
    // disarmed it, and the report waited for another op: lost in about 1 run
    // in 4 here on the emulator.)
    const V = 64;
    const big = tensor(new Float32Array(400_000).fill(1), undefined, { device: GPU });
    const logits = tensor(new Float32Array(4 * V).fill(0.5), [4, V], { device: GPU });
    const bad = tensor([0, V + 7, 1, 2], undefined, { dtype: 'int32', device: GPU });
    await synchronize(GPU);
    const rng = new Rng();
    const failed = (p: Promise<unknown>) => p.then(() => false, (e: Error) => {
      assert.match(e.message, new RegExp(`targets\\[1\\] is ${V + 7}`));
      return true;
    });
    for (let run = 0; run < 200; run++) {
      const read = failed(big.read());
      await new Promise((done) => setImmediate(done));  // the native wait has begun
      const until = performance.now() + rng.uniform() * 0.3;
      while (performance.now() < until);
      const out = tokenLogProbs(logits, bad);
      const reports = Number(await read) + Number(await failed(synchronize(GPU)));
      assert.equal(reports, 1, `run ${run}: the report reached ${reports} waits`);
      out.logprobs.dispose();
      out.lse.dispose();
    }
    await synchronize(GPU);
  });
});
