/**
 * `npm run bench [name…]`: runs every registered benchmark (or only those named) and prints one JSON
 * object: the machine (cores, node) and each benchmark's results merged in. Benchmarks are not tests:
 * nothing here asserts timings. Register a new one by adding it to BENCHES.
 */
import os from 'node:os';
import { run as fanout } from './fanout.bench';
import { run as observability } from './observability.bench';
import { run as flags } from './flags.bench';
import { run as memory } from './memory.bench';
import { run as schedule } from './schedule.bench';
import { run as write } from './write.bench';

/** A benchmark: returns JSON-serialisable results to merge into the printed object. */
export type Bench = () => Promise<Record<string, unknown>>;

const BENCHES: Record<string, Bench> = {
  schedule,
  fanout,
  write,
  observability,
  flags,
  memory,
};

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    console.error(`unknown bench: ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})`);
    process.exit(2);
  }
  const out: Record<string, unknown> = { cores: os.cpus().length, node: process.version };
  for (const name of names.length > 0 ? names : Object.keys(BENCHES)) {
    Object.assign(out, await BENCHES[name]!());
  }
  console.log(JSON.stringify(out, null, 2));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
