// Child process of runtime.test.ts. Queues about 10 ms of cpu work, awaits
// synchronize('cpu') and reports whether everything queued had run by then
// (the stream's completed ticket does not move on a blocking synchronize
// after it). The parent runs it with RLHF_KERNELS_SPIN_US=100000, where the
// wait settles on the calling thread (the work ends within the budget), and
// with 0, where it goes to libuv's pool at once. Prints JSON
// { drained, logprob }.
import { addon } from '../dist/lib/addon.js';
import * as rk from '../dist/lib/index.js';

const N = 2048, V = 32000;
const logits = rk.tensor(new Float32Array(N * V).fill(0.5), [N, V]);
const targets = rk.tensor(new Int32Array(N), [N]);
rk.tokenLogProbs(logits, targets).logprobs.toArray(); // warm-up
const outs = [rk.tokenLogProbs(logits, targets), rk.tokenLogProbs(logits, targets)];
await rk.synchronize('cpu');
const seen = addon().completed();
rk.synchronizeSync('cpu');
console.log(JSON.stringify({ drained: seen === addon().completed(), logprob: outs[1].logprobs.toArray()[N - 1] }));
