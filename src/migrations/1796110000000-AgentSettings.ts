import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The user's control over AI agents (issue 15): which agents may act for the user (name patterns:
 * an exact agent name, or a prefix ending in `*`; `{*}` — the default — lets any agent act, `{}`
 * none), and whether an agent may undo the user's own operations (default false: an agent undoes
 * only what it did itself).
 */
export class AgentSettings1796110000000 implements MigrationInterface {
  name = 'AgentSettings1796110000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users
        ADD COLUMN allowed_agents text[] NOT NULL DEFAULT '{*}',
        ADD COLUMN agents_may_undo_mine boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users
        DROP COLUMN agents_may_undo_mine,
        DROP COLUMN allowed_agents`);
  }
}
