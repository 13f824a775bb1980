/**
 * The contract between benchmark suites (bench/<family>.bench.ts) and the
 * runner (bench/run.ts). A suite lists cases; a case is one op, direction and
 * shape, with every provider that can compute it timed side by side.
 */
import type { Device } from '../lib/index.js';

/** Sizes from bench/shapes.ts: 'small' is the default of `npm start` (about a minute on 2 cores). */
export type BenchSize = 'small' | 'medium' | 'large';

export interface Prepared {
  /**
   * One timed iteration. It must include whatever makes the result complete
   * (for our ops: a synchronize of the device), so that wall time is honest.
   */
  run: () => unknown | Promise<unknown>;
  /** Frees what prepare() made. */
  dispose?: () => void | Promise<void>;
}

export interface BenchProvider {
  /** e.g. 'rlhf-kernels', 'ts-loop', 'tfjs-wasm', 'onnxruntime', 'torch-eager'. */
  name: string;
  /** Where it computes. */
  device: Device;
  /** True for this library's own kernels (the rows others are compared to). */
  ours?: boolean;
  /**
   * Builds inputs and returns the iteration, or a string saying why this
   * provider cannot run here (the runner prints it and goes on).
   */
  prepare(): Promise<Prepared | string>;
}

export interface BenchCase {
  /** The public op name, e.g. 'tokenLogProbs'. */
  op: string;
  direction: 'forward' | 'backward' | 'forward+backward';
  /** Human-readable shape, e.g. 'N=4096 V=151936 bf16'. */
  shape: string;
  /** Elements processed per iteration (for elements/s): N*V for log-probs, B*T for GAE. */
  elements: number;
  /** The fewest bytes one iteration must move: each input read once, each output written once. */
  bytes: number;
  providers: BenchProvider[];
  /**
   * Time budget per provider in ms (tinybench `time`); default by size:
   * small 300, medium 800, large 1000. Each provider runs at least 3 timed
   * iterations whatever the budget.
   */
  time?: number;
}

export interface BenchSuite {
  /** Op family, e.g. 'token_logprobs'. */
  family: string;
  /** The cases for a size on the devices asked for (skip cuda cases when `devices` lacks cuda). */
  cases(size: BenchSize, devices: Device[]): BenchCase[];
}

// ---------------------------------------------------------------- results
// What the runner reports (`bench --json`, bench/results/bench.csv, and the
// GPU summary read these).

/** Which provider of which case a row is about. */
export interface BenchRowKey {
  family: string;
  op: string;
  direction: BenchCase['direction'];
  shape: string;
  provider: string;
  device: Device;
  ours: boolean;
}

/** One provider of one case, timed. */
export interface BenchResult extends BenchRowKey {
  elements: number;
  bytes: number;
  medianMs: number;
  p20Ms: number;
  p80Ms: number;
  samples: number;
  /** elements / median, in 1e9 per second. */
  gelemPerS: number;
  /** bytes (the case's minimal bytes) / median, in 1e9 bytes per second. */
  gbPerS: number;
  /** gbPerS over the calibrated bandwidth of `device` in this run; null when not calibrated. */
  bandwidthFraction: number | null;
  /** Rows of ours: peer median / our median, for each peer of the case that ran. */
  speedup: Record<string, number>;
}

/** A provider that did not run, and why (one line). */
export interface BenchSkip extends BenchRowKey {
  reason: string;
  /** true when it threw (a bug to look at), false when it said it cannot run here. */
  failed: boolean;
}

/** The calibration pass of one device. */
export interface BenchCalibration {
  device: Device;
  method?: 'read' | 'copy';
  bytes?: number;
  gbPerS?: number;
  /** Why there is no figure. */
  error?: string;
}

/** The document `bench --json` prints. */
export interface BenchReport {
  tool: 'rlhf-kernels bench';
  version: string;
  date: string;
  commit: string | null;
  size: BenchSize;
  devices: Device[];
  machine: { cpu: string; gpus: string[] };
  threads: number;
  isa: string;
  calibration: BenchCalibration[];
  results: BenchResult[];
  skipped: BenchSkip[];
  /** Suites that failed to load or list their cases, devices asked for that are unavailable. */
  problems: string[];
}
