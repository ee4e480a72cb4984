import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { BullBoardModule } from '@bull-board/nestjs';
import { DynamicModule, Module } from '@nestjs/common';
import basicAuth from 'express-basic-auth';
import type { AppConfig } from '../config';
import { JOBS_QUEUE } from './queue.constants';

export const DASHBOARD_ROUTE = '/admin/queues';

/** bull-board at /admin/queues behind HTTP basic auth; not mounted at all (404) without ADMIN_USER/ADMIN_PASSWORD. */
@Module({})
export class QueueDashboardModule {
  static forConfig(config: AppConfig): DynamicModule {
    if (!config.admin || config.appRole === 'worker') return { module: QueueDashboardModule };
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
