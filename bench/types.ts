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
}

export interface BenchSuite {
  /** Op family, e.g. 'token_logprobs'. */
  family: string;
  /** The cases for a size on the devices asked for (skip cuda cases when `devices` lacks cuda). */
  cases(size: BenchSize, devices: Device[]): BenchCase[];
}
