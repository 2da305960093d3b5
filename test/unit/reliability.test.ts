/**
 * Reliability units: the database-unavailable classifier and its place in error masking (outages become a thrown
 * UNAVAILABLE with a retry hint, no database detail; everything else unexpected stays INTERNAL), and
 * the per-user admission of mutations.
 */
import { expect } from 'chai';
import { GraphQLError } from 'graphql';
import { createFormatError } from '../../src/server/errors';
import { createLogger } from '../../src/server/logger';
import { isDatabaseUnavailable, UNAVAILABLE_RETRY_AFTER_MS } from '../../src/server/unavailable';
import { Admission, AdmissionRefused } from '../../src/world/admission';

/** An error shaped like TypeORM's QueryFailedError around a pg error. */
function queryFailed(code: string, message = 'db error'): Error {
  const driverError = Object.assign(new Error(message), { code });
  return Object.assign(new Error(message), { name: 'QueryFailedError', driverError, code });
}

describe('database-unavailable errors', () => {
  const unavailable: Array<[string, unknown]> = [
    ['57P01 admin shutdown', queryFailed('57P01', 'terminating connection due to administrator command')],
    ['57P02 crash shutdown', queryFailed('57P02')],
    ['57P03 cannot connect now', queryFailed('57P03', 'the database system is starting up')],
    ['08006 connection failure', queryFailed('08006')],
    ['08003 connection does not exist', queryFailed('08003')],
    ['53300 too many connections', queryFailed('53300')],
    ['55P03 lock_timeout', queryFailed('55P03', 'canceling statement due to lock timeout')],
    [
      'ECONNREFUSED',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['connection terminated', new Error('Connection terminated unexpectedly')],
    ['pool acquire timeout', new Error('timeout exceeded when trying to connect')],
    ['released query runner', new Error('Query runner already released. Cannot run queries anymore.')],
    ['wrapped by GraphQL', new GraphQLError('x', { originalError: queryFailed('57P01') })],
    [
      'as a cause',
      new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'ECONNREFUSED' }) }),
    ],
  ];
  for (const [name, err] of unavailable) {
    it(`${name} is unavailable`, () => expect(isDatabaseUnavailable(err)).to.equal(true));
  }

  const bugs: Array<[string, unknown]> = [
    ['23505 unique violation', queryFailed('23505', 'duplicate key value violates unique constraint "x"')],
    ['22P02 bad input', queryFailed('22P02')],
    ['42703 undefined column', queryFailed('42703')],
    ['40001 serialization failure', queryFailed('40001')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a string', 'boom'],
    ['null', null],
  ];
  for (const [name, err] of bugs) {
    it(`${name} is not`, () => expect(isDatabaseUnavailable(err)).to.equal(false));
  }

  it('formatError answers UNAVAILABLE with a retry hint and no database detail, and logs no error', () => {
    const lines: string[] = [];
    const format = createFormatError({
      devMode: false,
      log: createLogger('error', (l) => lines.push(l)),
    });
    const original = queryFailed('57P01', 'terminating connection due to administrator command');
    const error = new GraphQLError('terminating connection due to administrator command', {
      path: ['createTask'],
      originalError: original,
    });
    const out = format(
      { message: error.message, path: ['createTask'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
      error,
    );
    expect(out.extensions).to.deep.equal({ code: 'UNAVAILABLE', retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS });
    expect(out.message).to.not.include('administrator');
    expect(out.path).to.deep.equal(['createTask']);
    expect(lines).to.deep.equal([]);
  });

  it('formatError still masks anything else as INTERNAL', () => {
    const format = createFormatError({
      devMode: false,
      log: createLogger('silent'),
      newLogId: () => 'log-1',
    });
    const error = new GraphQLError('duplicate key', { originalError: queryFailed('23505', 'duplicate key') });
    const out = format({ message: 'duplicate key', extensions: { code: 'INTERNAL_SERVER_ERROR' } }, error);
    expect(out.extensions).to.deep.equal({ code: 'INTERNAL', logId: 'log-1' });
  });
});

describe('per-user admission', () => {
  it('runs at most N of one user at once, queues M more in order, refuses beyond, and never limits another user', async () => {
    const admission = new Admission(2, 1);
    const gates: Array<() => void> = [];
    const order: string[] = [];
    const job = (name: string) => () =>
      new Promise<string>((resolve) => {
        order.push(`start ${name}`);
        gates.push(() => resolve(name));
      });
    const a1 = admission.run('a', job('a1'));
    const a2 = admission.run('a', job('a2'));
    const a3 = admission.run('a', job('a3')); // queued
    let refused: unknown = null;
    await admission.run('a', job('a4')).catch((e: unknown) => (refused = e));
    expect(refused).to.be.instanceOf(AdmissionRefused);
    expect((refused as AdmissionRefused).retryAfterMs).to.be.greaterThan(0);
    const b1 = admission.run('b', job('b1'));
    await admission.waitFor('a', 2, 1);
    expect(admission.count('b')).to.equal(1);
    gates.shift()!(); // a1 ends: a3 takes its slot
    expect(await a1).to.equal('a1');
    await admission.waitFor('a', 2, 0);
    for (const g of gates.splice(0)) g();
    expect(await Promise.all([a2, b1])).to.deep.equal(['a2', 'b1']);
    gates.shift()?.();
    expect(await a3).to.equal('a3');
    expect(order).to.deep.equal(['start a1', 'start a2', 'start b1', 'start a3']);
    expect(admission.total).to.equal(0);
  });

  it('releases the slot when the operation throws', async () => {
    const admission = new Admission(1);
    await admission.run('a', () => Promise.reject(new Error('x'))).catch(() => undefined);
    expect(admission.count('a')).to.equal(0);
    expect(await admission.run('a', () => Promise.resolve(7))).to.equal(7);
  });
});
