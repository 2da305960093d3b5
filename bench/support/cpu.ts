/**
 * CPU time of process trees, from /proc (Linux; every function answers null elsewhere). On a
 * shared machine throughput swings with the neighbours' load, while the CPU a request costs moves
 * much less: the write bench reports both.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let tickMs: number | null | undefined;

/** Milliseconds per clock tick (getconf CLK_TCK), or null when /proc is not there. */
function msPerTick(): number | null {
  if (tickMs !== undefined) return tickMs;
  try {
    fs.accessSync('/proc/self/stat');
    tickMs = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  } catch {
    tickMs = null;
  }
  return tickMs;
}

interface Stat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime (own) and cutime + cstime (reaped children), in ticks. */
  own: number;
  reaped: number;
}

function readStat(pid: number): Stat | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // Fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    return {
      pid,
      comm,
      ppid: Number(f[1]),
      own: Number(f[11]) + Number(f[12]),
      reaped: Number(f[13]) + Number(f[14]),
    };
  } catch {
    return null;
  }
}

function allStats(): Stat[] {
  const out: Stat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/**
 * CPU milliseconds used so far by `root` and its descendants, leaving out the subtrees of
 * processes named `exclude` (the server's embedded Postgres is its child). With `reaped`, the CPU
 * of descendants that already exited counts too (a postmaster's finished backends).
 */
export function treeCpuMs(root: number, opts: { exclude?: string; reaped?: boolean } = {}): number | null {
  const tick = msPerTick();
  if (tick === null) return null;
  const stats = allStats();
  const children = new Map<number, Stat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const top = stats.find((s) => s.pid === root);
  if (!top) return null;
  let ticks = 0;
  const stack = [top];
  while (stack.length > 0) {
    const s = stack.pop()!;
    ticks += s.own + (opts.reaped ? s.reaped : 0);
    for (const c of children.get(s.pid) ?? []) if (c.comm !== opts.exclude) stack.push(c);
  }
  return ticks * tick;
}

/** The parent of `pid` (a backend's postmaster), or null. */
export function parentPid(pid: number): number | null {
  return readStat(pid)?.ppid ?? null;
}
