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
