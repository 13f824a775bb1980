// Child process of host_pool.test.ts, run with --expose-gc: how blocks of the
// host pool come back (garbage collection, dispose, worker teardown) and
// that none comes back while queued cpu work may still write into it.
// Prints JSON { results: { name: true | message } }.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import * as rk from '../dist/lib/index.js';
import { addon } from '../dist/lib/addon.js';
import { Tensor } from '../dist/lib/tensor.js';

const native = addon();
const pool = () => native.hostPool();
const results = {};
async function test(name, body) {
  try {
    await body();
    results[name] = true;
  } catch (e) {
    results[name] = e.stack ?? String(e);
  }
}
function assert(ok, what) {
  if (!ok) throw new Error(what);
}
/** Collects garbage, then lets Node run the finalizers it queued (in an immediate). */
async function collect() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await nextTurn();
  }
}

const B = 64, T = 4096, bytes = 4 * B * T; // 1 MiB outputs: pooled
const rewards = rk.tensor(Float32Array.from({ length: B * T }, (_, i) => Math.sin(i)), [B, T]);
const values = rk.tensor(Float32Array.from({ length: B * T }, (_, i) => Math.cos(i)), [B, T]);
const opts = { gamma: 0.99, lambda: 0.95 };
const POISON = 0xffffffff;
const poisoned = (a) => new Uint32Array(a.buffer, a.byteOffset, a.length).some((w) => w === POISON);

// Not inline in an async function: its suspended frame would keep its last
// values reachable.
function poisonOutputs(times) {
  for (let i = 0; i < times; i++) {
    const { advantages, returns } = rk.gae(rewards, values, opts);
    for (const t of [advantages, returns]) new Uint32Array(t.toArray().buffer).fill(POISON); // exposed: only GC frees
  }
}

await test('collected outputs come back, and reused memory is fully rewritten', async () => {
  const expected = rk.gae(rewards, values, opts).advantages.toArray().slice();
  await collect();
  const before = pool().inUse;
  poisonOutputs(4);
  assert(pool().inUse === before + 8 * bytes, `inUse ${pool().inUse}, expected ${before + 8 * bytes}`);
  await collect();
  assert(pool().inUse === before && pool().idle >= 8 * bytes, `inUse ${pool().inUse} (${before} before), idle ${pool().idle}`);
  const probe = Tensor.empty([B, T], 'float32', 'cpu'); // a recycled block: old data, not zeros
  assert(poisoned(probe.toArray()), 'a recycled block was zeroed or not reused');
  for (let i = 0; i < 4; i++) {
    const { advantages, returns } = rk.gae(rewards, values, opts);
    const a = advantages.toArray();
    assert(!poisoned(a) && !poisoned(returns.toArray()), 'an output kept recycled data');
    assert(a.every((v, j) => Object.is(v, expected[j])), 'outputs on recycled memory differ');
  }
});

await test('dispose() gives back unexposed storage at once, after the queued work', async () => {
  await rk.synchronize('cpu');
  await collect();
  const out = rk.gae(rewards, values, opts);
  // Queued work keeps the stream busy, so the blocks must wait for it.
  const logits = rk.tensor(new Float32Array(64 * 100000).fill(0.5), [64, 100000]);
  const targets = rk.tensor(new Int32Array(64), [64]);
  const lse = rk.tensor(new Float32Array(64).fill(12), [64]);
  const g = rk.tensor(new Float32Array(64).fill(1), [64]);
  const grads = [];
  for (let i = 0; i < 8; i++) grads.push(rk.tokenLogProbsBackward(logits, targets, { lse, gradLogprobs: g }));
  const held = pool().inUse;
  out.advantages.dispose();
  out.returns.dispose();
  assert(pool().inUse === held, 'the blocks came back before the work queued before them ran');
  assert(out.advantages.disposed && out.returns.disposed, 'unreachable');
  await rk.synchronize('cpu');
  assert(pool().inUse === held - 2 * bytes, `after the queue: inUse ${pool().inUse}, expected ${held - 2 * bytes}`);
  for (const t of grads) t.dispose();
});

await test('dispose() keeps views from toArray() valid', async () => {
  const out = rk.gae(rewards, values, opts);
  const view = out.advantages.toArray();
  const copy = view.slice();
  out.advantages.dispose();
  await collect();
  assert(view.length === B * T && view.every((v, j) => Object.is(v, copy[j])), 'a view changed after dispose()');
});

