import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import { RETRY_AFTER_SECONDS } from './queue.constants';

/** Redis could not take the job: it was refused, not queued, so the caller must try again. */
export class QueueUnavailableError extends Error {
  /** The message is shown to API clients as it is: never put Redis's own error text in it. */
  constructor(
    message: string,
    readonly retryAfterSeconds = RETRY_AFTER_SECONDS,
  ) {
    super(message);
  }
}

/**
 * 503 with Retry-After, so clients and load balancers back off instead of hammering. The cause is logged once per
 * episode where it is seen (RedisModule's state lines and refusal episodes), not once per refused request here.
 */
@Catch(QueueUnavailableError)
export class QueueUnavailableFilter implements ExceptionFilter {
  catch(error: QueueUnavailableError, host: ArgumentsHost): void {
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(HttpStatus.SERVICE_UNAVAILABLE)
      .setHeader('Retry-After', String(error.retryAfterSeconds))
      .json({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: 'Service Unavailable', message: error.message });
  }
}
