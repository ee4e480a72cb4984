import KeyvRedis from '@keyv/redis';
import { BullModule } from '@nestjs/bullmq';
import { CacheModule } from '@nestjs/cache-manager';
import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { KeyvCacheableMemory } from 'cacheable';
import type { CacheManagerOptions } from '@nestjs/cache-manager';
import { Keyv } from 'keyv';
import { EventsGateway } from './events.gateway';
import { ReportProcessor } from './report.processor';
import { ReportsController } from './reports.controller';

/**
 * The docs' recipes put together: BullModule.forRoot with the Redis URL and one queue, CacheModule with a memory
 * and a @keyv/redis store (techniques/caching, "Using alternative Cache stores"), JwtModule for the docs'
 * AuthGuard. RECIPE_ROLE=web leaves the consumer out (a web process); worker and all include it.
 */
@Module({
  imports: [
    BullModule.forRoot({ connection: { url: process.env.REDIS_URL } }),
    BullModule.registerQueue({ name: 'jobs' }),
    CacheModule.registerAsync({
      useFactory: async () => {
        return {
          stores: [
            new Keyv({
              store: new KeyvCacheableMemory({ ttl: 60000, lruSize: 5000 }),
            }),
            new KeyvRedis(process.env.REDIS_URL),
            // The docs' code does not type-check in a CommonJS build: keyv is typed once from its CommonJS and
            // once from its ES module declarations (the same class at run time).
          ] as unknown as CacheManagerOptions['stores'],
        };
      },
    }),
    JwtModule.register({ global: true, secret: process.env.JWT_SECRET }),
  ],
  controllers: [ReportsController],
  providers: [EventsGateway, ...(process.env.RECIPE_ROLE === 'web' ? [] : [ReportProcessor])],
})
export class AppModule {}
