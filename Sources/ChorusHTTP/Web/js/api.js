// Talking to Chorus: same-origin JSON requests on the cookie session, with the CSRF token on
// every request that changes something, and errors a person can understand.

const session = { csrf: null, auth: null, onExpired: null };

export class ApiError extends Error {
  constructor(status, error = {}, retryAfter = null) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.type = error.type || null;
    this.param = error.param || null;
    this.retryAfter = retryAfter;
  }
}

/** Remembers what `GET /v1/auth/me` or login said. */
export function setSession(me) {
  session.csrf = me?.csrf_token || null;
  session.auth = me?.auth || null;
}

export function authMode() { return session.auth; }

/** Called with the error when a signed-in request gets 401 (the session ended). */
export function onSessionExpired(fn) { session.onExpired = fn; }

async function send(method, path, body, { form = false, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && session.csrf && session.auth === 'session') headers['X-CSRF-Token'] = session.csrf;
  let payload;
  if (form) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { message: 'network', code: 'network_error' });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) {
    const retry = res.headers.get('Retry-After');
    throw new ApiError(res.status, json?.error || { message: text.slice(0, 200) }, retry ? Number(retry) : null);
  }
  return json;
}

/** A request; refreshes the CSRF token once if it was refused, reports an ended session. */
export async function api(method, path, body, options) {
  try {
    return await send(method, path, body, options);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403 && err.code === 'csrf_failed') {
      const me = await send('GET', '/v1/auth/me').catch(() => null);
      if (me) {
        setSession(me);
        return send(method, path, body, options);
      }
    }
    if (err instanceof ApiError && err.status === 401 && session.auth && !path.startsWith('/v1/auth/login')) {
      session.onExpired?.(err);
    }
    throw err;
  }
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body, options);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

export function me() { return send('GET', '/v1/auth/me'); }

export function upload(file) {
  const form = new FormData();
  form.append('file', file, file.name || 'pasted-image.png');
  return api('POST', '/v1/files', form, { form: true });
}

/** One sentence a person understands, for an ApiError, a task's error event, or anything else. */
export function humanError(err, model) {
  const status = err?.status ?? 0;
  const code = err?.code || '';
  const message = err?.message || '';
  const who = model ? `The model “${model}”` : 'The model';
  if (code === 'network_error') return 'Cannot reach Chorus. Check your connection and try again.';
  if (code === 'insufficient_quota') return 'Your token budget is used up. Ask an administrator to raise it.';
  if (status === 429 || code === 'rate_limit_exceeded') {
    const wait = err.retryAfter ?? (/(\d+)\s*s/.exec(message)?.[1]);
    return wait ? `Too many requests, try again in ${wait} s.` : 'Too many requests, try again in a moment.';
  }
  if (code === 'model_unavailable') return `${who} is still loading. Try again in a moment.`;
  if (status === 503) return 'Chorus is temporarily unavailable. Try again in a moment.';
  if (code.startsWith('upstream_timeout') || status === 504) return `${who} took too long to answer. Try again, or pick another model.`;
  if (code === 'upstream_error' || status === 502) return `${who} failed to answer${message ? ': ' + message : '.'}`;
  if (code === 'cancelled') return 'Stopped.';
  if (code === 'payload_too_large' || status === 413) return 'That is too large for this server (the file or message is over its size limit).';
  if (code === 'model_not_found') return `${who} does not exist on this server (any more). Pick another model.`;
  if (code === 'csrf_failed') return 'Your session needs refreshing. Reload the page and try again.';
  if (status === 401) return 'Your session has ended. Please sign in again.';
  if (status === 403) return message || 'You do not have permission to do that.';
  if (status === 404) return message || 'Not found. It may have been deleted.';
  if (status >= 500) return 'Chorus had an error. Try again in a moment.';
  return message || 'Something went wrong.';
}
