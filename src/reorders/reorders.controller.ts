import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import { CurrentPrincipal, JwtAuthGuard } from '../auth';
import type { Principal } from '../auth';
import { JobView, respondWithJob } from '../job-results';
import { reorderRequestSchema } from './reorder-request';
import type { ReorderRequest } from './reorder-request';
import type { ReorderSuggestions } from './reorder-suggestions';
import { ReordersService } from './reorders.service';

@Controller('reorders')
@UseGuards(JwtAuthGuard)
export class ReordersController {
  constructor(private readonly reorders: ReordersService) {}

  /** 202 + Location while the suggestions are computed; 200 with them when the same data was already computed. */
  @Post()
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body({ schema: reorderRequestSchema }) request: ReorderRequest,
    @Res({ passthrough: true }) response: Response,
  ): Promise<JobView<ReorderSuggestions>> {
    const answer = await this.reorders.submit(principal, request);
    return respondWithJob(answer, response, `/reorders/${answer.view.id}`);
  }

  @Get(':id')
  async get(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Res({ passthrough: true }) response: Response): Promise<JobView<ReorderSuggestions>> {
    return respondWithJob(await this.reorders.get(principal, id), response);
  }

  /** 204: the tenant's suggestions so far are discarded (say, after a stock count); post again for fresh ones. */
  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  discardAll(@CurrentPrincipal() principal: Principal): Promise<void> {
    return this.reorders.discardAll(principal);
  }
}
