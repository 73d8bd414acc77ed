package dlq

import (
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// Decode turns a stored entry of trigger into the API's dead letter: its
// story with the event, named "<trigger>/<entry id>", its dead time the
// entry's when the story has none. An entry that does not decode is a
// *CorruptError.
func Decode(trigger string, e Entry) (*switchyardv1.DeadLetter, error) {
	dl := &switchyardv1.DeadLetter{}
	if err := proto.Unmarshal(e.Letter, dl); err != nil {
		return nil, &CorruptError{Trigger: trigger, ID: e.ID, Err: err}
	}
	ev := &pb.CloudEvent{}
	if err := proto.Unmarshal(e.Event, ev); err != nil {
		return nil, &CorruptError{Trigger: trigger, ID: e.ID, Event: true, Err: err}
	}
	dl.Id = trigger + "/" + e.ID
	dl.Trigger = trigger
	dl.Event = ev
	if dl.DeadTime == nil {
		dl.DeadTime = timestamppb.New(EntryTime(e.ID))
	}
	return dl, nil
}
