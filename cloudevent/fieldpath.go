package cloudevent

import "strconv"

// ProtoField names, for the field violations of a google.rpc.BadRequest, the
// field of the protobuf CloudEvent (io.cloudevents.v1.CloudEvent) that holds
// the context attribute attr, as the proto spells it:
//
//   - id, source, specversion and type are message fields: "id", "source",
//     "spec_version", "type";
//   - every other attribute, optional core attributes and extensions alike,
//     is an entry of the attributes map: `attributes["subject"]`;
//   - "data" and "data_base64" (names of the JSON format) are the data oneof:
//     "data";
//   - "" (a problem with the whole event) is "".
//
// A gRPC API prefixes it with the path of the event in its request:
// `event.spec_version` for EventService/Publish,
// `events[3].attributes["subject"]` for the fourth event of PublishBatch.
func ProtoField(attr string) string {
	switch attr {
	case "":
		return ""
	case AttrID, AttrSource, AttrType:
		return attr
	case AttrSpecVersion:
		return "spec_version"
	case "data", "data_base64":
		return "data"
	}
	return "attributes[" + strconv.Quote(attr) + "]"
}
