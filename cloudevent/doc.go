// Package cloudevent is Switchyard's CloudEvents 1.0 codec over the official
// protobuf message (io.cloudevents.v1.CloudEvent, the type every Switchyard
// component passes around and stores): validation of context attributes, the
// JSON event format (single events and batches), the HTTP protocol binding in
// binary, structured and batch content modes, and attribute accessors used by
// the filters.
//
// It imports nothing from Switchyard and no network clients; every parser in
// it has a fuzz test.
//
// # In-memory conventions
//
// id, source, specversion and type live in the message fields; every other
// attribute lives in the attributes map with its typed variant: time is a
// ce_timestamp, dataschema a ce_uri, datacontenttype and subject ce_string.
// Extensions read from JSON are ce_string, ce_boolean or ce_integer by JSON
// type; extensions read from HTTP headers are ce_string. Text data
// (including JSON) is kept in text_data, other data in binary_data; an empty
// payload is no data. datacontenttype is never defaulted.
//
// # Entry points
//
//   - Validate, ValidateBatch: CloudEvents 1.0 rules on a *pb.CloudEvent.
//   - DecodeStructured, DecodeBatch, EncodeStructured, EncodeBatch: the JSON
//     event format and JSON batch format.
//   - ReadRequest, WriteBinary: the HTTP protocol binding.
//   - Attribute, AttributeValueString, Data: accessors.
//
// Every error is an *Error whose Kind is one of the sentinel errors
// (ErrMalformed, ErrMissingAttribute, ...), or for batches an errors.Join of
// such errors, each naming the event by its Index.
package cloudevent
