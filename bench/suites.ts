/**
 * Suite discovery: every `<family>.bench.js` beside the runner (dist/bench/,
 * or `.bench.ts` when the sources run directly) that exports
 * `suite: BenchSuite`. Op families add a file; nobody edits a registry.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchSuite } from './types.js';

const here = fileURLToPath(import.meta.url);

/** The folder the runner looks in, and the extension its suites have there. */
export const SUITES_DIR = dirname(here);
const EXT = extname(here);

function isSuite(value: unknown): value is BenchSuite {
  const s = value as BenchSuite | undefined;
  return typeof s === 'object' && s !== null && typeof s.family === 'string' && typeof s.cases === 'function';
}

/** The suites found in `dir`, by file name; a file that fails to load is a problem line, not a crash. */
export async function loadSuites(dir = SUITES_DIR): Promise<{ suites: BenchSuite[]; problems: string[] }> {
  const suffix = `.bench${EXT}`;
  const files = readdirSync(dir).filter((f) => f.endsWith(suffix)).sort();
  const suites: BenchSuite[] = [];
  const problems: string[] = [];
  for (const file of files) {
    try {
      const mod = (await import(pathToFileURL(join(dir, file)).href)) as { suite?: unknown };
      if (isSuite(mod.suite)) suites.push(mod.suite);
      else problems.push(`${basename(file)}: exports no \`suite: BenchSuite\` (bench/types.ts)`);
    } catch (e) {
      problems.push(`${basename(file)}: failed to load: ${firstLine(e)}`);
    }
  }
  return { suites, problems };
}

export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0]!.trim();
}
