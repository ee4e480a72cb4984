import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import { RETRY_AFTER_SECONDS } from './queue.constants';

/** Redis could not take the job: it was refused, not queued, so the caller must try again. */
export class QueueUnavailableError extends Error {}

/** 503 with Retry-After, so clients and load balancers back off instead of hammering. */
@Catch(QueueUnavailableError)
export class QueueUnavailableFilter implements ExceptionFilter {
  catch(error: QueueUnavailableError, host: ArgumentsHost): void {
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(HttpStatus.SERVICE_UNAVAILABLE)
      .setHeader('Retry-After', String(RETRY_AFTER_SECONDS))
      .json({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: 'Service Unavailable', message: error.message });
  }
}