/** Runs `op` `times`, keeping weak references to its outputs' buffers only. */
function queueDropped(times, op) {
  const refs = [];
  for (let i = 0; i < times; i++) refs.push(new WeakRef(op()._host.buffer));
  return refs;
}

await test('queued work keeps its collected outputs out of the pool', async () => {
  await rk.synchronize('cpu');
  const logits = rk.tensor(new Float32Array(64 * 100000).fill(0.5), [64, 100000]);
  const targets = rk.tensor(new Int32Array(64), [64]);
  const lse = rk.tensor(new Float32Array(64).fill(12), [64]);
  const g = rk.tensor(new Float32Array(64).fill(1), [64]);
  await rk.synchronize('cpu');
  const inUse = pool().inUse;
  const last = native.completed() + 16; // the ticket of the last op below
  const buffers = queueDropped(16, () => rk.tokenLogProbsBackward(logits, targets, { lse, gradLogprobs: g }));
  globalThis.gc();
  await nextTurn();
  globalThis.gc();
  const done = native.completed();
  assert(done < last, 'the queue ran out before the check: make the work longer');
  // lib/stream.ts's keep-alive list holds the views of work not yet run (the i-th op
  // has ticket last - 15 + i); a block whose buffer was collected would
  // still go back only after the work queued before.
  buffers.forEach((b, i) => assert(last - 15 + i <= done || b.deref() !== undefined, `the output of queued op ${i} was collected`));
  assert(pool().inUse >= inUse + 16 * 4 * 64 * 100000, 'a block came back while queued work may write it');
  await rk.synchronize('cpu');
  await collect();
  assert(pool().inUse <= inUse, `after the queue: inUse ${pool().inUse}, expected <= ${inUse}`);
});

await test('a worker that exits with live, queued and collected tensors gives every block back', async () => {
  await collect();
  const inUse = pool().inUse;
  const entry = new URL('../dist/lib/index.js', import.meta.url).href;
  const w = new Worker(
    `const rk = await import(${JSON.stringify(entry)});
     const x = rk.tensor(new Float32Array(1 << 20).fill(1), [256, 4096]);
     globalThis.keep = [];
     for (let i = 0; i < 20; i++) keep.push(rk.gae(x, x, { gamma: 0.9, lambda: 0.9 }));
     for (let i = 0; i < 20; i++) rk.whiten(x);
     keep[0].advantages.dispose();
     process.exit(0);`,
    { eval: true },
  );
  await new Promise((resolve) => w.once('exit', resolve));
  await rk.synchronize('cpu');
  await collect();
  assert(pool().inUse === inUse, `inUse ${pool().inUse} after the worker, ${inUse} before`);
  const t = rk.gae(rewards, values, opts); // the blocks are usable again
  assert(!poisoned(t.returns.toArray()), 'unreachable');
});

// Small outputs are JS-allocated: only the keep-alive list holds those of
// dropped results while their work is queued. Weak references to them.
function queueSmallDropped(times) {
  const lp = rk.tensor(new Float32Array(4 * 1024).fill(-1), [4, 1024]);
  const adv = rk.tensor(new Float32Array(4 * 1024).fill(1), [4, 1024]);
  const refs = [];
  for (let i = 0; i < times; i++) refs.push(new WeakRef(rk.ppoPolicyLoss(lp, lp, adv).gradLogprobs._host));
  return refs;
}

await test('work queued while synchronize() waits keeps its storage after it settles', async () => {
  const N = 256, V = 32000; // about a millisecond a call
  const logits = rk.tensor(new Float32Array(N * V).fill(0.5), [N, V]);
  const targets = rk.tensor(new Int32Array(N), [N]);
  rk.synchronizeSync('cpu');
  const before = native.completed(); // every op takes at least one ticket after this
  for (let i = 0; i < 20; i++) rk.tokenLogProbs(logits, targets);
  const waiting = rk.synchronize('cpu'); // waits for those 20
  for (let i = 0; i < 400; i++) rk.tokenLogProbs(logits, targets); // queued after: still running when it settles
  const refs = queueSmallDropped(50);
  await waiting;
  await collect();
  const done = native.completed();
  const lost = refs.filter((r) => r.deref() === undefined).length;
  // Storage may go only once its op ran: the small ops come after ticket before + 420.
  assert(lost === 0 || done > before + 420, `${lost} of 50 outputs collected while their work was queued (${done - before} of 470+ ops done)`);
  await rk.synchronize('cpu');
});

console.log(JSON.stringify({ results, pool: pool() }));
