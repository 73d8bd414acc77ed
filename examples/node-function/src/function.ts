// A Switchyard function in TypeScript. It serves the contract's unary
// FunctionService/Invoke (proto/switchyard/function/v1/function.proto) with
// @grpc/grpc-js and hands each event to a handler as a CloudEvents JS SDK
// event. What it does with an event, to show the outcomes:
//   - it prints one JSON line on standard output: the invocation's metadata,
//     how it came ("via": "unary" or "stream") and the event in the
//     CloudEvents JSON format;
//   - an event whose JSON data has "retry_ms": N is answered OUTCOME_RETRY
//     with retry_after N ms on its first attempt (its second attempt comes
//     at least N ms later);
//   - every other attempt is answered OUTCOME_ACK with one reply event,
//     "<type>.handled" with the same data and extensions, which Switchyard
//     publishes to the bus.
//
// With --stream it also serves InvokeStream, the contract's cheaper
// stream of invocations, which Switchyard then prefers. Without it grpc-js
// answers UNIMPLEMENTED for the stream and Switchyard delivers with unary
// calls (docs/functions/contract.md describes both).
//
// Usage: node dist/function.js [--listen 127.0.0.1:7071] [--stream]
// The address it listens on is printed on standard error (port 0 picks one).

import * as path from 'node:path';
import { parseArgs } from 'node:util';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { type Event, fromProto, rfc3339, toProto } from './convert';
import type { ProtoGrpcType } from './gen/function';
import type { Duration } from './gen/google/protobuf/Duration';
import type { FunctionServiceHandlers } from './gen/switchyard/function/v1/FunctionService';
import type { InvokeRequest__Output } from './gen/switchyard/function/v1/InvokeRequest';
import type { InvokeResponse } from './gen/switchyard/function/v1/InvokeResponse';
import type { InvokeStreamRequest__Output } from './gen/switchyard/function/v1/InvokeStreamRequest';
import type { StreamAnswer } from './gen/switchyard/function/v1/StreamAnswer';

// The loader options must be those `npm run gen` passes to
// proto-loader-gen-types (package.json), so that the generated types
// describe the objects grpc-js hands over and accepts. keepCase keeps the
// proto's field names (retry_after, idempotency_key): without it they are
// camel-cased (retryAfter), and a field under the other spelling is
// dropped without a word. The generated types turn such a slip into a
// compile error.
const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  // The repository's proto/ holds function.proto and cloudevent.proto (see
  // README.md for using them elsewhere).
  includeDirs: [process.env.SWITCHYARD_PROTO_DIR ?? path.resolve(__dirname, '../../../proto')],
};

/** Info is the invocation metadata Switchyard sends with the event. */
interface Info {
  attempt: number;
  round: number;
  trigger: string;
  idempotency_key: string;
  deadline?: string;
}

/** handle decides what becomes of one event. */
function handle(ev: Event, info: Info): InvokeResponse {
  const retryMs = askedRetry(ev.data);
  if (retryMs !== undefined && info.attempt === 1) {
    // OUTCOME_RETRY with retry_after: no google.rpc.Status to build.
    return { outcome: 'OUTCOME_RETRY', retry_after: duration(retryMs), reason: `asked to be retried after ${retryMs} ms` };
  }
  const reply = ev.cloneWith(
    { id: `${ev.id}.handled`, type: `${ev.type}.handled`, source: '/examples/node-function', time: new Date().toISOString() },
    false,
  );
  // Always say OUTCOME_ACK: an empty outcome acknowledges too, but so does a
  // misspelled one, and Switchyard cannot tell them apart.
  return { outcome: 'OUTCOME_ACK', replies: [toProto(reply)] };
}

/** Answer is one invocation's answer: a response, or a failed call's status. */
type Answer = { response: InvokeResponse } | { code: grpc.status; message: string };

/**
 * serve handles one invocation, whether it came as a unary call or on the
 * stream (via says which, for the printed line).
 */
