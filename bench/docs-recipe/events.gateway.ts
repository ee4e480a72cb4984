import { JwtService } from '@nestjs/jwt';
import { OnGatewayConnection, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import { Server, Socket } from 'socket.io';

/** A gateway as the NestJS docs show (websockets/gateways): the server, and each socket in its user's room. */
@WebSocketGateway()
export class EventsGateway implements OnGatewayConnection {
  @WebSocketServer()
  server: Server;

  constructor(private jwtService: JwtService) {}

  async handleConnection(client: Socket): Promise<void> {
    try {
      const payload = await this.jwtService.verifyAsync(client.handshake.auth.token, { secret: process.env.JWT_SECRET });
      await client.join(`user:${payload.tenant}:${payload.sub}`);
    } catch {
      client.disconnect();
    }
  }
}
