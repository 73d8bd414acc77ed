package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
)

type eventService struct {
	switchyardv1.UnimplementedEventServiceServer
	r             *router.Router
	maxEventBytes int
}

// checkSize refuses events larger than the limit, naming them as the
// request does (root "event" or "events").
func (s *eventService) checkSize(evs []*pb.CloudEvent, root string) error {
	for i, ev := range evs {
		if n := proto.Size(ev); n > s.maxEventBytes {
			field := root
			if root == "events" {
				field = fmt.Sprintf("events[%d]", i)
			}
			return invalidField(field, "event is larger than the limit (%d bytes, limit %d)", n, s.maxEventBytes)
		}
	}
	return nil
}

// publishStatus maps an error of router.Publish to the status of a publish
// RPC whose events are named from root ("event", "events").
func publishStatus(err error, root string, n int) error {
	var ie *router.InvalidEventsError
	if errors.As(err, &ie) {
		return eventsStatus(ie, root, n)
	}
	return StatusFor(err)
}

func (s *eventService) Publish(ctx context.Context, req *switchyardv1.PublishRequest) (*switchyardv1.PublishResponse, error) {
	if req.GetEvent() == nil {
		return nil, invalidField("event", "required")
	}
	evs := []*pb.CloudEvent{req.GetEvent()}
	if err := s.checkSize(evs, "event"); err != nil {
		return nil, err
	}
	if d := authorizePublish(caller(ctx), evs, false); d != nil {
		return nil, d.status()
	}
	res, err := s.r.Publish(ctx, evs)
	if err != nil {
		return nil, publishStatus(err, "event", 1)
	}
	return &switchyardv1.PublishResponse{Triggers: res.Triggers[0]}, nil
}

func (s *eventService) PublishBatch(ctx context.Context, req *switchyardv1.PublishBatchRequest) (*switchyardv1.PublishBatchResponse, error) {
	if err := s.checkSize(req.GetEvents(), "events"); err != nil {
		return nil, err
	}
	if d := authorizePublish(caller(ctx), req.GetEvents(), true); d != nil {
		return nil, d.status()
	}
	res, err := s.r.Publish(ctx, req.GetEvents())
	if err != nil {
		return nil, publishStatus(err, "events", len(req.GetEvents()))
	}
	return &switchyardv1.PublishBatchResponse{Accepted: int32(len(req.GetEvents())), Routed: int32(res.Routed)}, nil
}
