import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { GATEWAY_METADATA, GATEWAY_OPTIONS, MESSAGE_MAPPING_METADATA, MESSAGE_METADATA } from '@nestjs/websockets/constants';
import { PRESENCE_NAMESPACE } from './presence.constants';

interface GatewayOptions {
  readonly namespace?: unknown;
}

/**
 * The client events some gateway handles, read from the same @SubscribeMessage metadata Nest binds handlers
 * from, so a feature's gateway adds its events without a list to keep in step. Every gateway must be on the
 * realtime namespace: one on another namespace would skip the handshake's JWT check and the event guard.
 */
@Injectable()
export class ClientEventRegistry implements OnApplicationBootstrap {
  private known?: ReadonlySet<string>;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  /** At boot, so a gateway on another namespace fails it, before any socket can connect. */
  onApplicationBootstrap(): void {
    this.known = this.discover();
  }

  events(): ReadonlySet<string> {
    this.known ??= this.discover();
    return this.known;
  }

  private discover(): ReadonlySet<string> {
    const events = new Set<string>();
    for (const wrapper of this.discovery.getProviders()) {
      const type = wrapper.metatype;
      if (typeof type !== 'function' || !Reflect.getMetadata(GATEWAY_METADATA, type)) continue;
      const { namespace } = (Reflect.getMetadata(GATEWAY_OPTIONS, type) ?? {}) as GatewayOptions;
      if (namespace !== PRESENCE_NAMESPACE) {
        throw new Error(`${type.name} is a gateway on namespace ${String(namespace ?? '/')}, which has no authentication: declare it with @RealtimeGateway()`);
      }
      const prototype = type.prototype as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name];
        if (typeof handler === 'function' && Reflect.getMetadata(MESSAGE_MAPPING_METADATA, handler)) events.add(String(Reflect.getMetadata(MESSAGE_METADATA, handler)));
      }
    }
    return events;
  }
}
