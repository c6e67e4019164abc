// The live feed (/admin/console/events, Server-Sent Events) read with fetch() and a stream reader,
// because EventSource cannot send the Authorization header. Reconnects after a drop; every
// (re)connection starts with a `hello`, after which the page reloads what it shows.
import { authHeaders, askToken, token } from './api.js';

export function connectLive({ onMessage, onStatus }) {
  let stopped = false;
  let backoff = 1000;
  const run = async () => {
    while (!stopped) {
      try {
        onStatus('connecting');
        const res = await fetch('/admin/console/events', { headers: { accept: 'text/event-stream', ...authHeaders() } });
        if (res.status === 401) {
          await askToken(token() ? 'The server refused this token. Enter the admin token (ADMIN_TOKEN).' : undefined);
          continue;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        backoff = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (!data.length) continue;
            if (event === 'hello') onStatus('live');
            try {
              onMessage(event, JSON.parse(data.join('\n')));
            } catch (err) {
              console.error('live message', err);
            }
          }
        }
      } catch (err) {
        console.warn('live feed', err);
      }
      onStatus('offline');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15_000);
    }
  };
  run();
  return () => { stopped = true; };
}
