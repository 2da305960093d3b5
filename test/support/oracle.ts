/**
 * Brute-force conflict oracle and fast-check generators shared by the domain's property tests
 * (test/unit/conflicts.test.ts, alternatives.test.ts, autoschedule.test.ts).
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import {
  PRIORITIES,
  WEEKDAYS,
  type DetectedConflict,
  type PlanTask,
  type TaskStatus,
  type UserSettings,
  type WorkingHours,
} from '../../src/domain/types';

// ---------------------------------------------------------------------------------------------------------
// Brute-force oracle (also used by alternatives.test.ts and autoschedule.test.ts).
// It works on 15-minute blocks: every generated instant is a multiple of 15 minutes, and in the zones used
// here every UTC offset and DST switch is too, so each block lies in one local day with one wall time.
// ---------------------------------------------------------------------------------------------------------

export const BLOCK_MS = 15 * 60_000;
export const ORACLE_ZONES = ['Europe/Berlin', 'America/New_York', 'UTC', 'Asia/Kolkata'] as const;

const blockInfo = new Map<string, { day: string; wall: number }>();

/** Local day and wall-clock minute of the block starting at `ms` (luxon, memoised). */
function local(tz: string, ms: number): { day: string; wall: number } {
  const key = `${tz}|${ms}`;
  let info = blockInfo.get(key);
  if (!info) {
    const dt = DateTime.fromMillis(ms, { zone: tz });
    info = { day: dt.toISODate()!, wall: dt.hour * 60 + dt.minute };
    blockInfo.set(key, info);
  }
  return info;
}

function assertAligned(ms: number): void {
  if (ms % BLOCK_MS !== 0)
    throw new Error(`oracle needs 15-minute aligned instants, got ${new Date(ms).toISOString()}`);
}

/** Blocks of [s, e). */
function blocks(s: number, e: number): number[] {
  assertAligned(s);
  assertAligned(e);
  const out: number[] = [];
  for (let t = s; t < e; t += BLOCK_MS) out.push(t);
  return out;
}

const windowCache = new Map<string, Array<[number, number]>>();

/**
 * Working windows of a local day, by definition: the instant of wall time W on day D is the first instant
 * of day D whose wall clock shows W or later (next local midnight when there is none). This states the
 * gap rule (first existing instant after) and the overlap rule (earlier occurrence) without offsets.
 */
function oracleWindows(day: string, s: UserSettings): Array<[number, number]> {
  const key = `${s.timeZone}|${day}|${JSON.stringify(s.workingHours)}`;
  const cached = windowCache.get(key);
  if (cached) return cached;
  const dayBlocks: Array<{ t: number; wall: number }> = [];
  const base = Date.parse(`${day}T00:00:00Z`);
  let nextMidnight = NaN;
  for (let t = base - 16 * 3_600_000; t < base + 40 * 3_600_000; t += BLOCK_MS) {
    const info = local(s.timeZone, t);
    if (info.day === day) dayBlocks.push({ t, wall: info.wall });
    else if (info.day > day && Number.isNaN(nextMidnight)) nextMidnight = t;
  }
  const instantOf = (wall: number): number => dayBlocks.find((b) => b.wall >= wall)?.t ?? nextMidnight;
  const weekday = WEEKDAYS[(new Date(base).getUTCDay() + 6) % 7];
  const parse = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
  const result = s.workingHours[weekday]
    .map((i) => [instantOf(parse(i.start)), instantOf(parse(i.end))] as [number, number])
    .filter(([a, b]) => b > a);
  windowCache.set(key, result);
  return result;
}

function oracleWorking(t: number, s: UserSettings): boolean {
  const day = local(s.timeZone, t).day;
  return oracleWindows(day, s).some(([a, b]) => a <= t && t + BLOCK_MS <= b);
}

