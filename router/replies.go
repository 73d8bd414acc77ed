package router

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/router/cloudevent"
)

// Hops returns the event's hop count: how many function replies led to it.
func Hops(ev *pb.CloudEvent) int {
	v, ok := cloudevent.Attribute(ev, HopsExtension)
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(v)
	return n
}

// publishReplies publishes a function's reply events, each with the hop
// count of the event it answers plus one. Replies that would exceed MaxHops
// are refused (logged and counted), which ends reply loops.
func (r *Router) publishReplies(ctx context.Context, parent *pb.CloudEvent, replies []*pb.CloudEvent) error {
	hops := Hops(parent) + 1
	if hops > r.cfg.MaxHops {
		r.metrics.repliesRefused.Add(float64(len(replies)))
		r.log.Warn("reply events refused: hop limit reached (a reply loop?)", "event_id", parent.GetId(), "hops", hops, "max_hops", r.cfg.MaxHops, "count", len(replies))
		return nil
	}
	out := make([]*pb.CloudEvent, len(replies))
	for i, rep := range replies {
		c := proto.Clone(rep).(*pb.CloudEvent)
		if c.Attributes == nil {
			c.Attributes = map[string]*pb.CloudEventAttributeValue{}
		}
		c.Attributes[HopsExtension] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: int32(hops)}}
		out[i] = c
	}
	if _, err := r.Publish(ctx, out); err != nil {
		return fmt.Errorf("publish %d replies: %w", len(out), err)
	}
	return nil
}
