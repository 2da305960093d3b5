import { expect } from 'chai';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import {
  formatLocalInstant,
  formatLocalSlot,
  isValidTimeZone,
  localDayBounds,
  localDayKey,
  localDaysTouched,
  minutesInLocalDay,
  parseHHMM,
  validateWorkingHours,
  wallTimeToInstantMs,
  workingWindowsForLocalDay,
} from '../../src/domain/time';
import {
  DEFAULT_WORKING_HOURS,
  WEEKDAYS,
  type UserSettings,
  type WorkingHours,
} from '../../src/domain/types';

const HOUR = 3_600_000;

function everyDay(start: string, end: string): WorkingHours {
  return Object.fromEntries(WEEKDAYS.map((d) => [d, [{ start, end }]])) as WorkingHours;
}

function settings(timeZone: string, workingHours: WorkingHours = everyDay('09:00', '17:00')): UserSettings {
  return { timeZone, workingHours, dailyCapacityMinutes: 480 };
}

const iso = (d: Date): string => d.toISOString();

describe('domain/time', () => {
  describe('isValidTimeZone', () => {
    it('accepts IANA names and rejects others', () => {
      for (const tz of ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata']) {
        expect(isValidTimeZone(tz), tz).to.equal(true);
      }
      for (const tz of ['', 'Mars/Olympus', 'Europe/Berlinn', 'not a zone']) {
        expect(isValidTimeZone(tz), tz).to.equal(false);
      }
    });
  });

  describe('parseHHMM', () => {
    it('parses 24-hour times including 24:00', () => {
      expect(parseHHMM('00:00')).to.equal(0);
      expect(parseHHMM('09:30')).to.equal(570);
      expect(parseHHMM('23:59')).to.equal(1439);
      expect(parseHHMM('24:00')).to.equal(1440);
    });
    it('rejects malformed times', () => {
      for (const v of ['24:01', '25:00', '9:00', '09:60', '0900', '', '09:00:00', ' 09:00']) {
        expect(parseHHMM(v), v).to.equal(null);
      }
    });
  });

  describe('validateWorkingHours', () => {
    it('accepts the defaults and an all-day schedule', () => {
      expect(validateWorkingHours(DEFAULT_WORKING_HOURS)).to.equal(null);
      expect(validateWorkingHours(everyDay('00:00', '24:00'))).to.equal(null);
    });
    it('accepts touching intervals', () => {
      const wh = {
        ...DEFAULT_WORKING_HOURS,
        MONDAY: [
          { start: '09:00', end: '12:00' },
          { start: '12:00', end: '17:00' },
        ],
      };
      expect(validateWorkingHours(wh)).to.equal(null);
    });
    it('rejects bad shapes with a message naming the field', () => {
      expect(validateWorkingHours(null)).to.be.a('string');
      expect(validateWorkingHours([])).to.be.a('string');
      expect(validateWorkingHours({ ...DEFAULT_WORKING_HOURS, FUNDAY: [] })).to.contain('FUNDAY');
      const { MONDAY: _omit, ...missing } = DEFAULT_WORKING_HOURS;
      void _omit;
      expect(validateWorkingHours(missing)).to.contain('MONDAY');
      const cases: unknown[] = [
        [{ start: '9:00', end: '17:00' }],
        [{ start: '09:00', end: '25:00' }],
        [{ start: '17:00', end: '09:00' }],
        [{ start: '09:00', end: '09:00' }],
        [{ start: '24:00', end: '24:00' }],
        [
          { start: '09:00', end: '12:00' },
          { start: '11:00', end: '17:00' },
        ],
        [
          { start: '13:00', end: '17:00' },
          { start: '09:00', end: '12:00' },
        ],
        ['09:00-17:00'],
        'all day',
      ];
      for (const tuesday of cases) {
        const msg = validateWorkingHours({ ...DEFAULT_WORKING_HOURS, TUESDAY: tuesday });
        expect(msg, JSON.stringify(tuesday)).to.be.a('string').and.contain('TUESDAY');
      }
    });
  });

  describe('localDayKey', () => {
    it('uses the given zone, not the process zone', () => {
      const instant = new Date('2026-12-01T23:30:00Z');
      expect(localDayKey(instant, 'UTC')).to.equal('2026-12-01');
      expect(localDayKey(instant, 'Europe/Berlin')).to.equal('2026-12-02');
      expect(localDayKey(instant, 'Asia/Kolkata')).to.equal('2026-12-02');
      expect(localDayKey(new Date('2026-12-02T03:00:00Z'), 'America/New_York')).to.equal('2026-12-01');
    });
  });

  describe('DST: Europe/Berlin', () => {
    const s = settings('Europe/Berlin');
    it('2026-03-29 is a 23-hour day with working hours 09:00-17:00 CEST', () => {
      const b = localDayBounds('2026-03-29', 'Europe/Berlin');
      expect(iso(b.start)).to.equal('2026-03-28T23:00:00.000Z');
      expect(iso(b.end)).to.equal('2026-03-29T22:00:00.000Z');
      expect(b.end.getTime() - b.start.getTime()).to.equal(23 * HOUR);
      const w = workingWindowsForLocalDay('2026-03-29', s);
      expect(w.map((x) => [iso(x.start), iso(x.end)])).to.deep.equal([
        ['2026-03-29T07:00:00.000Z', '2026-03-29T15:00:00.000Z'],
      ]);
      // The day before is still CET.
      const before = workingWindowsForLocalDay('2026-03-28', s);
      expect(iso(before[0].start)).to.equal('2026-03-28T08:00:00.000Z');
      expect(iso(before[0].end)).to.equal('2026-03-28T16:00:00.000Z');
    });
    it('2026-10-25 is a 25-hour day with working hours 09:00-17:00 CET', () => {
      const b = localDayBounds('2026-10-25', 'Europe/Berlin');
      expect(iso(b.start)).to.equal('2026-10-24T22:00:00.000Z');
      expect(iso(b.end)).to.equal('2026-10-25T23:00:00.000Z');
      expect(b.end.getTime() - b.start.getTime()).to.equal(25 * HOUR);
      const w = workingWindowsForLocalDay('2026-10-25', s);
      expect(w.map((x) => [iso(x.start), iso(x.end)])).to.deep.equal([
        ['2026-10-25T08:00:00.000Z', '2026-10-25T16:00:00.000Z'],
      ]);
      const before = workingWindowsForLocalDay('2026-10-24', s);
      expect(iso(before[0].start)).to.equal('2026-10-24T07:00:00.000Z');
    });
    it('moves a nonexistent time forward and picks the earlier offset for an ambiguous one', () => {
      expect(iso(new Date(wallTimeToInstantMs('2026-03-29', 150, 'Europe/Berlin')))).to.equal(
        '2026-03-29T01:00:00.000Z',
      );
      expect(iso(new Date(wallTimeToInstantMs('2026-03-29', 120, 'Europe/Berlin')))).to.equal(
        '2026-03-29T01:00:00.000Z',
      );
      expect(iso(new Date(wallTimeToInstantMs('2026-10-25', 150, 'Europe/Berlin')))).to.equal(
        '2026-10-25T00:30:00.000Z',
      );
      expect(iso(new Date(wallTimeToInstantMs('2026-10-25', 180, 'Europe/Berlin')))).to.equal(
        '2026-10-25T02:00:00.000Z',
      );
    });
    it('an all-day window spans the 23 and 25 hours; intervals inside the gap vanish', () => {
      const allDay = settings('Europe/Berlin', everyDay('00:00', '24:00'));
      const spring = workingWindowsForLocalDay('2026-03-29', allDay);
      expect(spring[0].end.getTime() - spring[0].start.getTime()).to.equal(23 * HOUR);
      const fall = workingWindowsForLocalDay('2026-10-25', allDay);
      expect(fall[0].end.getTime() - fall[0].start.getTime()).to.equal(25 * HOUR);
      expect(
        workingWindowsForLocalDay('2026-03-29', settings('Europe/Berlin', everyDay('02:00', '02:30'))),
      ).to.deep.equal([]);
      // 02:00-03:00 on the fall-back day covers both 02:xx hours (earlier offset for the start).
      const twice = workingWindowsForLocalDay(
        '2026-10-25',
        settings('Europe/Berlin', everyDay('02:00', '03:00')),
      );
      expect(twice.map((x) => [iso(x.start), iso(x.end)])).to.deep.equal([
        ['2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z'],
      ]);
    });
    it('counts capacity minutes per local day across the switch', () => {
      const start = new Date('2026-03-28T22:00:00Z'); // 23:00 CET on the 28th
      const end = new Date('2026-03-29T23:00:00Z'); // 01:00 CEST on the 30th
      expect(localDaysTouched(start, end, 'Europe/Berlin')).to.deep.equal([
        '2026-03-28',
        '2026-03-29',
        '2026-03-30',
      ]);
      expect(minutesInLocalDay(start, end, '2026-03-28', 'Europe/Berlin')).to.equal(60);
      expect(minutesInLocalDay(start, end, '2026-03-29', 'Europe/Berlin')).to.equal(23 * 60);
      expect(minutesInLocalDay(start, end, '2026-03-30', 'Europe/Berlin')).to.equal(60);
      const fallStart = new Date('2026-10-24T22:00:00Z');
      const fallEnd = new Date('2026-10-25T23:00:00Z');
      expect(localDaysTouched(fallStart, fallEnd, 'Europe/Berlin')).to.deep.equal(['2026-10-25']);
      expect(minutesInLocalDay(fallStart, fallEnd, '2026-10-25', 'Europe/Berlin')).to.equal(25 * 60);
      expect(minutesInLocalDay(fallStart, fallEnd, '2026-10-26', 'Europe/Berlin')).to.equal(0);
    });
  });

  describe('DST: America/New_York', () => {
    const s = settings('America/New_York');
    it('2026-03-08 is a 23-hour day with working hours 09:00-17:00 EDT', () => {
      const b = localDayBounds('2026-03-08', 'America/New_York');
      expect(iso(b.start)).to.equal('2026-03-08T05:00:00.000Z');
      expect(iso(b.end)).to.equal('2026-03-09T04:00:00.000Z');
      expect(b.end.getTime() - b.start.getTime()).to.equal(23 * HOUR);
      const w = workingWindowsForLocalDay('2026-03-08', s);
      expect(w.map((x) => [iso(x.start), iso(x.end)])).to.deep.equal([
        ['2026-03-08T13:00:00.000Z', '2026-03-08T21:00:00.000Z'],
      ]);
      expect(iso(workingWindowsForLocalDay('2026-03-07', s)[0].start)).to.equal('2026-03-07T14:00:00.000Z');
      expect(iso(new Date(wallTimeToInstantMs('2026-03-08', 150, 'America/New_York')))).to.equal(
        '2026-03-08T07:00:00.000Z',
      );
    });
    it('2026-11-01 is a 25-hour day with working hours 09:00-17:00 EST', () => {
      const b = localDayBounds('2026-11-01', 'America/New_York');
      expect(iso(b.start)).to.equal('2026-11-01T04:00:00.000Z');
      expect(iso(b.end)).to.equal('2026-11-02T05:00:00.000Z');
      expect(b.end.getTime() - b.start.getTime()).to.equal(25 * HOUR);
      const w = workingWindowsForLocalDay('2026-11-01', s);
      expect(w.map((x) => [iso(x.start), iso(x.end)])).to.deep.equal([
        ['2026-11-01T14:00:00.000Z', '2026-11-01T22:00:00.000Z'],
      ]);
      expect(iso(workingWindowsForLocalDay('2026-10-31', s)[0].start)).to.equal('2026-10-31T13:00:00.000Z');
      expect(iso(new Date(wallTimeToInstantMs('2026-11-01', 90, 'America/New_York')))).to.equal(
        '2026-11-01T05:30:00.000Z',
      );
    });
    it('counts capacity minutes on the 23h and 25h days', () => {
      const spring = localDayBounds('2026-03-08', 'America/New_York');
      expect(minutesInLocalDay(spring.start, spring.end, '2026-03-08', 'America/New_York')).to.equal(1380);
      const fall = localDayBounds('2026-11-01', 'America/New_York');
      expect(minutesInLocalDay(fall.start, fall.end, '2026-11-01', 'America/New_York')).to.equal(1500);
      // 20:00 EST Nov 1 to 02:00 EST Nov 2.
      const start = new Date('2026-11-02T01:00:00Z');
      const end = new Date('2026-11-02T07:00:00Z');
      expect(minutesInLocalDay(start, end, '2026-11-01', 'America/New_York')).to.equal(240);
      expect(minutesInLocalDay(start, end, '2026-11-02', 'America/New_York')).to.equal(120);
    });
  });

  describe('localDaysTouched', () => {
    it('is half-open and empty for empty intervals', () => {
      const a = new Date('2026-12-01T00:00:00Z');
      const b = new Date('2026-12-02T00:00:00Z');
      expect(localDaysTouched(a, b, 'UTC')).to.deep.equal(['2026-12-01']);
      expect(localDaysTouched(a, a, 'UTC')).to.deep.equal([]);
      expect(localDaysTouched(b, a, 'UTC')).to.deep.equal([]);
    });
  });

  describe('properties', () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'UTC', 'Asia/Kolkata', 'Australia/Lord_Howe'];
    const instant = fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2027, 0, 1) });

    it('day keys, bounds and minutes agree with luxon', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...zones),
          instant,
          fc.integer({ min: 0, max: 4 * 24 * 60 }),
          (tz, ms, len) => {
            const start = new Date(ms);
            const end = new Date(ms + len * 60_000);
            const key = localDayKey(start, tz);
            expect(key).to.equal(DateTime.fromMillis(ms, { zone: tz }).toISODate());
            const b = localDayBounds(key, tz);
            expect(b.start.getTime()).to.be.at.most(ms);
            expect(b.end.getTime()).to.be.greaterThan(ms);
            expect(localDayKey(b.start, tz)).to.equal(key);
            expect(localDayKey(new Date(b.end.getTime() - 1), tz)).to.equal(key);
            const days = localDaysTouched(start, end, tz);
            const total = days.reduce((sum, d) => sum + minutesInLocalDay(start, end, d, tz), 0);
            expect(total).to.be.closeTo(len, 1e-9);
            for (const d of days) expect(minutesInLocalDay(start, end, d, tz)).to.be.greaterThan(0);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('working windows lie in their day and show the requested local wall times when those exist', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...zones),
          instant,
          fc.integer({ min: 0, max: 95 }),
          fc.integer({ min: 1, max: 96 }),
          (tz, ms, a, len) => {
            const startMin = a * 15;
            const endMin = Math.min(96, a + len) * 15;
            const hhmm = (m: number): string =>
              `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
            const s = settings(tz, everyDay(hhmm(startMin), hhmm(endMin)));
            const key = localDayKey(new Date(ms), tz);
            const b = localDayBounds(key, tz);
            for (const w of workingWindowsForLocalDay(key, s)) {
              expect(w.start.getTime()).to.be.at.least(b.start.getTime());
              expect(w.end.getTime()).to.be.at.most(b.end.getTime());
              expect(w.end.getTime()).to.be.greaterThan(w.start.getTime());
              const local = DateTime.fromJSDate(w.start, { zone: tz });
              // Either the exact wall time, or (gap) the first instant after it.
              expect(local.hour * 60 + local.minute).to.be.at.least(startMin);
              const before = DateTime.fromMillis(w.start.getTime() - 1, { zone: tz });
              if (before.toISODate() === key)
                expect(before.hour * 60 + before.minute).to.be.lessThan(startMin);
            }
          },
        ),
        { numRuns: 150 },
      );
    });
  });

  describe('formatLocalInstant / formatLocalSlot (luxon-free formatting)', () => {
    const ZONES = [
      'UTC',
      'Europe/London',
      'America/New_York',
      'Asia/Kathmandu',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
    ];
    const luxonInstant = (ms: number, tz: string) =>
      DateTime.fromMillis(ms, { zone: tz, locale: 'en-GB' }).toFormat('ccc d LLL HH:mm');
    const luxonSlot = (a: number, b: number, tz: string) => {
      const s = DateTime.fromMillis(a, { zone: tz, locale: 'en-GB' });
      const e = DateTime.fromMillis(b, { zone: tz, locale: 'en-GB' });
      const end =
        e.toISODate() !== s.toISODate() && e.hour === 0 && e.minute === 0 ? '24:00' : e.toFormat('HH:mm');
      return `${s.toFormat('ccc d LLL HH:mm')}–${end}`;
    };

    it('writes exactly what luxon writes, DST transitions and odd offsets included', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...ZONES),
          // 2020–2030, on a 5-minute grid (as alternatives are) and at any millisecond
          fc.integer({ min: 1_577_836_800_000, max: 1_893_456_000_000 }),
          fc.integer({ min: 1, max: 36 * 12 }),
          fc.boolean(),
          (tz, raw, steps, grid) => {
            const start = grid ? Math.floor(raw / 300_000) * 300_000 : raw;
            const end = start + steps * 300_000;
            expect(formatLocalInstant(start, tz)).to.equal(luxonInstant(start, tz));
            expect(formatLocalSlot(start, end, tz)).to.equal(luxonSlot(start, end, tz));
          },
        ),
        { numRuns: 2000 },
      );
    });

    it('ends a slot at the next local midnight as 24:00', () => {
      const start = Date.parse('2027-03-28T22:00:00Z'); // 23:00 BST… Europe/London switched that morning
      const end = Date.parse('2027-03-28T23:00:00Z'); // 00:00 BST on the 29th
      expect(formatLocalSlot(start, end, 'Europe/London')).to.equal('Sun 28 Mar 23:00–24:00');
      expect(formatLocalSlot(start, end, 'Europe/London')).to.equal(luxonSlot(start, end, 'Europe/London'));
    });
  });
});
