/**
 * The planner's agent tools, each defined once: a name, a description a model can act on, a zod
 * schema and what it does through the world. LangGraph (langgraph.ts) and MCP (mcp.ts) serve these
 * same definitions; toolset.ts binds them to one user and one agent.
 *
 * Reads go through world.queries, writes through world.updater (the same validation, audit trail
 * and undo as GraphQL). Every writing tool takes `dryRun` (preview: decide, write nothing) and an
 * optional `idempotencyKey` (default: the tool call's own id).
 */
import { z } from 'zod';
import { CONFLICT_POLICIES, CONFLICT_STATUSES, PRIORITIES, TASK_STATUSES } from '../domain/types';
import { freeGaps, localDaysTouchedMs, workingWindowsMs } from '../domain/time';
import { DomainError } from '../world/errors';
import type { MutationOptions } from '../world/runner';
import type { Actor, UpdateResultView } from '../world/views';
import type { World } from '../world/world';
import { conflictJson, memoryJson, taskJson, updateResultJson } from './format';

/** What a tool runs with: the world, the bound user and agent, and the call's idempotency key. */
export interface ToolContext {
  world: World;
  actor: Actor;
  /** The key for a write: the explicit one, else one derived from the tool call's id (null: none). */
  idempotencyKey(explicit: string | undefined): string | null;
}

export interface ToolDef<S extends z.ZodObject = z.ZodObject> {
  name: string;
  description: string;
  schema: S;
  /** Whether the tool changes the plan (it then takes dryRun and idempotencyKey). */
  writes: boolean;
  run(ctx: ToolContext, args: z.infer<S>): Promise<Record<string, unknown>>;
}

const DAY_MS = 86_400_000;
/** find_free_slots looks at most this many days ahead. */
export const MAX_FREE_SLOT_DAYS = 31;
/** find_free_slots answers at most this many slots. */
export const MAX_FREE_SLOTS = 100;

const instant = (what: string) =>
  z.iso.datetime({ offset: true }).describe(`${what}: ISO-8601 with offset, e.g. 2026-12-02T09:00:00Z`);
const first = z.number().int().min(1).max(100).optional().describe('How many at most (1–100, default 20).');
const dryRun = z
  .boolean()
  .optional()
  .describe('Preview only: answer what the call would do (conflicts, alternatives) and write nothing.');
const idempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .optional()
  .describe('Retry key; default the tool call id. A repeat with the same key writes nothing again.');
const onConflict = z
  .enum(CONFLICT_POLICIES)
  .optional()
  .describe(
    'If the change conflicts: ALLOW (default: apply, report the conflicts), REJECT (apply nothing), AUTO_RESOLVE (apply the best alternative).',
  );

function define<S extends z.ZodObject>(def: ToolDef<S>): ToolDef {
  return def as unknown as ToolDef;
}

function writeOpts(
  ctx: ToolContext,
  a: { dryRun?: boolean; idempotencyKey?: string; onConflict?: MutationOptions['onConflict'] },
): MutationOptions {
  return {
    dryRun: a.dryRun ?? false,
    idempotencyKey: a.dryRun ? null : ctx.idempotencyKey(a.idempotencyKey),
    onConflict: a.onConflict ?? undefined,
  };
}

/** The compact result; `rename` maps the world's argument names in error paths to the tool's. */
function answer(r: UpdateResultView, rename: Record<string, string> = {}): Record<string, unknown> {
  const path = (p: string[] | null) => p && p.map((x, i) => (i === 0 ? (rename[x] ?? x) : x));
  return updateResultJson({ ...r, errors: r.errors.map((e) => ({ ...e, path: path(e.path) })) });
}

