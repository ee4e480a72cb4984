// What reorders sends over the realtime namespace, declared where RealtimeService's types look for it.
declare module '../presence' {
  interface ServerEvents {
    /** To the author's sockets once their suggestions are ready: fetch them with GET /reorders/:id. */
    'reorder:completed': { readonly id: string };
  }
}

export {};
