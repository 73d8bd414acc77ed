// A TransportFunction for the CloudEvents JS SDK's emitterFor that publishes
// to Switchyard's HTTP endpoint (POST /events) and does two things the SDK's
// own httpTransport does not:
//
//   - It looks at the status. httpTransport resolves with the body and the
//     headers of any answer, 400 and 429 included, and no status: an event
//     refused as invalid, or pushed back because a trigger's queue is full,
//     looks sent. Here a 202 resolves (with Switchyard's answer), 429 and 503
//     are retried after the delay Switchyard asks for, and every other status
//     rejects with the problem document (RFC 9457) Switchyard sent.
//   - It percent-encodes the ce-* header values of binary mode, as the
//     CloudEvents HTTP binding requires. The SDK writes them raw; Switchyard
//     (following the binding) percent-decodes and unquotes them, so a raw
//     value holding "%41" or '"' arrives changed, and Node refuses to send a
//     header holding characters beyond Latin-1.

import type { Message, TransportFunction } from 'cloudevents';

/** Accepted is Switchyard's answer to a publish: events taken, and routed to a trigger. */
export interface Accepted {
  accepted: number;
  routed: number;
}

/** Problem is an RFC 9457 problem document, as Switchyard sends them. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: { index?: number; attribute?: string; field?: string; detail: string }[];
  retry_after_seconds?: number;
}

/** PublishError is a publish Switchyard did not accept. */
export class PublishError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'PublishError';
  }

  /** pushedBack is true for a full queue (429) or an unreachable store (503): try again later. */
  get pushedBack(): boolean {
    return this.status === 429 || this.status === 503;
  }
}

export interface TransportOptions {
  /** Retries after a 429 or 503 (default 3). */
  retries?: number;
  /** Called before each retry with the delay about to be waited. */
  onRetry?: (err: PublishError, delayMs: number) => void;
}

/** switchyardTransport returns a TransportFunction posting to url (…/events). */
export function switchyardTransport(url: string, opts: TransportOptions = {}): TransportFunction {
  const retries = opts.retries ?? 3;
  return async (message: Message): Promise<Accepted> => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.headers)) {
      if (value === undefined) {
        continue;
      }
      headers[name] = name.toLowerCase().startsWith('ce-') ? encodeHeaderValue(String(value)) : String(value);
    }
    // The SDK's binary mode hands over a string, or the bytes of binary data.
    const body = typeof message.body === 'string' || message.body === undefined ? message.body : Uint8Array.from(message.body as Buffer);
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(url, { method: 'POST', headers, body });
      const text = await res.text();
      if (res.status === 202 || res.ok) {
        return JSON.parse(text) as Accepted;
      }
      const err = problemError(res, text);
      if (!err.pushedBack || attempt >= retries) {
        throw err;
      }
      const delayMs = retryDelay(res, err.problem);
      opts.onRetry?.(err, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  };
}

/**
 * encodeHeaderValue percent-encodes an attribute value for a ce-* header
 * (CloudEvents HTTP binding, 3.1.3.2): space, '"', '%' and every byte
 * outside printable ASCII of the value's UTF-8 encoding become %XX.
 */
export function encodeHeaderValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const plain = byte > 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x25;
    out += plain ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function problemError(res: Response, text: string): PublishError {
  let problem: Problem | undefined;
  try {
    problem = JSON.parse(text) as Problem;
  } catch {
    problem = undefined;
  }
  const why = problem?.errors?.map((e) => e.detail).join('; ') || problem?.detail || problem?.title || text || res.statusText;
  return new PublishError(res.status, problem, `HTTP ${res.status}: ${why}`);
}

// retryDelay prefers the problem's exact delay to Retry-After, which is in
// whole seconds.
function retryDelay(res: Response, problem: Problem | undefined): number {
  if (problem?.retry_after_seconds !== undefined && problem.retry_after_seconds > 0) {
    return Math.ceil(problem.retry_after_seconds * 1000);
  }
  const header = Number(res.headers.get('retry-after'));
  return Number.isFinite(header) && header > 0 ? header * 1000 : 1000;
}
