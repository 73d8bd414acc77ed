// Conversion between the CloudEvents Protobuf Format message that the
// function contract carries (io.cloudevents.v1.CloudEvent, as
// @grpc/proto-loader decodes it with the options in function.ts) and the
// CloudEvents JS SDK's CloudEvent.
//
// What does not survive the trip, because the SDK's event has no place for it:
//   - the attribute types URI, URI-reference, Binary and Timestamp of
//     extensions: the SDK event holds them as their canonical strings
//     (Binary as base64, Timestamp as RFC 3339), and they travel back as
//     strings (Switchyard's filters compare canonical strings, so triggers
//     match them alike);
//   - the type URL of protobuf data (proto_data): the handler gets the bytes;
//   - JSON data as bytes: JSON data becomes the parsed value (as the SDK's own
//     HTTP binding does) and is encoded again with JSON.stringify, so white
//     space and number spelling ("1.50") may change. Keep the data a string
//     (it is, when the text is not a JSON object or array) for byte-exact
//     pass-through.
// The SDK's constructor also fills in `time` (now) and `id` (a UUID) when
// they are absent; Switchyard always sends an id.

import { CloudEvent } from 'cloudevents';

import type { Timestamp, Timestamp__Output } from './gen/google/protobuf/Timestamp';
import type { CloudEvent as PbEvent, CloudEvent__Output as PbEventOut } from './gen/io/cloudevents/v1/CloudEvent';
import type {
  CloudEventAttributeValue as PbValue,
  CloudEventAttributeValue__Output as PbValueOut,
} from './gen/io/cloudevents/v1/CloudEventAttributeValue';

/** An event as the handler sees it: data is a JSON value, a string or bytes. */
export type Event = CloudEvent<unknown>;

/** fromProto converts an event received from Switchyard into an SDK event. */
export function fromProto(pb: PbEventOut): Event {
  const attrs: Record<string, unknown> = {
    id: pb.id,
    source: pb.source,
    specversion: pb.spec_version,
    type: pb.type,
  };
  for (const [name, value] of Object.entries(pb.attributes)) {
    attrs[name] = attributeValue(name, value);
  }
  const contentType = typeof attrs.datacontenttype === 'string' ? attrs.datacontenttype : undefined;
  switch (pb.data) {
    case 'text_data':
      attrs.data = isJSON(contentType) ? parseJSONContainer(pb.text_data ?? '') : pb.text_data;
      break;
    case 'binary_data': {
      const bytes = pb.binary_data ?? Buffer.alloc(0);
      attrs.data = isJSON(contentType) ? parseJSONContainer(bytes.toString('utf8'), bytes) : bytes;
      break;
    }
    case 'proto_data':
      attrs.datacontenttype ??= 'application/protobuf';
      attrs.data = pb.proto_data?.value ?? Buffer.alloc(0);
      break;
  }
  // Not strict: Switchyard has validated the event; the SDK's own checks
  // (extension names, its schema) would only refuse events the bus accepts.
  return new CloudEvent(attrs, false);
}

/** toProto converts an SDK event (a reply, say) into the protobuf format. */
export function toProto(ev: Event): PbEvent {
  const out: PbEvent = {
    id: ev.id,
    source: ev.source,
    spec_version: ev.specversion,
    type: ev.type,
    attributes: {},
  };
  const attributes: Record<string, PbValue> = {};
  for (const [name, value] of Object.entries(ev)) {
    if (value === undefined || skipped.has(name)) {
      continue;
    }
    attributes[name] = protoValue(name, value);
  }
  const data = ev.data;
  if (data === undefined) {
    // no data
  } else if (ArrayBuffer.isView(data)) {
    out.binary_data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  } else if (typeof data === 'string') {
    out.text_data = data;
  } else {
    out.text_data = JSON.stringify(data);
    attributes.datacontenttype ??= { ce_string: 'application/json' };
  }
  out.attributes = attributes;
  return out;
}

// Members of the SDK event that are not attributes of the protobuf map.
const skipped = new Set(['id', 'source', 'specversion', 'type', 'data', 'data_base64', 'schemaurl', 'datacontentencoding']);

function attributeValue(name: string, v: PbValueOut): unknown {
  switch (v.attr) {
    case 'ce_boolean':
      return v.ce_boolean;
    case 'ce_integer':
      return v.ce_integer;
    case 'ce_string':
      return v.ce_string;
    case 'ce_uri':
      return v.ce_uri;
    case 'ce_uri_ref':
      return v.ce_uri_ref;
    case 'ce_bytes':
      return (v.ce_bytes ?? Buffer.alloc(0)).toString('base64');
    case 'ce_timestamp':
      return v.ce_timestamp ? rfc3339(v.ce_timestamp) : undefined;
  }
  throw new TypeError(`attribute ${name} has no value`);
}

function protoValue(name: string, v: unknown): PbValue {
  switch (name) {
    case 'time':
      return { ce_timestamp: timestamp(String(v)) };
    case 'dataschema':
      return { ce_uri: String(v) };
    case 'datacontenttype':
    case 'subject':
      return { ce_string: String(v) };
  }
  if (typeof v === 'boolean') {
    return { ce_boolean: v };
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
    return { ce_integer: v };
  }
  if (typeof v === 'string' || typeof v === 'number') {
    return { ce_string: String(v) };
  }
  if (v instanceof Date) {
    return { ce_timestamp: timestamp(v.toISOString()) };
  }
  if (ArrayBuffer.isView(v)) {
    return { ce_bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
  }
  throw new TypeError(`extension ${name}: a ${typeof v} has no CloudEvents type`);
}

/** rfc3339 formats a protobuf Timestamp, keeping its nanoseconds. */
export function rfc3339(ts: Timestamp__Output): string {
  const whole = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  const frac = ts.nanos ? '.' + String(ts.nanos).padStart(9, '0').replace(/0+$/, '') : '';
  return `${whole}${frac}Z`;
}

/** timestamp parses an RFC 3339 time into a protobuf Timestamp, to the nanosecond. */
export function timestamp(s: string): Timestamp {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s.toUpperCase());
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    throw new TypeError(`time ${JSON.stringify(s)} is not an RFC 3339 timestamp`);
  }
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/** isJSON reports whether a media type is JSON (application/json, text/json, +json). */
export function isJSON(contentType: string | undefined): boolean {
  const mt = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return mt === 'application/json' || mt === 'text/json' || mt.endsWith('+json');
}

// parseJSONContainer returns the JSON object or array the text holds, else
// the text itself (or the bytes, when given): a JSON string or number would
// otherwise come back from toProto as different text.
function parseJSONContainer(text: string, bytes?: Buffer): unknown {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null) {
      return v;
    }
  } catch {
    // not JSON after all: hand over what arrived
  }
  return bytes ?? text;
}
