// Publishes one CloudEvent to Switchyard over HTTP with the CloudEvents JS
// SDK (emitterFor, binary or structured mode) and the transport of
// transport.ts, which checks the answer and percent-encodes headers.
//
// Usage:
//   node dist/publish.js --type com.example.order.created --source /shop/node \
//     [--url http://127.0.0.1:8080/events] [--id ID] [--subject S] \
//     [--data '{"total": 150}' | --data-text TEXT [--content-type T]] \
//     [--ext name=value ...] [--mode binary|structured] [--retries N]
//
// --data is JSON (sent as application/json); --data-text is sent as it is,
// labelled text/plain unless --content-type says otherwise.
// Exit status, as `switchyard publish`'s: 0 accepted, 2 refused (the event
// is invalid: retrying cannot help), 3 still pushed back after the retries
// (a full queue, or the store unreachable), 1 anything else.

import { parseArgs } from 'node:util';

import { CloudEvent, HTTP, Mode, emitterFor } from 'cloudevents';

import { type Accepted, PublishError, switchyardTransport } from './transport';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080/events' },
      type: { type: 'string' },
      source: { type: 'string' },
      id: { type: 'string' },
      subject: { type: 'string' },
      data: { type: 'string' },
      'data-text': { type: 'string' },
      'content-type': { type: 'string' },
      ext: { type: 'string', multiple: true, default: [] },
      mode: { type: 'string', default: 'binary' },
      retries: { type: 'string', default: '3' },
    },
  });
  if (!values.type || !values.source) {
    console.error('publish: --type and --source are required');
    return 2;
  }
  if (values.mode !== 'binary' && values.mode !== 'structured') {
    console.error(`publish: --mode is binary or structured, not ${values.mode}`);
    return 2;
  }
  const attrs: Record<string, unknown> = { type: values.type, source: values.source };
  if (values.id !== undefined) attrs.id = values.id;
  if (values.subject !== undefined) attrs.subject = values.subject;
  if (values.data !== undefined) {
    attrs.datacontenttype = 'application/json';
    attrs.data = JSON.parse(values.data);
  } else if (values['data-text'] !== undefined) {
    attrs.datacontenttype = values['content-type'] ?? 'text/plain';
    attrs.data = values['data-text'];
  }
  for (const kv of values.ext) {
    const eq = kv.indexOf('=');
    if (eq <= 0) {
      console.error(`publish: --ext ${kv}: want name=value`);
      return 2;
    }
    attrs[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const ev = new CloudEvent<unknown>(attrs); // strict: the SDK validates it first

  const emit = emitterFor(
    switchyardTransport(values.url, {
      retries: Number(values.retries),
      onRetry: (err, ms) => console.error(`publish: pushed back (${err.message}); retrying in ${ms} ms`),
    }),
    { binding: HTTP, mode: values.mode === 'binary' ? Mode.BINARY : Mode.STRUCTURED },
  );
  try {
    const answer = (await emit(ev)) as Accepted;
    console.log(JSON.stringify({ id: ev.id, ...answer }));
    if (answer.routed === 0) {
      console.error('publish: accepted, but no trigger matched the event: it was dropped');
    }
    return 0;
  } catch (err) {
    if (err instanceof PublishError) {
      console.error(`publish: ${err.pushedBack ? 'pushed back' : 'refused'}: ${err.message}`);
      return err.pushedBack ? 3 : 2;
    }
    console.error(`publish: ${String(err)}`);
    return 1;
  }
}

main().then((code) => process.exit(code));
