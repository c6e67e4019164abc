// The admin API with the admin token: asked for on a 401 (ADMIN_TOKEN set on the server), kept in
// sessionStorage for this tab, sent as Authorization: Bearer.
import { $ } from './dom.js';

const KEY = 'mock-smdp-admin-token';
let asking;

export const token = () => sessionStorage.getItem(KEY);

export function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** Shows the token dialog (one at a time); resolves when a token was entered. */
export function askToken(reason) {
  asking ??= new Promise((resolve) => {
    const dialog = $('#token-dialog');
    const input = $('#token-input');
    if (reason) $('#token-reason').textContent = reason;
    input.value = '';
    dialog.addEventListener('close', function done() {
      dialog.removeEventListener('close', done);
      const v = input.value.trim();
      if (v) sessionStorage.setItem(KEY, v);
      $('#token-button').hidden = false;
      asking = undefined;
      resolve(v);
    });
    dialog.showModal();
    input.focus();
  });
  return asking;
}

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** fetch() with the token; a 401 asks for the token and tries again. */
export async function request(method, path, body, { raw = false } = {}) {
  for (;;) {
    const headers = { ...authHeaders(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
    const res = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined });
    if (res.status === 401) {
      await askToken(token() ? 'The server refused this token. Enter the admin token (ADMIN_TOKEN).' : undefined);
      continue;
    }
    if (raw) {
      if (!res.ok) throw new ApiFailure(res.status, await res.json().catch(() => null));
      return res;
    }
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) throw new ApiFailure(res.status, json);
    return json;
  }
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body ?? {});
export const del = (path) => request('DELETE', path);

/** An object URL for a resource that needs the token (an <img> cannot send headers). */
export async function blobUrl(path) {
  const res = await request('GET', path, undefined, { raw: true });
  return URL.createObjectURL(await res.blob());
}

/** Saves a resource as a file. */
export async function download(path, filename) {
  const url = await blobUrl(path);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
