import { Injectable, NestMiddleware, NotFoundException } from '@nestjs/common';

/**
 * APP_ROLE=worker runs the features' job handlers, so their modules (and controllers) are loaded, but it serves
 * only what operators and Render need: every other route answers 404 as if it did not exist.
 */
@Injectable()
export class WorkerRoleRoutes implements NestMiddleware {
  static readonly served = ['health', 'health/live', 'metrics'];

  use(request: { method: string; path: string }): never {
    throw new NotFoundException(`Cannot ${request.method} ${request.path}`);
  }
}