function serve(req: InvokeRequest__Output, via: 'unary' | 'stream'): Answer {
  if (!req.event) {
    return { code: grpc.status.INVALID_ARGUMENT, message: 'request has no event' };
  }
  let ev: Event;
  try {
    ev = fromProto(req.event);
  } catch (err) {
    // A permanent code: Switchyard dead-letters the event with this message.
    return { code: grpc.status.INVALID_ARGUMENT, message: `cannot convert the event: ${String(err)}` };
  }
  const info: Info = {
    attempt: req.attempt,
    round: req.round,
    trigger: req.trigger,
    idempotency_key: req.idempotency_key,
    deadline: req.deadline ? rfc3339(req.deadline) : undefined,
  };
  let response: InvokeResponse;
  try {
    response = handle(ev, info);
  } catch (err) {
    // A retryable code: the event comes again after the trigger's backoff.
    return { code: grpc.status.INTERNAL, message: `handler failed: ${String(err)}` };
  }
  process.stdout.write(JSON.stringify({ ...info, via, received_ms: Date.now(), event: ev }) + '\n');
  return { response };
}

const invoke: FunctionServiceHandlers['Invoke'] = (call, callback) => {
  const a = serve(call.request, 'unary');
  if ('response' in a) {
    callback(null, a.response);
  } else {
    callback({ code: a.code, details: a.message });
  }
};

/**
 * invokeStream serves InvokeStream: every StreamCall of a request message
 * starts a call (invoke) or withdraws one (cancel); each call is answered
 * once, with its number, as it finishes. The handler here is synchronous,
 * but the shape is that of asynchronous ones: the calls running are kept by
 * number so that a cancel can stop one and its answer is then not sent.
 */
const invokeStream: FunctionServiceHandlers['InvokeStream'] = (stream) => {
  const running = new Map<string, AbortController>(); // by call number (a string: longs: String)
  let open = true;
  const answer = (a: StreamAnswer) => {
    if (open) {
      stream.write({ answers: [a] }); // answers may also be packed several to a message
    }
  };
  stream.on('data', (req: InvokeStreamRequest__Output) => {
    for (const c of req.calls) {
      if (c.kind === 'invoke' && c.invoke) {
        const invocation = c.invoke;
        running.set(c.call, new AbortController());
        // Run it after this message is read: calls run concurrently, and
        // reading never waits for a handler.
        setImmediate(() => {
          if (!running.delete(c.call)) {
            return; // withdrawn meanwhile
          }
          const a = serve(invocation, 'stream');
          answer('response' in a ? { call: c.call, response: a.response } : { call: c.call, code: a.code, message: a.message });
        });
      } else if (c.kind === 'cancel' && c.cancel) {
        // Switchyard stopped waiting (deadline passed): stop, do not answer.
        running.get(c.call)?.abort();
        running.delete(c.call);
      }
      // Any other kind is from a later version of the contract: ignore it.
    }
  });
  // Switchyard half-closes only once no call is open: end with OK.
  stream.on('end', () => {
    open = false;
    stream.end();
  });
  const stop = () => {
    open = false;
    running.forEach((ac) => ac.abort());
    running.clear();
  };
  stream.on('error', stop);
  stream.on('cancelled', stop);
};

function askedRetry(data: unknown): number | undefined {
  if (typeof data === 'object' && data !== null && 'retry_ms' in data) {
    const ms = (data as { retry_ms: unknown }).retry_ms;
    if (typeof ms === 'number' && Number.isInteger(ms) && ms > 0) {
      return ms;
    }
  }
  return undefined;
}

function duration(ms: number): Duration {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

function main(): void {
  const { values } = parseArgs({
    options: { listen: { type: 'string', default: '127.0.0.1:7071' }, stream: { type: 'boolean', default: false } },
  });
  const listen = values.listen;
  const def = protoLoader.loadSync('switchyard/function/v1/function.proto', loaderOptions);
  const proto = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;

  const server = new grpc.Server();
  const service = proto.switchyard.function.v1.FunctionService.service;
  if (values.stream) {
    server.addService(service, { Invoke: invoke, InvokeStream: invokeStream } satisfies FunctionServiceHandlers);
  } else {
    server.addService(service, { Invoke: invoke });
  }
  server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      console.error(`cannot listen on ${listen}: ${err.message}`);
      process.exit(1);
    }
    console.error(`node function listening on ${listen.slice(0, listen.lastIndexOf(':'))}:${port}`);
  });

  const stop = () => {
    // Finish the calls running (Switchyard retries what is cut short).
    const force = setTimeout(() => server.forceShutdown(), 10_000);
    server.tryShutdown(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main();
