import { ApiResponse } from '@nestjs/swagger';
import { z } from 'zod';
import { MAX_PROBLEMS } from './validation-problems';

/** The 400 of every input declared with a schema (SchemaValidationPipe); the API docs add it to each such route. */
export const validationProblemsSchema = z
  .object({
    statusCode: z.literal(400),
    error: z.literal('Bad Request'),
    message: z
      .array(z.string())
      .max(MAX_PROBLEMS + 1)
      .describe(`Every problem, each starting with where it is; past ${MAX_PROBLEMS}, a last entry "… and N more problems".`),
  })
  .meta({
    example: { statusCode: 400, error: 'Bad Request', message: ['sales[3].quantity must be a positive integer', 'sales[7] has unknown key "discount"'] },
  });

/** Nest's shape for any other HttpException: 401, 404, 503... */
export const errorResponseSchema = z
  .object({ statusCode: z.number().int(), error: z.string().optional(), message: z.string() })
  .meta({ id: 'ErrorResponse', example: { statusCode: 404, error: 'Not Found', message: 'No report rpt_0123456789abcdef0123456789abcdef' } });

/** Documents an error answer of a route in the shape Nest sends it. */
export function ApiErrorResponse(status: number, description: string): MethodDecorator & ClassDecorator {
  return ApiResponse({ status, description, standardSchema: errorResponseSchema });
}

/**
 * Documents the 503 of a route that depends on Redis: refused fast, never queued, with Retry-After. Answered by
 * the queue's filter for QueueUnavailableError, whatever the feature.
 */
export function ApiUnavailableResponse(): MethodDecorator & ClassDecorator {
  return ApiResponse({
    status: 503,
    description: 'Redis is unreachable or refusing writes: nothing was stored. Try again after Retry-After seconds; trying again is safe.',
    standardSchema: errorResponseSchema,
    headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer', example: 5 } } },
  });
}
