// Child process of token_logprobs_edges.test.ts: runs the token log-prob ops
// through the addon directly, under the ISA that RLHF_KERNELS_ISA asks for
// (the ISA is chosen once per process). Usage: node this.cjs <addon> <dir>;
// reads <dir>/meta.json and the input files, writes <dir>/<case>.<output>.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [binary, dir] = process.argv.slice(2);
const addon = require(binary);
addon.init({
  KernelError: class KernelError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  },
});

function read(name, Type) {
  const b = fs.readFileSync(path.join(dir, name));
  return new Type(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
function write(name, array) {
  fs.writeFileSync(path.join(dir, name), Buffer.from(array.buffer, array.byteOffset, array.byteLength));
}

const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
for (const c of meta.cases) {
  const Logit = c.dtype === 0 ? Float32Array : Uint16Array;
  const logits = read(`${c.name}.logits`, Logit);
  const targets = read(`${c.name}.targets`, Int32Array);
  const gradLogprobs = read(`${c.name}.gradLogprobs`, Float32Array);
  const gradEntropy = read(`${c.name}.gradEntropy`, Float32Array);
  const logprobs = new Float32Array(c.rows), lse = new Float32Array(c.rows), entropy = new Float32Array(c.rows);
  const common = { device: -1, logits, targets, rows: c.rows, vocab: c.vocab, dtype: c.dtype, invTemperature: c.invTemperature, ignoreIndex: -100 };
  addon.tokenLogProbs({ ...common, logprobs, lse, entropy });
  addon.synchronize(-1);
  const gradLogits = new Logit(c.rows * c.vocab);
  addon.tokenLogProbsBackward({ ...common, lse, gradLogprobs, entropy, gradEntropy, gradLogits });
  addon.synchronize(-1);
  write(`${c.name}.logprobs`, logprobs);
  write(`${c.name}.lse`, lse);
  write(`${c.name}.entropy`, entropy);
  write(`${c.name}.gradLogits`, gradLogits);
}
process.stdout.write(JSON.stringify({ isa: addon.info().cpu.isa }));