/** Simple O(n²) conflict detection used as the reference. Messages are not compared. */
export function oracleConflicts(
  tasks: PlanTask[],
  focus: ReadonlySet<string> | null,
  s: UserSettings,
): Array<Omit<DetectedConflict, 'message'>> {
  const inFocus = (id: string): boolean => focus === null || focus.has(id);
  const sched = tasks.filter(
    (t) => t.status !== 'DONE' && t.status !== 'CANCELLED' && t.start !== null && t.end !== null,
  ) as Array<PlanTask & { start: Date; end: Date }>;
  const out: Array<Omit<DetectedConflict, 'message'>> = [];
  const byId = new Map(sched.map((t) => [t.id, t]));

  for (let i = 0; i < sched.length; i++) {
    for (let j = i + 1; j < sched.length; j++) {
      const a = sched[i];
      const b = sched[j];
      if (!(inFocus(a.id) || inFocus(b.id))) continue;
      const overlap = Math.max(+a.start, +b.start) < Math.min(+a.end, +b.end);
      if (!overlap) continue;
      const [x, y] = a.id < b.id ? [a, b] : [b, a];
      const ids = inFocus(y.id) && !inFocus(x.id) ? [y.id, x.id] : [x.id, y.id];
      out.push({ kind: 'OVERLAP', key: `OVERLAP:${x.id}:${y.id}`, taskIds: ids });
    }
  }

  const minutesByDay = new Map<string, Map<string, number>>();
  for (const t of sched) {
    for (const blk of blocks(+t.start, +t.end)) {
      const day = local(s.timeZone, blk).day;
      const m = minutesByDay.get(day) ?? new Map<string, number>();
      m.set(t.id, (m.get(t.id) ?? 0) + 15);
      minutesByDay.set(day, m);
    }
  }
  for (const [day, perTask] of minutesByDay) {
    const total = [...perTask.values()].reduce((a, b) => a + b, 0);
    const ids = [...perTask.keys()];
    if (total <= s.dailyCapacityMinutes || !ids.some(inFocus)) continue;
    ids.sort((a, b) => {
      const ta = byId.get(a)!;
      const tb = byId.get(b)!;
      return Number(inFocus(b)) - Number(inFocus(a)) || +ta.start - +tb.start || (a < b ? -1 : 1);
    });
    out.push({ kind: 'OVER_CAPACITY', key: `OVER_CAPACITY:${day}`, taskIds: ids });
  }

  for (const t of sched) {
    if (!inFocus(t.id)) continue;
    if (t.dueAt && +t.end > +t.dueAt)
      out.push({ kind: 'PAST_DUE', key: `PAST_DUE:${t.id}`, taskIds: [t.id] });
    if (blocks(+t.start, +t.end).some((blk) => !oracleWorking(blk, s))) {
      out.push({ kind: 'OUTSIDE_WORKING_HOURS', key: `OUTSIDE_WORKING_HOURS:${t.id}`, taskIds: [t.id] });
    }
  }

  for (const t of sched) {
    for (const d of new Set(t.dependsOn)) {
      const dep = byId.get(d);
      if (!dep || d === t.id || !(inFocus(t.id) || inFocus(d))) continue;
      if (+t.start < +dep.end) {
        out.push({ kind: 'DEPENDENCY_ORDER', key: `DEPENDENCY_ORDER:${t.id}:${d}`, taskIds: [t.id, d] });
      }
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** Strips messages so detector output can be compared with the oracle. */
export function shape(list: DetectedConflict[]): Array<Omit<DetectedConflict, 'message'>> {
  return list.map(({ kind, key, taskIds }) => ({ kind, key, taskIds }));
}

// ---------------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------------

/** UTC midnights near DST switches (and one ordinary summer day). */
export const ANCHORS = ['2026-03-07', '2026-03-28', '2026-10-24', '2026-10-31', '2026-06-10'].map((d) =>
  Date.parse(`${d}T00:00:00Z`),
);
/** Tasks are generated within this many days after the anchor. */
export const SPAN_DAYS = 4;

const hhmm = (block: number): string => {
  const m = block * 15;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

/** Working hours: per weekday 0-2 intervals on the 15-minute grid (sometimes including night hours). */
export const workingHoursArb: fc.Arbitrary<WorkingHours> = fc
  .array(
    fc.oneof(
      fc.constant([36, 68]), // 09:00-17:00
      fc.uniqueArray(fc.integer({ min: 0, max: 96 }), { minLength: 0, maxLength: 4 }),
    ),
    { minLength: 7, maxLength: 7 },
  )
  .map((perDay) => {
    const wh = {} as WorkingHours;
    WEEKDAYS.forEach((day, i) => {
      const points = [...perDay[i]].sort((a, b) => a - b);
      const intervals = [];
      for (let k = 0; k + 1 < points.length; k += 2)
        intervals.push({ start: hhmm(points[k]), end: hhmm(points[k + 1]) });
      wh[day] = intervals;
    });
    return wh;
  });

export const settingsArb: fc.Arbitrary<UserSettings> = fc.record({
  timeZone: fc.constantFrom(...ORACLE_ZONES),
  workingHours: workingHoursArb,
  dailyCapacityMinutes: fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.constant(480)),
});

const statusArb: fc.Arbitrary<TaskStatus> = fc.constantFrom<TaskStatus>(
  'SCHEDULED',
  'SCHEDULED',
  'SCHEDULED',
  'TODO',
  'IN_PROGRESS',
  'BACKLOG',
  'DONE',
  'CANCELLED',
);

/** A random plan of up to `maxTasks` tasks (at most `maxBlocks` quarter hours long) around a random anchor. */
export function planArb(maxTasks = 12, maxBlocks = 60): fc.Arbitrary<{ anchor: number; tasks: PlanTask[] }> {
  return fc.constantFrom(...ANCHORS).chain((anchor) =>
    fc
      .array(
        fc.record({
          status: statusArb,
          priority: fc.constantFrom(...PRIORITIES),
          unscheduled: fc.integer({ min: 0, max: 4 }),
          startBlock: fc.integer({ min: 0, max: SPAN_DAYS * 96 - 1 }),
          lenBlocks: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: maxBlocks })),
          estimate: fc.option(fc.integer({ min: 1, max: 16 }).map((b) => b * 15)),
          due: fc.option(fc.integer({ min: 0, max: SPAN_DAYS * 96 + 96 })),
          deps: fc.array(fc.nat(), { maxLength: 2 }),
        }),
        { minLength: 0, maxLength: maxTasks },
      )
      .map((raw) => ({
        anchor,
        tasks: raw.map((r, i): PlanTask => {
          const scheduled = r.unscheduled !== 0;
          return {
            id: `t${String(i).padStart(2, '0')}`,
            title: `Task ${i}`,
            status: r.status,
            priority: r.priority,
            estimateMinutes: r.estimate,
            dueAt: r.due === null ? null : new Date(anchor + r.due * BLOCK_MS),
            start: scheduled ? new Date(anchor + r.startBlock * BLOCK_MS) : null,
            end: scheduled ? new Date(anchor + (r.startBlock + r.lenBlocks) * BLOCK_MS) : null,
            dependsOn:
              raw.length === 0
                ? []
                : [...new Set(r.deps.map((d) => `t${String(d % raw.length).padStart(2, '0')}`))],
          };
        }),
      })),
  );
}

/** A random focus: null (everything) or a subset of the ids (possibly with an unknown id). */
export function focusArb(ids: string[]): fc.Arbitrary<Set<string> | null> {
  return fc.option(
    fc.subarray([...ids, 'unknown']).map((sub) => new Set(sub)),
    { freq: 3 },
  );
}
