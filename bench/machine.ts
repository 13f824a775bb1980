/** Where a benchmark ran: machine names, the commit, and whether this is a source checkout. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, sep } from 'node:path';
import type { Info } from '../lib/index.js';

export function machineNames(info: Info): { cpu: string; gpus: string[] } {
  const model = cpus()[0]?.model.trim() || `${process.arch} CPU`;
  return { cpu: model, gpus: info.cuda.devices.map((d) => d.name) };
}

/** A git checkout of the sources (not a package installed under node_modules). */
export function isSourceCheckout(root: string | undefined): root is string {
  return root !== undefined && !root.split(sep).includes('node_modules') && existsSync(join(root, '.git'));
}

/** The commit checked out at `root`, or null outside a git checkout. */
export function gitCommit(root: string | undefined): string | null {
  if (root === undefined || !existsSync(join(root, '.git'))) return null;
  const r = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 5000 });
  return r.status === 0 ? r.stdout.trim() : null;
}
