/**
 * Child processes for tests of the entry points (npm start's main.ts, the planner CLI), with an
 * environment stripped of the planner's own variables so that only what a test sets applies.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

const PLANNER_VARS = /^(DATABASE_URL|TEST_DATABASE_URL|PORT|HOST|NODE_ENV|LOG_LEVEL|PLANNER_.*|OTEL_.*)$/;

/** The parent's environment (PATH, HOME…) minus planner configuration, plus `overrides`. */
export function childEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!PLANNER_VARS.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in the project root and collects its output. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Path of a binary in node_modules/.bin. */
export function bin(name: string): string {
  return path.join(PROJECT_ROOT, 'node_modules', '.bin', name);
}
