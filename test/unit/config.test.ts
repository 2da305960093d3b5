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
