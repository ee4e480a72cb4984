import { InjectQueue } from '@nestjs/bullmq';
import { CacheInterceptor } from '@nestjs/cache-manager';
import { Body, Controller, Get, HttpCode, NotFoundException, Param, Post, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { ReportRequest } from '../../src/reports/report-request';
import type { AuthenticatedRequest } from './auth.guard';
import { AuthGuard } from './auth.guard';

/** POST enqueues (techniques/queues, producers); GET reads the job, its answer cached by CacheInterceptor (techniques/caching). */
@Controller('reports')
@UseGuards(AuthGuard)
export class ReportsController {
  constructor(@InjectQueue('jobs') private readonly queue: Queue) {}

  @Post()
  @HttpCode(202)
  async create(@Req() request: AuthenticatedRequest, @Body() body: ReportRequest) {
    const job = await this.queue.add('report', { tenantId: request.user.tenant, userId: request.user.sub, type: body.type, request: body });
    return { id: job.id, status: 'queued' };
  }

  @Get(':id')
  @UseInterceptors(CacheInterceptor)
  async findOne(@Req() request: AuthenticatedRequest, @Param('id') id: string) {
    const job = await this.queue.getJob(id);
    if (!job || job.data.tenantId !== request.user.tenant) throw new NotFoundException();
    const state = await job.getState();
    if (state === 'completed') return { id, status: 'completed', result: job.returnvalue };
    if (state === 'failed') return { id, status: 'failed', error: job.failedReason };
    return { id, status: state === 'active' ? 'active' : 'queued' };
  }
}
