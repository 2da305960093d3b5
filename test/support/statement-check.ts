/**
 * Mocha root hooks (.mocharc.json `require`, after hooks.ts): records every statement of the run
 * (test/support/statement-log.ts) and, after the last file, fails the run on any application
 * statement touching a user table without a user_id predicate. The rules, the background-job
 * allow-list and the marker comment are described in statement-log.ts.
 */
import { testDatabaseUrl } from './db';
import { installStatementLog, loadUserTables, violations, writeStatementLog } from './statement-log';

installStatementLog();
let userTables: Set<string> | null = null;

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    userTables = await loadUserTables(testDatabaseUrl());
  },
  afterAll(): void {
    const file = process.env['PLANNER_STATEMENT_LOG'];
    if (file) writeStatementLog(file);
    if (!userTables) return;
    const found = violations(userTables);
    if (found.length)
      throw new Error(
        `statement log: ${found.length} statement(s) for a request or operation not scoped by user_id ` +
          `(add the predicate, or mark a background job /* background:<job> */ and list it in UNSCOPED_ALLOW_LIST):\n  ` +
          found.join('\n  '),
      );
  },
};
