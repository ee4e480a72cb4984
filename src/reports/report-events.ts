// What reports sends over the realtime namespace, declared where RealtimeService's types look for it.
declare module '../presence' {
  interface ServerEvents {
    /** To the author's sockets once their report is completed: fetch it with GET /reports/:id. */
    'report:completed': { readonly id: string };
  }
}

export {};
