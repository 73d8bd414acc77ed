package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/cloudevent"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// ErrInvalidHops reports a hop count attribute that is not a non-negative
// integer.
var ErrInvalidHops = errors.New("invalid hop count")

// Hops returns the event's hop count: how many function replies led to it,
// 0 when the event has no HopsExtension attribute. The count is a ce_integer
// or, as binary HTTP and some JSON publishers carry it, a string of decimal
// digits. Anything else (a negative number, a sign, other characters, a
// value beyond the 32-bit range, another type) fails with ErrInvalidHops:
// read as 0, such a value would let a publisher, or a loop that mangles
// the attribute, reset the loop guard.
func Hops(ev *pb.CloudEvent) (int, error) {
	v, ok := ev.GetAttributes()[HopsExtension]
	if !ok {
		return 0, nil
	}
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeInteger:
		if a.CeInteger >= 0 {
			return int(a.CeInteger), nil
		}
		return 0, fmt.Errorf("%w: %s is %d", ErrInvalidHops, HopsExtension, a.CeInteger)
	case *pb.CloudEventAttributeValue_CeString:
		s := a.CeString
		if s != "" && len(s) <= 10 {
			n := int64(0)
			for i := 0; i < len(s); i++ {
				if s[i] < '0' || s[i] > '9' {
					n = -1
					break
				}
				n = n*10 + int64(s[i]-'0')
			}
			if n >= 0 && n <= 1<<31-1 {
				return int(n), nil
			}
		}
		return 0, fmt.Errorf("%w: %s is %s, want a non-negative integer", ErrInvalidHops, HopsExtension, strconv.Quote(s))
	}
	return 0, fmt.Errorf("%w: %s must be an integer", ErrInvalidHops, HopsExtension)
}

// refusedReply is a function's reply event that Switchyard does not publish:
// it is kept as a dead letter of the trigger whose attempt produced it, and
// that attempt is acknowledged all the same (see record).
type refusedReply struct {
	event  *pb.CloudEvent
	reason switchyardv1.DeadLetterReason
	detail string
}

// publishReplies publishes a function's reply events, each with the hop
// count of the event it answers plus one, and returns those it refused:
// replies that are not valid CloudEvents (REPLY_INVALID) and, when the hop
// count would exceed MaxHops or the parent's count is invalid, every reply
// (HOP_LIMIT), which ends reply loops. A refusal is final, so it is not an
// error: running the function again would only repeat its side effects and
// produce the same replies. The error reports a failure worth retrying (the
// store unreachable, a full queue, a stop); then nothing is refused.
func (r *Router) publishReplies(ctx context.Context, parent *pb.CloudEvent, replies []*pb.CloudEvent) ([]refusedReply, error) {
	hops, err := Hops(parent)
	if err == nil && hops >= r.cfg.MaxHops {
		err = fmt.Errorf("a reply would be hop %d, over the hop limit of %d (a reply loop?)", hops+1, r.cfg.MaxHops)
	}
	if err != nil {
		refused := make([]refusedReply, len(replies))
		for i, rep := range replies {
			refused[i] = refusedReply{rep, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_HOP_LIMIT, replyDetail(parent, i, len(replies), err.Error())}
		}
		return refused, nil
	}
	var refused []refusedReply
	out := make([]*pb.CloudEvent, 0, len(replies))
	sent := make([]int, 0, len(replies)) // index in replies of each out
	for i, rep := range replies {
		if err := cloudevent.Validate(rep); err != nil {
			refused = append(refused, refusedReply{rep, switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, replyDetail(parent, i, len(replies), protoFieldError(err))})
			continue
		}
		c := proto.Clone(rep).(*pb.CloudEvent)
		if c.Attributes == nil {
			c.Attributes = map[string]*pb.CloudEventAttributeValue{}
		}
		c.Attributes[HopsExtension] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: int32(hops + 1)}}
		out = append(out, c)
		sent = append(sent, i)
	}
	if len(out) == 0 {
		return refused, nil
	}
	if _, err := r.Publish(ctx, out); err != nil {
		var ie *InvalidEventsError
		if !errors.As(err, &ie) {
			return nil, fmt.Errorf("publish %d replies: %w", len(out), err)
		}
		// Every reply passed Validate, so the refusal is about the call
		// (more replies than a publish takes): it would come again.
		for _, i := range sent {
			refused = append(refused, refusedReply{replies[i], switchyardv1.DeadLetterReason_DEAD_LETTER_REASON_REPLY_INVALID, replyDetail(parent, i, len(replies), ie.Error())})
		}
	}
	return refused, nil
}

// replyDetail is a refused reply's reason_detail: which reply, to which
// event, and why.
func replyDetail(parent *pb.CloudEvent, i, n int, why string) string {
	return fmt.Sprintf("reply %d of %d to event %q from %q: %s", i+1, n, parent.GetId(), parent.GetSource(), why)
}

// protoFieldError renders a validation error of a reply with the attribute
// named as the protobuf CloudEvent names it (spec_version, not
// specversion): a function sends replies in that message, so that is the
// name its author looks for.
func protoFieldError(err error) string {
	var ce *cloudevent.Error
	if !errors.As(err, &ce) || ce.Attribute != cloudevent.AttrSpecVersion {
		return err.Error()
	}
	c := *ce
	c.Attribute = "spec_version"
	return c.Error()
}
