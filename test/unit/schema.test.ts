import { expect } from 'chai';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  type GraphQLNamedType,
} from 'graphql';
import { buildSchema } from '../../src/resolvers';

describe('schema/ (the public contract)', () => {
  const schema = buildSchema();
  const own = Object.values(schema.getTypeMap()).filter(
    (t: GraphQLNamedType) => !t.name.startsWith('__') && !(isScalarType(t) && isSpecifiedScalarType(t)),
  );

  it('describes every type, field, argument, input field and enum value', () => {
    const missing: string[] = [];
    for (const t of own) {
      if (!t.description?.trim()) missing.push(t.name);
      if (isObjectType(t) || isInterfaceType(t)) {
        for (const f of Object.values(t.getFields())) {
          if (!f.description?.trim()) missing.push(`${t.name}.${f.name}`);
          for (const a of f.args) if (!a.description?.trim()) missing.push(`${t.name}.${f.name}(${a.name})`);
        }
      }
      if (isInputObjectType(t)) {
        for (const f of Object.values(t.getFields()))
          if (!f.description?.trim()) missing.push(`${t.name}.${f.name}`);
      }
      if (isEnumType(t)) {
        for (const v of t.getValues()) if (!v.description?.trim()) missing.push(`${t.name}.${v.name}`);
      }
    }
    expect(missing).to.deep.equal([]);
  });

  it('keeps the contract names', () => {
    const q = Object.keys(schema.getQueryType()!.getFields());
    expect(q).to.include.members([
      'me',
      'task',
      'tasks',
      'goals',
      'schedule',
      'conflicts',
      'operations',
      'undoState',
      'memories',
      'features',
      'exportMyData',
      'rolloutReport',
    ]);
    const m = Object.keys(schema.getMutationType()!.getFields());
    expect(m).to.include.members([
      'createTask',
      'updateTask',
      'scheduleTask',
      'unscheduleTask',
      'completeTask',
      'deleteTask',
      'createGoal',
      'updateGoal',
      'autoSchedule',
      'resolveConflict',
      'dismissConflict',
      'undo',
      'redo',
      'forgetMemories',
      'remember',
      'updateSettings',
    ]);
    const s = Object.keys(schema.getSubscriptionType()!.getFields());
    expect(s).to.include.members(['conflictEvents', 'undoEvents', 'planEvents']);
    const result = schema.getType('UpdateResult');
    expect(isObjectType(result) && Object.keys(result.getFields())).to.include.members([
      'ok',
      'operation',
      'task',
      'goal',
      'changes',
      'conflicts',
      'errors',
      'warnings',
      'undo',
      'memory',
      'flags',
    ]);
  });
});
