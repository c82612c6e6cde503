// The page-wide event hub: one live stream of all runs, fanned out to whichever page is open.

import { LiveStream } from "./api.js";

const handlers = new Set();
let stream = null;

export const hub = {
  /** fn(evt) for every event; evt.type "resync" means: refetch, events may have been missed. */
  on(fn) {
    handlers.add(fn);
    return () => handlers.delete(fn);
  },

  emit(evt) {
    for (const fn of [...handlers]) {
      try {
        fn(evt);
      } catch (err) {
        console.error("event handler failed", err); // eslint-disable-line no-console
      }
    }
  },

  start() {
    if (stream) return;
    stream = new LiveStream({
      // the runs table needs no log lines; errors only keeps the all-runs stream light
      level: "error",
      onEvent: (evt) => hub.emit(evt),
      onOpen: (resumed) => {
        if (resumed) hub.emit({ type: "resync", reason: "reconnected" });
      },
      onGap: (evt) => hub.emit({ type: "resync", reason: evt.type }),
    }).start();
  },

  stop() {
    if (stream) stream.stop();
    stream = null;
  },

  restart() {
    hub.stop();
    hub.start();
  },
};
