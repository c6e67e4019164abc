/**
 * The one error type of the admin, family and console routes (everything that is not an SGP.22
 * function, whose failures are `FunctionFailed` in src/errors.ts). The app's error handler renders
 * it as `{ error: code, message, details? }` with its 4xx status.
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

  static notFound(what: string, id: string, details?: Record<string, unknown>) {
    return new ApiError(404, 'notFound', `no ${what} ${JSON.stringify(id)}`, { [what]: id, ...details });
  }

  static conflict(message: string, details?: Record<string, unknown>) {
    return new ApiError(409, 'conflict', message, details);
  }

  toJSON() {
    return { error: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}
