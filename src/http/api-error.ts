/**
 * The one error type of the admin, family and console routes (everything that is not an SGP.22
 * function, whose failures are `FunctionFailed` in src/errors.ts). The app's error handler
 * (src/error-handler.ts) renders it as `{ error: code, message, details? }` with its 4xx status;
 * docs/api.md lists the codes.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    /** HTTP status, 4xx. */
    readonly statusCode: number,
    /** Stable machine-readable code, e.g. `notFound`, `invalid`, `conflict`, `unauthorised`. */
    readonly code: string,
    message: string,
    /** What the client needs to fix it: the field, the value that does not exist, … */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  static badRequest(message: string, details?: Record<string, unknown>) {
    return new ApiError(400, 'invalid', message, details);
  }

  /** A reference to something that does not exist: `no profile type "x"`, details `{ profileType: "x" }`. */
  static notFound(what: string, id: string, details?: Record<string, unknown>) {
    return new ApiError(404, 'notFound', `no ${what} ${JSON.stringify(id)}`, { [camel(what)]: id, ...details });
  }

  static conflict(message: string, details?: Record<string, unknown>) {
    return new ApiError(409, 'conflict', message, details);
  }

  static unauthorised(message: string) {
    return new ApiError(401, 'unauthorised', message);
  }

  static forbidden(message: string) {
    return new ApiError(403, 'forbidden', message);
  }

  /**
   * A schema failure as Fastify reports it (`err.validation`, `err.validationContext`): 400 with
   * details naming the field, e.g. `{ field: "body.caps.dataMb", rule: "maximum", problem: "must be <= 100000000" }`.
   */
  static fromValidation(err: { validation: ValidationItem[]; validationContext?: string; message?: string }): ApiError {
    const v = err.validation[0];
    const part = err.validationContext ?? 'body';
    if (!v) return ApiError.badRequest(err.message ?? `invalid ${part}`, { field: part });
    const path = (v.instancePath ?? '').split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (v.keyword === 'required' && v.params?.missingProperty) path.push(String(v.params.missingProperty));
    if (v.keyword === 'additionalProperties' && v.params?.additionalProperty) path.push(String(v.params.additionalProperty));
    const field = [part, ...path].join('.');
    const problem = v.keyword === 'required' ? 'is required'
      : v.keyword === 'additionalProperties' ? 'is not a known field'
        : v.keyword === 'enum' && Array.isArray(v.params?.allowedValues) ? `must be one of ${v.params.allowedValues.map((a) => JSON.stringify(a)).join(', ')}`
          : (v.message ?? 'is invalid');
    return new ApiError(400, 'invalid', `${field} ${problem}`, { field, rule: v.keyword, problem });
  }

  toJSON() {
    return { error: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** One ajv error as Fastify passes it on. */
export interface ValidationItem {
  keyword: string;
  instancePath?: string;
  message?: string;
  params?: { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] } & Record<string, unknown>;
}

/** `profile type` → `profileType` (the details key of a missing reference). */
function camel(what: string): string {
  return what.replace(/[\s_-]+(\w)/g, (_m, c: string) => c.toUpperCase());
}
