/** Goal operations: create and update. */
import type { GoalStatus, Priority } from '../../domain/types';
import { validateGoalFields } from '../../domain/validation';
import { DomainError } from '../errors';
import type { OperationSpec } from '../runner';
import { isUuid } from '../user-service';
import { emptySync, problemsToError } from './common';

export interface CreateGoalInput {
  title: string;
  priority?: Priority | null;
  targetDate?: Date | null;
}

export interface UpdateGoalInput {
  title?: string | null;
  priority?: Priority | null;
  status?: GoalStatus | null;
  targetDate?: Date | null;
}

export function createGoalOp(input: CreateGoalInput): OperationSpec {
  return {
    kind: 'CREATE_GOAL',
    args: { input },
    load: {},
    decide: (tx) => {
      const problems = validateGoalFields(input, true);
      if (problems.length > 0) throw problemsToError(problems);
      const goal = tx.insertGoal({
        title: input.title.trim(),
        status: 'ACTIVE',
        priority: input.priority ?? 'MEDIUM',
        targetDate: input.targetDate ?? null,
      });
      return { goal };
    },
    // Goals take no part in conflict detection.
    settle: () => emptySync(),
  };
}

export function updateGoalOp(
  id: string,
  input: UpdateGoalInput,
  expectedVersion: number | null,
): OperationSpec {
  return {
    kind: 'UPDATE_GOAL',
    args: { id, input, expectedVersion },
    load: { goalIds: isUuid(id) ? [id] : [] },
    decide: (tx) => {
      if (!isUuid(id) || !tx.goal(id)) throw new DomainError('NOT_FOUND', 'No such goal', ['id']);
      const problems = validateGoalFields(input, false);
      if (input.title === null) problems.push({ path: ['input', 'title'], message: 'title cannot be null' });
      if (problems.length > 0) throw problemsToError(problems);
      const goal = tx.updateGoal(
        id,
        {
          title: input.title?.trim() ?? undefined,
          priority: input.priority ?? undefined,
          status: input.status ?? undefined,
          targetDate: input.targetDate,
        },
        expectedVersion,
      );
      return { goal };
    },
    settle: () => emptySync(),
  };
}
