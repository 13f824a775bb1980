#!/usr/bin/env node
/**
 * rlhf-kernels command line:
 *   info                      backends, devices, ISA, threads, why cuda is off
 *   selftest [--device D]     every op on every available backend against the float64 reference
 *   bench [--op NAME] [--device D] [--size S] [--json]   throughput against peers
 *   start                     the main job: selftest, then the default benchmark
 *   build-from-source         rebuild the native addon for this machine (cmake, C++17; nvcc for cuda)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { candidatePaths, packageRoot } from './addon.js';
import { info } from './runtime.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`;
}

function printInfo(): void {
  const i = info();
  console.log(`rlhf-kernels ${i.version}`);
  console.log(`  binary    ${i.binary ?? '(unknown)'}`);
  console.log(`  backends  ${i.backends.join(', ')}`);
  console.log(`  cpu       ${i.cpu.threads} threads, ISA ${i.cpu.isa} (supported: ${i.cpu.supportedIsas.join(', ')})`);
  if (i.cpu.note) console.log(`            ${i.cpu.note}`);
  if (i.cuda.available) {
    console.log(`  cuda      runtime ${i.cuda.runtimeVersion}, driver ${i.cuda.driverVersion}, code for ${i.cuda.archs}`);
    for (const d of i.cuda.devices)
      console.log(`    cuda:${d.ordinal}  ${d.name}, compute ${d.computeCapability}, ${d.multiprocessors} SMs, ${formatBytes(d.totalMemory)}`);
  } else {
    console.log(`  cuda      off: ${i.cuda.reason}`);
  }
}

/**
 * Builds build/Release/rlhf_kernels.node from the sources the package ships
 * (scripts/build-native.js, which says what is missing). In an installed
 * package the loader still tries the prebuild first: the build is used where
 * the prebuild cannot load, or everywhere with RLHF_KERNELS_BINARY (it says so).
 */
function buildFromSource(): number {
  const root = packageRoot();
  if (root === undefined) {
    console.error('rlhf-kernels: build-from-source: this copy of rlhf-kernels is not inside its package folder (bundled?): nothing to build from.');
    return 1;
  }
  const script = join(root, 'scripts', 'build-native.js');
  if (!existsSync(script)) {
    console.error(`rlhf-kernels: build-from-source: ${script} is missing: this copy has no sources to build from.`);
    return 1;
  }
  const r = spawnSync(process.execPath, [script], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) return r.status ?? 1;
  const built = resolve(root, process.env.RLHF_KERNELS_BUILD_DIR ?? 'build', 'Release', 'rlhf_kernels.node');
  console.log(`rlhf-kernels: built ${built}`);
  const first = candidatePaths(root)[0];
  if (first !== built)
    console.log(`  The loader tries ${first} first; to use this build in any case, set RLHF_KERNELS_BINARY=${built}`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command = 'info', ...rest] = argv;
  switch (command) {
    case 'info':
      printInfo();
      return 0;
    case 'selftest': {
      const { runSelftest } = await import('../tests/selftest/index.js');
      return (await runSelftest({ device: flag(rest, '--device') })) ? 0 : 1;
    }
    case 'bench': {
      const { runBench } = await import('../bench/run.js');
      return runBench(rest);
    }
    case 'start': {
      printInfo();
      console.log('');
      const { runSelftest } = await import('../tests/selftest/index.js');
      const ok = await runSelftest({});
      console.log('');
      const { runBench } = await import('../bench/run.js');
      const code = await runBench(rest);
      return ok ? code : 1;
    }
    case 'build-from-source':
      return buildFromSource();
    case '-h':
    case '--help':
    case 'help':
      console.log('usage: rlhf-kernels <info|selftest|bench|start|build-from-source> [--device D] [--op NAME] [--size S] [--json]');
      return 0;
    default:
      console.error(`rlhf-kernels: unknown command '${command}'. Commands: info, selftest, bench, start, build-from-source.`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Loader errors already begin with the package's name.
    console.error(e instanceof Error ? e.message.replace(/^(rlhf-kernels: )?/, 'rlhf-kernels: ') : e);
    process.exitCode = 1;
  },
);
