/**
 * Times one prepared provider with tinybench and reduces its samples to the
 * figures the runner reports: median and the p20/p80 band.
 */
import { Bench } from 'tinybench';
import type { BenchSize, Prepared } from './types.js';

/** Time budget per provider (ms) when a case does not set one. */
export const DEFAULT_TIME: Record<BenchSize, number> = { small: 300, medium: 800, large: 1000 };

/** Timed iterations every provider gets, however slow. */
const MIN_ITERATIONS = 3;

export interface Timing {
  medianMs: number;
  p20Ms: number;
  p80Ms: number;
  samples: number;
}

/** The q-quantile of ascending samples, interpolating between order statistics. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/**
 * Runs `prepared.run` once untimed (first-call costs: compilation, lazy
 * allocation, caches), then lets tinybench sample it for about `timeMs`
 * (at least MIN_ITERATIONS times) after a short warm-up. A provider that
 * is slow compared with the budget skips tinybench's warm-up: the first
 * call warmed it up already, and its samples are what the budget pays for.
 */
export async function measure(prepared: Prepared, timeMs: number): Promise<Timing> {
  const start = performance.now();
  await prepared.run();
  const firstMs = performance.now() - start;
  const bench = new Bench({
    time: timeMs,
    iterations: MIN_ITERATIONS,
    warmup: firstMs < timeMs / 10,
    warmupTime: timeMs / 5,
    warmupIterations: 2,
    retainSamples: true,
    throws: true,
  });
  bench.add('run', prepared.run);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`tinybench ended in state '${result.state}'`);
  const sorted = [...(result.latency.samples ?? [])].sort((a, b) => a - b);
  return {
    medianMs: quantile(sorted, 0.5),
    p20Ms: quantile(sorted, 0.2),
    p80Ms: quantile(sorted, 0.8),
    samples: sorted.length,
  };
}
