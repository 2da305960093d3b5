/** Configuration of the safe defaults: dev mode is one explicit switch, never implied by NODE_ENV. */
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config/config';

describe('config: PLANNER_DEV_MODE and the embedded port', () => {
  it('dev mode is off by default whatever NODE_ENV says', () => {
    for (const nodeEnv of [undefined, 'development', 'production', 'test']) {
      expect(loadConfig({ NODE_ENV: nodeEnv }).devMode, String(nodeEnv)).to.equal(false);
    }
  });

  it('accepts true/false spellings and refuses anything else, naming the variable', () => {
    for (const v of ['true', 'TRUE', '1', 'yes', 'on'])
      expect(loadConfig({ PLANNER_DEV_MODE: v }).devMode, v).to.equal(true);
    for (const v of ['false', '0', 'no', 'off', ''])
      expect(loadConfig({ PLANNER_DEV_MODE: v }).devMode, v).to.equal(false);
    expect(() => loadConfig({ PLANNER_DEV_MODE: 'maybe' }))
      .to.throw(ConfigError)
      .with.property('message')
      .that.matches(/^PLANNER_DEV_MODE: expected true or false/);
  });

  it('the embedded Postgres port defaults to 0 (per data directory) and can be fixed', () => {
    expect(loadConfig({}).embeddedPgPort).to.equal(0);
    expect(loadConfig({ PLANNER_EMBEDDED_PG_PORT: '5544' }).embeddedPgPort).to.equal(5544);
  });
});

describe('config: identity provider (issue 13)', () => {
  const provider = {
    PLANNER_JWKS_URL: 'https://idp.example.com/jwks',
    PLANNER_OIDC_ISSUER: 'https://idp.example.com/',
    PLANNER_OIDC_AUDIENCE: 'planner-api, other',
  };
  it('is off without the three variables, and needs all three', () => {
    expect(loadConfig({}).oidc).to.equal(null);
    for (const missing of Object.keys(provider)) {
      const env: Record<string, string> = { ...provider };
      delete env[missing];
      expect(() => loadConfig(env), missing).to.throw(ConfigError, missing);
    }
  });
  it('parses defaults and lists, and refuses none and HS algorithms', () => {
    const c = loadConfig(provider).oidc!;
    expect(c.audience).to.deep.equal(['planner-api', 'other']);
    expect(c.algorithms).to.deep.equal(['RS256', 'ES256', 'EdDSA']);
    expect([c.clockSkewSeconds, c.subjectClaim, c.emailClaim, c.roleClaim]).to.deep.equal([
      60,
      'sub',
      'email',
      null,
    ]);
    for (const alg of ['none', 'HS256', 'RS256,HS512', '']) {
      const env = { ...provider, PLANNER_OIDC_ALGORITHMS: alg };
      if (alg === '') expect(loadConfig(env).oidc!.algorithms).to.have.length(3);
      else expect(() => loadConfig(env), alg).to.throw(ConfigError, 'PLANNER_OIDC_ALGORITHMS');
    }
    expect(() => loadConfig({ ...provider, PLANNER_JWKS_URL: 'file:///etc/keys' })).to.throw(ConfigError);
  });
});

