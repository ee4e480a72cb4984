import { HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import type { JobAnswer, JobView } from './job-results.service';

/**
 * 202 while the job is queued or running (with `Location` when the request created it), 200 once it is
 * completed or failed; `x-cache` says whether a completed result came from the cache.
 */
export function respondWithJob<R>({ view, cache }: JobAnswer<R>, response: Response, location?: string): JobView<R> {
  const pending = view.status === 'queued' || view.status === 'active';
  if (cache) response.setHeader('x-cache', cache);
  response.status(pending ? HttpStatus.ACCEPTED : HttpStatus.OK);
  if (pending && location) response.setHeader('Location', location);
  return view;
}
