import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse } from '@nestjs/swagger';
import type { Response } from 'express';
import { Authenticated, CurrentPrincipal } from '../auth';
import type { Principal } from '../auth';
import { ApiErrorResponse, ApiUnavailableResponse } from '../http';
import { JobView, respondWithJob, X_CACHE_HEADER } from '../job-results';
import { reorderIdSchema, reorderRequestSchema } from './reorder-request';
import type { ReorderRequest } from './reorder-request';
import { ReorderSuggestions, reorderViewSchemas } from './reorder-suggestions';
import { ReordersService } from './reorders.service';

/** Inputs are validated by the global SchemaValidationPipe against the schemas named here (400 listing every problem). */
@Controller('reorders')
@Authenticated()
@ApiUnavailableResponse()
export class ReordersController {
  constructor(private readonly reorders: ReordersService) {}

  @Post()
  @ApiOperation({
    summary: 'Ask for reorder suggestions',
    description: 'From stock on hand and on order, lead time and units sold per SKU. Computed by a worker; poll the Location or wait for reorder:completed. The same data from the same tenant gets the same id.',
  })
  @ApiResponse({
    status: 202,
    description: 'Queued (or already being computed).',
    standardSchema: reorderViewSchemas.pending,
    headers: { Location: { description: 'Where to GET the suggestions: /reorders/{id}.', schema: { type: 'string' } } },
  })
  @ApiResponse({ status: 200, description: 'The same data was already computed: here are the suggestions.', standardSchema: reorderViewSchemas.completed, headers: X_CACHE_HEADER })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body({ schema: reorderRequestSchema }) request: ReorderRequest,
    @Res({ passthrough: true }) response: Response,
  ): Promise<JobView<ReorderSuggestions>> {
    const answer = await this.reorders.submit(principal, request);
    return respondWithJob(answer, response, `/reorders/${answer.view.id}`);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Read reorder suggestions', description: 'Kept for 7 days, or until DELETE /reorders.' })
  @ApiResponse({ status: 200, description: 'Completed (with the suggestions) or failed (with the reason).', standardSchema: reorderViewSchemas.finished, headers: X_CACHE_HEADER })
  @ApiResponse({ status: 202, description: 'Still queued or being computed: ask again.', standardSchema: reorderViewSchemas.pending })
  @ApiErrorResponse(404, "No such reorder for the caller's tenant (another tenant's answers the same), or discarded.")
  async get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', { schema: reorderIdSchema }) id: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<JobView<ReorderSuggestions>> {
    return respondWithJob(await this.reorders.get(principal, id), response);
  }

  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: "Discard the tenant's suggestions", description: 'After a stock count: every suggestion computed so far answers 404 from now on, on every instance.' })
  @ApiResponse({ status: 204, description: 'Discarded.' })
  discardAll(@CurrentPrincipal() principal: Principal): Promise<void> {
    return this.reorders.discardAll(principal);
  }
}
