import { DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '../config';
import { JOBS_QUEUE } from './queue.constants';

export const DASHBOARD_ROUTE = '/admin/queues';

/** bull-board at /admin/queues behind HTTP basic auth; not mounted at all (404) without ADMIN_USER/ADMIN_PASSWORD. */
@Module({})
export class QueueDashboardModule {
  static async register(config: AppConfig): Promise<DynamicModule> {
    if (!config.admin || config.appRole === 'worker') return { module: QueueDashboardModule };
    // Loaded only when enabled: bull-board's CommonJS build cannot require NestJS 12's ES modules under Jest.
    const [{ BullBoardModule }, { ExpressAdapter }, { BullMQAdapter }, { default: basicAuth }] = await Promise.all([
      import('@bull-board/nestjs'),
      import('@bull-board/express'),
      import('@bull-board/api/bullMQAdapter'),
      import('express-basic-auth'),
    ]);
    return {
      module: QueueDashboardModule,
      imports: [
        BullBoardModule.forRoot({
          route: DASHBOARD_ROUTE,
          adapter: ExpressAdapter,
          middleware: basicAuth({ users: { [config.admin.user]: config.admin.password }, challenge: true, realm: 'PharmaCare queues' }),
        }),
        BullBoardModule.forFeature({ name: JOBS_QUEUE, adapter: BullMQAdapter }),
      ],
    };
  }
}