export const TOOLS: readonly ToolDef[] = [
  define({
    name: 'list_tasks',
    description:
      "Lists the user's tasks, oldest first: id, title, status, priority, estimate, due date, scheduled start/end, tags. Filter by status (e.g. BACKLOG, TODO for unscheduled work), by text in the title or notes, or scheduled true/false.",
    writes: false,
    schema: z.object({
      status: z.array(z.enum(TASK_STATUSES)).optional().describe('Only these statuses.'),
      text: z.string().max(200).optional().describe('Only tasks whose title or notes contain this text.'),
      scheduled: z.boolean().optional().describe('true: only scheduled tasks; false: only unscheduled ones.'),
      first,
    }),
    run: async (ctx, a) => {
      const page = await ctx.world.queries.tasks(
        ctx.actor.userId,
        { status: a.status, text: a.text, scheduled: a.scheduled },
        a.first ?? 20,
      );
      return { tasks: page.items.map((i) => taskJson(i.node)), more: page.hasNextPage };
    },
  }),
  define({
    name: 'get_schedule',
    description:
      "The user's calendar: scheduled tasks overlapping [from, to), by start. Use it before placing work.",
    writes: false,
    schema: z.object({ from: instant('Range start'), to: instant('Range end (after from)') }),
    run: async (ctx, a) => {
      const tasks = await ctx.world.queries.schedule(ctx.actor.userId, new Date(a.from), new Date(a.to));
      return { tasks: tasks.map(taskJson) };
    },
  }),
  define({
    name: 'find_free_slots',
    description: `Free time inside the user's working hours (in their time zone) between from and to (at most ${MAX_FREE_SLOT_DAYS} days), not taken by scheduled tasks, at least minMinutes long. Each slot: start, end, minutes.`,
    writes: false,
    schema: z.object({
      from: instant('Range start'),
      to: instant('Range end (after from)'),
      minMinutes: z.number().int().min(1).max(1440).optional().describe('Shortest useful slot (default 15).'),
    }),
    run: async (ctx, a) => {
      const from = new Date(a.from).getTime();
      const to = new Date(a.to).getTime();
      if (!(to > from)) throw new DomainError('VALIDATION', '`to` must be after `from`', ['to']);
      if (to - from > MAX_FREE_SLOT_DAYS * DAY_MS)
        throw new DomainError('VALIDATION', `the range may span at most ${MAX_FREE_SLOT_DAYS} days`, ['to']);
      const me = await ctx.world.queries.me(ctx.actor.userId);
      const busy = (await ctx.world.queries.schedule(ctx.actor.userId, new Date(from), new Date(to)))
        .filter((t) => t.scheduledStart && t.scheduledEnd && t.status !== 'DONE' && t.status !== 'CANCELLED')
        .map((t) => [new Date(t.scheduledStart!).getTime(), new Date(t.scheduledEnd!).getTime()] as const);
      const settings = {
        timeZone: me.timeZone,
        workingHours: me.workingHours,
        dailyCapacityMinutes: me.dailyCapacityMinutes,
      };
      const windows = localDaysTouchedMs(from, to, me.timeZone).flatMap((d) => workingWindowsMs(d, settings));
      const min = (a.minMinutes ?? 15) * 60_000;
      const slots = freeGaps(windows, busy, from, to).filter(([s, e]) => e - s >= min);
      return {
        timeZone: me.timeZone,
        slots: slots.slice(0, MAX_FREE_SLOTS).map(([s, e]) => ({
          start: new Date(s).toISOString(),
          end: new Date(e).toISOString(),
          minutes: Math.round((e - s) / 60_000),
        })),
        more: slots.length > MAX_FREE_SLOTS || undefined,
      };
    },
  }),
  define({
    name: 'list_conflicts',
    description:
      'Conflicts in the plan (overlaps, over capacity, outside working hours, past due, dependency order), newest first, each with ranked alternatives (id, description, start/end) that resolve_conflict can apply.',
    writes: false,
    schema: z.object({
      status: z.enum(CONFLICT_STATUSES).optional().describe('Only this status (default OPEN).'),
      first,
    }),
    run: async (ctx, a) => {
      const page = await ctx.world.queries.conflicts(ctx.actor.userId, a.status ?? 'OPEN', a.first ?? 20);
      return { conflicts: page.items.map((i) => conflictJson(i.node)), more: page.hasNextPage };
    },
  }),
  define({
    name: 'recall_memories',
    description:
      "What the planner has learned about the user (preferences, patterns, facts they stated), best match first. Consult it before planning on the user's behalf.",
    writes: false,
    schema: z.object({
      query: z.string().max(500).optional().describe('What to look for, e.g. "mornings" or "gym".'),
      first,
    }),
    run: async (ctx, a) => {
      const items = await ctx.world.queries.memories(ctx.actor.userId, {
        query: a.query,
        first: a.first ?? 20,
      });
      return { memories: items.map(memoryJson) };
    },
  }),
  define({
    name: 'create_task',
    description:
      'Creates a task: in the backlog, or on the calendar when scheduledStart is given (scheduledEnd defaults to start + estimate). Answers the task and any conflicts it causes, with alternatives.',
    writes: true,
    schema: z.object({
      title: z.string().min(1).max(500).describe('What to do.'),
      notes: z.string().max(10_000).optional(),
      priority: z.enum(PRIORITIES).optional().describe('Default MEDIUM.'),
      estimateMinutes: z.number().int().min(1).max(10_080).optional().describe('How long it takes.'),
      dueAt: instant('Deadline').optional(),
      scheduledStart: instant('Calendar start').optional(),
      scheduledEnd: instant('Calendar end').optional(),
      tags: z.array(z.string().min(1).max(50)).max(20).optional(),
      onConflict,
      dryRun,
      idempotencyKey,
    }),
    run: async (ctx, a) =>
      answer(
        await ctx.world.updater.createTask(
          ctx.actor,
          {
            title: a.title,
            notes: a.notes,
            priority: a.priority,
            estimateMinutes: a.estimateMinutes,
            dueAt: a.dueAt ? new Date(a.dueAt) : undefined,
            scheduledStart: a.scheduledStart ? new Date(a.scheduledStart) : undefined,
            scheduledEnd: a.scheduledEnd ? new Date(a.scheduledEnd) : undefined,
            tags: a.tags,
          },
          writeOpts(ctx, a),
        ),
      ),
  }),
  define({
    name: 'schedule_task',
    description:
      "Puts an existing task on the calendar at start (end defaults to start + the task's estimate, or 30 minutes). onConflict decides what happens if the slot conflicts.",
    writes: true,
    schema: z.object({
      taskId: z.string().describe('The task id (from list_tasks).'),
      start: instant('Start'),
      end: instant('End').optional(),
      onConflict,
      dryRun,
      idempotencyKey,
    }),
    run: async (ctx, a) =>
      answer(
        await ctx.world.updater.scheduleTask(
          ctx.actor,
          a.taskId,
          new Date(a.start),
          a.end ? new Date(a.end) : null,
          writeOpts(ctx, a),
        ),
        { id: 'taskId' }, // the world names the task argument `id`
      ),
  }),
  define({
    name: 'resolve_conflict',
    description: 'Applies one of a conflict’s alternatives (ids from list_conflicts or a previous result).',
    writes: true,
    schema: z.object({
      conflictId: z.string().describe('The conflict id.'),
      alternativeId: z.string().describe('The alternative id.'),
      dryRun,
      idempotencyKey,
    }),
    run: async (ctx, a) =>
      answer(
        await ctx.world.updater.resolveConflict(ctx.actor, a.conflictId, a.alternativeId, writeOpts(ctx, a)),
      ),
  }),
  define({
    name: 'auto_schedule',
    description:
      'Places tasks into free working-hour slots in [from, to), most urgent first: the given taskIds, or the whole backlog when omitted. Answers where each task went (placements) and what did not fit (unplaced, with reasons).',
    writes: true,
    schema: z.object({
      taskIds: z
        .array(z.string())
        .max(500)
        .optional()
        .describe('Tasks to place; omit for the whole backlog.'),
      from: instant('Window start'),
      to: instant('Window end'),
      dryRun,
      idempotencyKey,
    }),
    run: async (ctx, a) =>
      answer(
        await ctx.world.updater.autoSchedule(
          ctx.actor,
          a.taskIds ?? null,
          new Date(a.from),
          new Date(a.to),
          writeOpts(ctx, a),
        ),
      ),
  }),
  define({
    name: 'undo_last',
    description:
      "Undoes this agent's most recent applied operation (the user's own ones only if the user allows it). The user can also undo any agent operation themselves.",
    writes: true,
    schema: z.object({ dryRun, idempotencyKey }),
    run: async (ctx, a) => answer(await ctx.world.updater.undo(ctx.actor, null, writeOpts(ctx, a))),
  }),
];

export const TOOL_NAMES: readonly string[] = TOOLS.map((t) => t.name);