describe('config: the limits of issue 16 (safe defaults, validated)', () => {
  it('defaults: 10,000 WebSockets per instance and a pool of 20 connections', () => {
    const c = loadConfig({});
    expect(c.maxWsConnections).to.equal(10_000);
    expect(c.dbPoolSize).to.equal(20);
  });

  it('accepts values in range and refuses others, naming the variable', () => {
    expect(loadConfig({ PLANNER_MAX_WS_CONNECTIONS: '3' }).maxWsConnections).to.equal(3);
    expect(loadConfig({ PLANNER_DB_POOL_SIZE: '5' }).dbPoolSize).to.equal(5);
    for (const [name, bad] of [
      ['PLANNER_MAX_WS_CONNECTIONS', '0'],
      ['PLANNER_MAX_WS_CONNECTIONS', 'many'],
      ['PLANNER_DB_POOL_SIZE', '1'],
      ['PLANNER_DB_POOL_SIZE', '1001'],
    ] as const) {
      expect(() => loadConfig({ [name]: bad }), `${name}=${bad}`)
        .to.throw(ConfigError)
        .with.property('message')
        .that.matches(new RegExp(`^${name}: `));
    }
  });

  it('every other limit of the list has a bounded default', () => {
    const c = loadConfig({});
    expect({
      undoDepth: c.undoDepth,
      outboxRetentionDays: c.outboxRetentionDays,
      maxSubscriptionsPerConnection: c.maxSubscriptionsPerConnection,
      wsMaxBufferedBytes: c.wsMaxBufferedBytes,
      maxBodyBytes: c.maxBodyBytes,
      maxInFlightPerUser: c.maxInFlightPerUser,
      maxQueuedPerUser: c.maxQueuedPerUser,
    }).to.deep.equal({
      undoDepth: 100,
      outboxRetentionDays: 7,
      maxSubscriptionsPerConnection: 20,
      wsMaxBufferedBytes: 4 * 1_048_576,
      maxBodyBytes: 1_048_576,
      maxInFlightPerUser: 4,
      maxQueuedPerUser: 100,
    });
    expect(() => loadConfig({ PLANNER_UNDO_DEPTH: '0' })).to.throw(ConfigError);
    expect(() => loadConfig({ PLANNER_OUTBOX_RETENTION_DAYS: '0' })).to.throw(ConfigError);
  });
});

describe('config: PLANNER_EVENTS_DATABASE_URL', () => {
  it('is unset by default (the pool’s database) and must be a postgres URL', () => {
    expect(loadConfig({}).eventsDatabaseUrl).to.equal(null);
    expect(loadConfig({ PLANNER_EVENTS_DATABASE_URL: 'postgres://u@db:5432/p' }).eventsDatabaseUrl).to.equal(
      'postgres://u@db:5432/p',
    );
    expect(() => loadConfig({ PLANNER_EVENTS_DATABASE_URL: 'mysql://x' }))
      .to.throw(ConfigError)
      .with.property('message')
      .that.matches(/^PLANNER_EVENTS_DATABASE_URL: /);
  });
});

describe('config: semantic memory (issue 14)', () => {
  it('has defaults for the retention, the per-user cap and the learner interval', () => {
    const c = loadConfig({});
    expect(c.memoryTtlDays).to.equal(180);
    expect(c.memoryMaxItems).to.equal(200);
    expect(c.memoryLearnMs).to.equal(5000);
  });

  it('accepts values in range and refuses the rest, naming the variable', () => {
    const c = loadConfig({ PLANNER_MEMORY_TTL_DAYS: '30', PLANNER_MEMORY_MAX_ITEMS: '50' });
    expect(c.memoryTtlDays).to.equal(30);
    expect(c.memoryMaxItems).to.equal(50);
    for (const [name, bad] of [
      ['PLANNER_MEMORY_TTL_DAYS', '0'],
      ['PLANNER_MEMORY_TTL_DAYS', 'forever'],
      ['PLANNER_MEMORY_MAX_ITEMS', '5'],
      ['PLANNER_MEMORY_MAX_ITEMS', '2.5'],
      ['PLANNER_MEMORY_LEARN_MS', '10'],
    ] as const) {
      expect(() => loadConfig({ [name]: bad }), `${name}=${bad}`)
        .to.throw(ConfigError)
        .with.property('variable', name);
    }
  });
});

describe('config: PLANNER_MIGRATE_ON_START', () => {
  it('defaults to true, accepts the boolean spellings and refuses anything else, naming the variable', () => {
    expect(loadConfig({}).migrateOnStart).to.equal(true);
    for (const v of ['false', 'FALSE', '0', 'no', 'off'])
      expect(loadConfig({ PLANNER_MIGRATE_ON_START: v }).migrateOnStart, v).to.equal(false);
    for (const v of ['true', '1', 'yes', 'on'])
      expect(loadConfig({ PLANNER_MIGRATE_ON_START: v }).migrateOnStart, v).to.equal(true);
    expect(() => loadConfig({ PLANNER_MIGRATE_ON_START: 'later' }))
      .to.throw(ConfigError)
      .with.property('message')
      .that.matches(/^PLANNER_MIGRATE_ON_START: expected true or false/);
  });
});
