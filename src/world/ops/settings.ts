/** updateSettings: time zone, working hours, daily capacity, display name. */
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
}

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
      if (problems.length > 0) throw problemsToError(problems);
      tx.updateSettings({
        timeZone: input.timeZone ?? undefined,
        workingHours,
        dailyCapacityMinutes: cap ?? undefined,
        displayName: input.displayName?.trim() ?? undefined,
      });
      return settingsRecheck(tx);
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}
