/** updateSettings: time zone, working hours, daily capacity, display name, agent permissions. */
import { isValidTimeZone, validateWorkingHours } from '../../domain/time';
import type { LocalInterval, Weekday, WorkingHours } from '../../domain/types';
import type { Problem } from '../../domain/validation';
import { windowsFor } from '../conflict-sync';
import type { LoadRequest } from '../loaded';
import type { BodyResult, OperationSpec } from '../runner';
import type { WorldTx } from '../tx';
import { problemsToError, settleConflicts } from './common';

export interface SettingsInput {
  timeZone?: string | null;
  /** Weekdays listed replace that day's hours; weekdays not listed keep theirs. */
  workingHours?: Array<{ weekday: Weekday; intervals: LocalInterval[] }> | null;
  dailyCapacityMinutes?: number | null;
  displayName?: string | null;
  /** Agent names allowed to act for the user (exact, or a prefix ending in `*`; `[]`: none, `["*"]`: any). */
  allowedAgents?: string[] | null;
  /** Whether an agent may undo the user's own operations. */
  agentsMayUndoMine?: boolean | null;
}

/** At most this many agent name patterns, each 1–100 characters. */
export const MAX_ALLOWED_AGENTS = 50;

const DAY_MS = 86_400_000;
/** How far ahead a settings change re-checks the plan (besides every stored open conflict). */
export const SETTINGS_RECHECK_DAYS = 60;

/** What a settings change (or its undo) re-checks: every active conflict and the upcoming plan. */
export function settingsRecheckLoad(now: Date): LoadRequest {
  const from = new Date(now.getTime() - DAY_MS);
  const to = new Date(now.getTime() + SETTINGS_RECHECK_DAYS * DAY_MS);
  return { allActiveConflicts: true, ranges: windowsFor({ now }, [{ start: from, end: to }]) };
}

/** The tasks and conflicts to re-evaluate after hours, zone or capacity changed. */
export function settingsRecheck(tx: WorldTx): Pick<BodyResult, 'alsoCheck' | 'reconsider'> {
  const active = tx.allActiveConflicts();
  const from = new Date(tx.now.getTime() - DAY_MS);
  const upcoming = tx.planTasksMeeting([
    { start: from, end: new Date(tx.now.getTime() + SETTINGS_RECHECK_DAYS * DAY_MS) },
  ]);
  const ids = [...new Set([...active.flatMap((c) => c.task_ids), ...upcoming.map((t) => t.id)])];
  return { alsoCheck: ids.slice(0, 2000), reconsider: active.map((c) => c.id) };
}

export function updateSettingsOp(now: Date, input: SettingsInput): OperationSpec {
  return {
    kind: 'UPDATE_SETTINGS',
    args: { input },
    load: settingsRecheckLoad(now),
    decide: (tx) => {
      const problems: Problem[] = [];
      if (input.timeZone != null && !isValidTimeZone(input.timeZone)) {
        problems.push({
          path: ['input', 'timeZone'],
          message: `"${input.timeZone}" is not an IANA time zone`,
        });
      }
      let workingHours: WorkingHours | undefined;
      if (input.workingHours != null) {
        const merged: WorkingHours = { ...tx.user.working_hours };
        const seen = new Set<string>();
        input.workingHours.forEach((d, i) => {
          if (seen.has(d.weekday)) {
            problems.push({
              path: ['input', 'workingHours', String(i), 'weekday'],
              message: `${d.weekday} is listed twice`,
            });
          }
          seen.add(d.weekday);
          merged[d.weekday] = d.intervals.map((x) => ({ start: x.start, end: x.end }));
        });
        const msg = validateWorkingHours(merged);
        if (msg) problems.push({ path: ['input', 'workingHours'], message: msg });
        workingHours = merged;
      }
      const cap = input.dailyCapacityMinutes;
      if (cap != null && (!Number.isInteger(cap) || cap < 1 || cap > 1440)) {
        problems.push({
          path: ['input', 'dailyCapacityMinutes'],
          message: `dailyCapacityMinutes must be 1–1440, got ${cap}`,
        });
      }
      if (
        input.displayName != null &&
        (input.displayName.trim().length < 1 || input.displayName.trim().length > 200)
      ) {
        problems.push({ path: ['input', 'displayName'], message: 'displayName must be 1–200 characters' });
      }
      (input.allowedAgents ?? []).forEach((name, i) => {
        const n = name.trim();
        if (n.length < 1 || n.length > 100 || n.slice(0, -1).includes('*'))
          problems.push({
            path: ['input', 'allowedAgents', String(i)],
            message: `"${name}" is not an agent name pattern (1–100 characters, \`*\` only at the end)`,
          });
      });
      if (input.allowedAgents != null && input.allowedAgents.length > MAX_ALLOWED_AGENTS)
        problems.push({
          path: ['input', 'allowedAgents'],
          message: `at most ${MAX_ALLOWED_AGENTS} agent names, got ${input.allowedAgents.length}`,
        });
      if (problems.length > 0) throw problemsToError(problems);
      tx.updateSettings({
        timeZone: input.timeZone ?? undefined,
        workingHours,
        dailyCapacityMinutes: cap ?? undefined,
        displayName: input.displayName?.trim() ?? undefined,
        allowedAgents:
          input.allowedAgents != null ? [...new Set(input.allowedAgents.map((n) => n.trim()))] : undefined,
        agentsMayUndoMine: input.agentsMayUndoMine ?? undefined,
      });
      return settingsRecheck(tx);
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}
