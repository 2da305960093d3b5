/**
 * Domain errors: problems with what the user asked for. They come back inside an UpdateResult's
 * `errors` (never as thrown GraphQL errors) and mean that nothing was written.
 */

export const USER_ERROR_CODES = [
  'VALIDATION',
  'NOT_FOUND',
  'VERSION_CONFLICT',
  'CONFLICT_REJECTED',
  'ALTERNATIVE_STALE',
  'NOTHING_TO_UNDO',
  'NOTHING_TO_REDO',
  'UNDO_BLOCKED',
  'FEATURE_DISABLED',
  /** An agent the user has not allowed to act (settings: allowedAgents). */
  'FORBIDDEN',
] as const;
export type UserErrorCode = (typeof USER_ERROR_CODES)[number];

export interface UserErrorDetail {
  code: UserErrorCode;
  message: string;
  path: string[] | null;
}

/** Thrown inside a world transaction to abort it with one or more user errors. */
export class DomainError extends Error {
  readonly details: UserErrorDetail[];
  constructor(
    code: UserErrorCode,
    message: string,
    path: string[] | null = null,
    more: UserErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'DomainError';
    this.details = [{ code, message, path }, ...more];
  }
  get code(): UserErrorCode {
    return this.details[0]!.code;
  }
  get path(): string[] | null {
    return this.details[0]!.path;
  }
  /** Several validation problems at once. */
  static many(details: UserErrorDetail[]): DomainError {
    const [first, ...rest] = details;
    return new DomainError(first!.code, first!.message, first!.path, rest);
  }
}

/** Collects validation problems, then throws them all at once. */
export class Problems {
  private readonly list: UserErrorDetail[] = [];
  add(path: string[], message: string, code: UserErrorCode = 'VALIDATION'): void {
    this.list.push({ code, message, path });
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw DomainError.many(this.list);
  }
}
