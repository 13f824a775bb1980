import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TorchReport, readJson, summarize } from '../bench/gpu/summary.js';
import type { BenchReport, BenchResult } from '../bench/types.js';

const ours = (op: string, shape: string, medianMs: number, gbPerS: number): BenchResult => ({
  family: 'f', op, direction: 'forward', shape, provider: 'rlhf-kernels', device: 'cuda:0', ours: true, elements: 1, bytes: 1,
  medianMs, p20Ms: medianMs, p80Ms: medianMs, samples: 9, gelemPerS: 1, gbPerS, bandwidthFraction: null, speedup: {},
});

const bench: BenchReport = {
  tool: 'rlhf-kernels bench', version: '0.1.0', date: 'today', commit: 'abc', size: 'large', devices: ['cuda:0'],
  machine: { cpu: 'cpu', gpus: ['NVIDIA H100'] }, threads: 16, isa: 'avx512',
  calibration: [{ device: 'cuda:0', method: 'copy', bytes: 1, gbPerS: 3000 }],
  results: [ours('tokenLogProbs', 'N=1 V=2', 2, 2400), ours('gae', 'B=1 T=2', 0.05, 30)],
  skipped: [{ family: 'f', op: 'gae', direction: 'forward', shape: 'B=1 T=2', provider: 'ts-loop', device: 'cpu', ours: false, reason: 'too slow', failed: false }],
  problems: [],
};

const torch: TorchReport = {
  torch: '2.11', device: 'NVIDIA H100', calibration: { gbPerS: 2900 },
  results: [
    { op: 'tokenLogProbs', direction: 'forward', shape: 'N=1 V=2', provider: 'torch-eager', medianMs: 6, gbPerS: 800 },
    { op: 'tokenLogProbs', direction: 'forward', shape: 'N=1 V=2', provider: 'torch-compile', medianMs: 3, gbPerS: 1600, compileS: 12 },
    { op: 'whiten', direction: 'forward', shape: 'B=1 T=2', provider: 'torch-eager', medianMs: 1, gbPerS: 1500 },
  ],
  skipped: [{ op: 'gae', direction: 'forward', shape: 'B=1 T=2', provider: 'torch-compile', reason: 'not attempted' }],
};

describe('GPU summary', () => {
  it('puts our cuda rows beside torch eager and torch.compile, with the fraction of HBM', () => {
    const { markdown, main } = summarize(bench, torch);
    expect(main).toContain('| tokenLogProbs | forward | N=1 V=2 | 2.00 ms | 6.00 ms | 3.00 ms | 2400 | 80% | 3.0× | 1.5× |');
    expect(main).toContain('| gae | forward | B=1 T=2 | 50.0 µs | - | - | 30.0 | 1% | - | - |');
    expect(main).toContain('rlhf-kernels 3000 GB/s, torch 2900 GB/s');
    expect(markdown).toContain('| whiten | forward | B=1 T=2 | 1.00 ms | - | - | 50% |');
    expect(markdown).toContain('- ts-loop (cpu) gae forward B=1 T=2: too slow');
    expect(markdown).toContain('- torch-compile gae forward B=1 T=2: not attempted');
  });

  it('shows what is there when an input is missing or broken', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rk-sum-'));
    writeFileSync(join(dir, 'empty.json'), '');
    const broken = readJson<BenchReport>(join(dir, 'empty.json'));
    expect(broken).toMatch(/empty\.json: Unexpected end of JSON input/);
    const { markdown } = summarize(broken, torch);
    expect(markdown).toContain('- rlhf-kernels bench: none (');
    expect(markdown).toContain('(no cuda rows of ours)');
    expect(markdown).toContain('| tokenLogProbs | forward | N=1 V=2 | 6.00 ms | 3.00 ms | 12 | 55% |');
    expect(summarize(bench, 'no file given').markdown).toContain('- torch peers: none (no file given)');
  });
});
