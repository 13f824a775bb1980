/** The flags of `rlhf-kernels bench`. */
import type { BenchSize } from './types.js';

export const USAGE = `usage: rlhf-kernels bench [options]
  --op NAME[,NAME]    only these ops or op families (e.g. tokenLogProbs, ppo)
  --device D[,D]      cpu, cuda, cuda:N or all (default: every available backend)
  --size S            small (default, about a minute on 2 cores), medium or large
  --json              print one JSON document on stdout instead of the table
  --csv PATH          append one CSV row per result to PATH (default in a source
                      checkout: bench/results/bench.csv; elsewhere none)
  --budget SECONDS    start no new case after this many seconds (the rest is listed as skipped)
  --list-shapes       print the shapes of --size (JSON with --json) and exit`;

export interface BenchArgs {
  ops: string[];
  devices: string[];
  size: BenchSize;
  json: boolean;
  csv: string | undefined;
  budgetS: number;
  listShapes: boolean;
  help: boolean;
}

const SIZES: readonly BenchSize[] = ['small', 'medium', 'large'];

/** Parses the flags; returns a message naming the bad flag on error. */
export function parseArgs(argv: readonly string[]): BenchArgs | { error: string } {
  const out: BenchArgs = {
    ops: [], devices: [], size: 'small', json: false, csv: undefined, budgetS: Infinity, listShapes: false, help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = name !== arg ? arg.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    switch (name) {
      case '--json': out.json = true; break;
      case '--list-shapes': out.listShapes = true; break;
      case '-h': case '--help': out.help = true; break;
      case '--op': case '--device': case '--size': case '--csv': case '--budget': {
        const v = value();
        if (v === undefined || v === '' || v.startsWith('--')) return { error: `bench: ${name} expected a value, got ${v === undefined ? 'nothing' : JSON.stringify(v)}` };
        if (name === '--op') out.ops.push(...v.split(',').filter(Boolean));
        else if (name === '--device') out.devices.push(...v.split(',').filter(Boolean));
        else if (name === '--csv') out.csv = v;
        else if (name === '--size') {
          if (!SIZES.includes(v as BenchSize)) return { error: `bench: --size expected one of ${SIZES.join(', ')}, got ${JSON.stringify(v)}` };
          out.size = v as BenchSize;
        } else {
          const s = Number(v);
          if (!(s > 0)) return { error: `bench: --budget expected a positive number of seconds, got ${JSON.stringify(v)}` };
          out.budgetS = s;
        }
        break;
      }
      default:
        return { error: `bench: unknown option ${JSON.stringify(arg)}` };
    }
  }
  return out;
}
