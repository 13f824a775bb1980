/**
 * reshape, slice and concat on cuda: the same elements as on cpu, in stream
 * order, and shared device storage freed at its last holder's dispose().
 * node:test + node:assert only; skips without cuda.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { concat, gae, memory, synchronize, tensor, tokenLogProbs, tokenLogProbsBackward } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { collectGarbage, skip } from './common.js';

const GPU = 'cuda:0';
const rng = new Rng();

function gpuInUse(): number {
  return memory().find((m) => m.device === GPU)!.inUse;
}

/**
 * Collects what earlier tests dropped and lets its finalizers free it, so
 * that a count of device bytes taken after it moves only with this test's
 * tensors. (On an H200 a finalizer of an earlier test's tensor ran during an
 * await and took 146596 bytes off such a count.)
 */
async function settle(): Promise<void> {
  collectGarbage();
  await new Promise((done) => setTimeout(done, 5));  // finalizers run as a task after the collection
  await synchronize(GPU);
}

describe('tensor layout on cuda', { skip }, () => {
  it('slice and concat give the rows cpu gives, for every dtype and odd row sizes', async () => {
    for (const [B, T] of [[37, 11], [5, 1], [3, 1025]] as const) {
      const data = rng.normals(B * T);
      const ints = Int32Array.from({ length: B * T }, () => rng.int(-1e6, 1e6));
      const bytes = Uint8Array.from({ length: B * T }, () => rng.int(0, 256));
      for (const [d, dtype] of [[data, 'float32'], [data, 'bfloat16'], [ints, 'int32'], [bytes, 'uint8']] as const) {
        const host = tensor(d, [B, T], { dtype });
        const dev = host.to(GPU);
        const cuts = [0, 8, 16, 24, 32, B].filter((c) => c <= B);
        const parts = cuts.slice(1).map((hi, k) => dev.slice(cuts[k]!, hi));
        for (const [k, p] of parts.entries())
          assert.deepEqual(await p.read(), host.slice(cuts[k]!, cuts[k + 1]).toArray(), `${dtype} [${B}, ${T}] part ${k}`);
        assert.deepEqual(await concat(parts).read(), host.toArray(), `${dtype} [${B}, ${T}] concat`);
        assert.deepEqual(await dev.slice(-2).read(), host.slice(-2).toArray());
      }
    }
  });

  it('slice copies in stream order: after gae, before an in-place backward', async () => {
    const B = 8, T = 129;
    const rewards = tensor(rng.normals(B * T), [B, T], { device: GPU });
    const values = tensor(rng.normals(B * T), [B, T], { device: GPU });
    const { advantages } = gae(rewards, values, { gamma: 0.99, lambda: 0.95 });
    const part = advantages.slice(2, 5);
    const all = await advantages.read();
    assert.deepEqual(await part.read(), all.slice(2 * T, 5 * T));

    const V = 33;
    const logits = tensor(rng.normals(B * V), [B, V], { device: GPU });
    const before = await logits.read();
    const targets = tensor(Int32Array.from({ length: B }, () => rng.int(0, V)), [B], { device: GPU });
    const { lse } = tokenLogProbs(logits, targets);
    const kept = logits.slice(0);
    const flat = logits.reshape([-1]);
    tokenLogProbsBackward(logits, targets, { lse, gradLogprobs: tensor(rng.normals(B), [B], { device: GPU }) }, { inPlace: true });
    assert.deepEqual(await kept.read(), before);
    const after = await logits.read();
    assert.notDeepEqual(after, before);
    assert.deepEqual(await flat.read(), after, 'the reshaped view sees the in-place write');
  });

  it('reshape shares device memory and frees it at the last dispose', async () => {
    await settle();
    const base = gpuInUse();
    const t = tensor(rng.normals(1 << 16), [256, 256], { device: GPU });
    const bytes = gpuInUse() - base;
    assert.ok(bytes >= 4 << 16);
    const views = [t.reshape([-1]), t.reshape([16, 64, 64])];
    const nested = views[0]!.reshape([4, -1]);
    assert.equal(gpuInUse() - base, bytes, 'no copy');
    const expected = await t.read();
    t.dispose();
    views[1]!.dispose();
    assert.equal(gpuInUse() - base, bytes, 'still held');
    assert.deepEqual(await nested.read(), expected);
    views[0]!.dispose();
    nested.dispose();
    nested.dispose();  // idempotent: not a second release
    await synchronize(GPU);
    assert.equal(gpuInUse(), base);
  });

  it('frees shared device memory at the last holder\'s dispose() or collection, views dropped without dispose() included', async () => {
    await settle();  // what earlier tests left to the collector goes first
    const base = gpuInUse();
    // A view dropped and collected: the base's dispose() then frees at once (no collection needed).
    const t = tensor(rng.normals(1 << 16), [256, 256], { device: GPU });
    (() => void t.reshape([-1]))();
    await settle();
    assert.ok(gpuInUse() > base, 'the base still holds it');
    t.dispose();
    await synchronize(GPU);
    assert.equal(gpuInUse(), base, 'freed at the base\'s dispose()');
    // Base and view both dropped: freed by the collector.
    (() => void tensor(rng.normals(1 << 16), [256, 256], { device: GPU }).reshape([-1]))();
    assert.ok(gpuInUse() > base);
    for (let k = 0; k < 20 && gpuInUse() > base; k++) await settle();
    assert.equal(gpuInUse(), base, 'both collected');
  });

  it('concat refuses tensors on different devices', () => {
    const a = tensor([1, 2], [2], { device: GPU });
    assert.throws(() => concat([a, tensor([3], [1])]), { name: 'RangeError', message: 'concat: tensors[1] expected to be on cuda:0 like tensors[0], got cpu' });
  });
});
