/**
 * The dashboard's time-zone arithmetic (src/dashboard/public/dash-panels.js, a browser script):
 * loaded into a vm context with a bare `window`, checked against luxon on DST days, half-hour
 * zones and the date line.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { DateTime } from 'luxon';

interface DashTime {
  dayRange(zone: string, day: string): { from: string; to: string };
  clock(zone: string, iso: string): string;
}

function loadTime(): DashTime {
  const file = path.resolve(__dirname, '../../src/dashboard/public/dash-panels.js');
  const window: { Planner?: { time: DashTime } } = {};
  vm.runInNewContext(fs.readFileSync(file, 'utf8'), {
    window,
    Intl,
    Date,
    Math,
    Map,
    Number,
    String,
    Object,
  });
  return window.Planner!.time;
}

describe('dashboard time zones (browser script)', () => {
  const time = loadTime();
  const cases: Array<[string, string]> = [
    ['UTC', '2026-12-01'],
    ['Europe/Berlin', '2026-12-01'],
    ['Europe/Berlin', '2026-03-29'], // 23-hour day
    ['Europe/Berlin', '2026-10-25'], // 25-hour day
    ['America/St_Johns', '2026-11-01'], // -03:30, DST ends at 02:00 local
    ['America/Sao_Paulo', '2026-06-15'],
    ['Pacific/Kiritimati', '2026-01-01'], // +14
    ['Pacific/Pago_Pago', '2026-12-31'], // -11
    ['Asia/Kathmandu', '2026-07-04'], // +05:45
    ['America/Santiago', '2026-09-06'], // midnight does not exist: the day starts at 01:00
    ['America/Havana', '2026-03-08'], // likewise
  ];
  for (const [zone, day] of cases) {
    it(`local day ${day} in ${zone} is [midnight, next midnight) as luxon says`, () => {
      const start = DateTime.fromISO(day, { zone }).startOf('day');
      const next = DateTime.fromISO(DateTime.fromISO(day).plus({ days: 1 }).toISODate()!, { zone }).startOf(
        'day',
      );
      const range = time.dayRange(zone, day);
      expect(range).to.deep.equal({
        from: start.toUTC().toISO({ suppressMilliseconds: false }),
        to: next.toUTC().toISO({ suppressMilliseconds: false }),
      });
    });
  }

  it('shows instants as HH:MM in the zone', () => {
    expect(time.clock('Europe/Berlin', '2026-12-01T09:00:00Z')).to.equal('10:00');
    expect(time.clock('Europe/Berlin', '2026-07-01T23:30:00Z')).to.equal('01:30');
    expect(time.clock('Asia/Kathmandu', '2026-07-04T00:00:00Z')).to.equal('05:45');
    expect(time.clock('UTC', '2026-12-01T00:00:00Z')).to.equal('00:00');
  });
});
