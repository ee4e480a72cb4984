import { z } from 'zod';

/**
 * The documented answers of a job-backed route (queued/active, completed with its result, failed), named
 * `Pending<Name>`, `Completed<Name>`, `Failed<Name>`, `Finished<Name>` in the OpenAPI document.
 */
export function jobViewSchemas<Result extends z.ZodType>(name: string, id: z.ZodType<string>, result: Result) {
  const pending = z.object({ id, status: z.enum(['queued', 'active']) }).meta({ id: `Pending${name}`, description: 'Being computed: ask again.' });
  const completed = z.object({ id, status: z.literal('completed'), result }).meta({ id: `Completed${name}` });
  const failed = z.object({ id, status: z.literal('failed'), error: z.string() }).meta({ id: `Failed${name}`, description: 'Failed for good; posting the same data again retries.' });
  return { pending, completed, finished: z.discriminatedUnion('status', [completed, failed]).meta({ id: `Finished${name}` }) };
}

/** The `x-cache` response header of a completed result, for @ApiResponse({ headers }). */
export const X_CACHE_HEADER = {
  'x-cache': { description: '`hit` or `miss`: whether the completed result came from the cache.', schema: { type: 'string', enum: ['hit', 'miss'] } },
};
