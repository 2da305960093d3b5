/** Small builders for pure-domain tests: scheduled tasks and working hours. */
import { WEEKDAYS, type PlanTask, type WorkingHours } from '../../src/domain/types';

/** A SCHEDULED, MEDIUM task from ISO start/end (null for an unscheduled one); `extra` overrides. */
export function scheduledTask(
  id: string,
  start: string | null,
  end: string | null,
  extra: Partial<PlanTask> = {},
): PlanTask {
  return {
    id,
    title: extra.title ?? id,
    status: 'SCHEDULED',
    priority: 'MEDIUM',
    estimateMinutes: null,
    dueAt: null,
    start: start ? new Date(start) : null,
    end: end ? new Date(end) : null,
    dependsOn: [],
    ...extra,
  };
}

/** The same working interval on all seven days. */
export const everyDay = (start: string, end: string): WorkingHours =>
  Object.fromEntries(WEEKDAYS.map((d) => [d, [{ start, end }]])) as WorkingHours;

/** The same working interval Monday to Friday, weekends off. */
export const weekdays = (start: string, end: string): WorkingHours =>
  Object.fromEntries(
    WEEKDAYS.map((d) => [d, d === 'SATURDAY' || d === 'SUNDAY' ? [] : [{ start, end }]]),
  ) as WorkingHours;
