package dlq

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// A dead letter's story (switchyard.v1.DeadLetter without the event) is
// also the event's attempt history while it lives: every failed attempt is
// appended to it and stored with the event; when the event dies, the story
// is completed (Bury) and goes into the dead-letter queue; a replay puts it
// back as the history, dead_time still set, which is how the next life
// knows it is one (History, Round).

// History decodes the history an event carries (nil or unreadable: none)
// for a new attempt to be added. The story of an earlier life (the event
// was replayed: dead_time set) starts the next one: replays counts it, and
// the death's time and reason are cleared; its attempts stay, numbered by
// round.
func History(b []byte) *switchyardv1.DeadLetter {
	hist := &switchyardv1.DeadLetter{}
	if b != nil {
		if err := proto.Unmarshal(b, hist); err != nil {
			hist = &switchyardv1.DeadLetter{}
		}
	}
	if hist.GetDeadTime() != nil {
		hist.Replays++
		hist.DeadTime, hist.Reason, hist.ReasonDetail = nil, 0, ""
	}
	return hist
}

// Death is how an event died: the last part of its story.
type Death struct {
	Trigger, Target string
	Reason          switchyardv1.DeadLetterReason
	Detail          string
	Time            time.Time
	TraceID         string
}

// Bury completes hist with the death and encodes it (Encode).
func Bury(hist *switchyardv1.DeadLetter, d Death) ([]byte, error) {
	hist.Trigger = d.Trigger
	hist.Target = d.Target
	hist.Reason = d.Reason
	hist.ReasonDetail = d.Detail
	hist.DeadTime = timestamppb.New(d.Time)
	hist.TraceId = d.TraceID
	return Encode(hist)
}

// Encode marshals a story. Marshalling fails only on a string that is not
// valid UTF-8 (a target's message, say); such strings are then repaired
// (each invalid sequence becomes U+FFFD) and the story marshalled again, so
// that a history is never lost to one bad byte. The error is returned only
// if that fails too.
func Encode(dl *switchyardv1.DeadLetter) ([]byte, error) {
	b, err := proto.Marshal(dl)
	if err == nil {
		return b, nil
	}
	fixed := proto.Clone(dl).(*switchyardv1.DeadLetter)
	fixed.Event = nil // events are stored apart; never part of a story
	valid := func(s *string) { *s = strings.ToValidUTF8(*s, "\uFFFD") }
	valid(&fixed.Id)
	valid(&fixed.Trigger)
	valid(&fixed.Target)
	valid(&fixed.ReasonDetail)
	valid(&fixed.TraceId)
	for _, a := range fixed.Attempts {
		valid(&a.Code)
		valid(&a.Message)
	}
	b, err2 := proto.Marshal(fixed)
	if err2 != nil {
		return nil, fmt.Errorf("encode dead letter: %w", errors.Join(err, err2))
	}
	return b, nil
}

// Field numbers of switchyard.v1.DeadLetter that Round reads.
var (
	letterDeadTime = fieldNumber(&switchyardv1.DeadLetter{}, "dead_time")
	letterReplays  = fieldNumber(&switchyardv1.DeadLetter{}, "replays")
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// Round returns the life of an event with the given history, as
// InvokeRequest.round reports it: 0 until the event is first
// dead-lettered, n after its n-th replay. replayed is set when a replay put
// the event back (store.Claimed.Since). It reads the history the way
// History and Bury write it: a replay puts the story back, dead_time still
// set and replays counting the replays before this one; the first failure
// after the replay increments replays and clears dead_time (History). It is
// scanned rather than decoded because every retry pays for it; a first
// attempt (no history) pays nothing.
func Round(history []byte, replayed bool) int {
	if history == nil {
		if replayed {
			return 1 // a replayed event whose dead letter had no story
		}
		return 0
	}
	var replays uint64
	dead := false
	b := history
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		switch {
		case num == letterReplays && typ == protowire.VarintType:
			replays, n = protowire.ConsumeVarint(b)
		case num == letterDeadTime && typ == protowire.BytesType:
			dead = true
			_, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			break
		}
		b = b[n:]
	}
	round := int(int32(replays)) // an int32 field, as proto.Unmarshal reads it
	if dead {
		round++
	}
	if round == 0 && replayed {
		round = 1
	}
	return round
}
