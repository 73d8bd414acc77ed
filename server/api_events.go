package server

import (
	"context"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/cloudevent"
)

type eventService struct {
	switchyardv1.UnimplementedEventServiceServer
	r             *router.Router
	maxEventBytes int
}

func (s *eventService) checkSize(evs []*pb.CloudEvent) error {
	for i, ev := range evs {
		if n := proto.Size(ev); n > s.maxEventBytes {
			e := &cloudevent.Error{Kind: cloudevent.ErrTooLarge, Index: i, Detail: "event is larger than the limit"}
			if len(evs) == 1 {
				e.Index = -1
			}
			return status.Errorf(codes.InvalidArgument, "%v (%d bytes, limit %d)", e, n, s.maxEventBytes)
		}
	}
	return nil
}

func (s *eventService) Publish(ctx context.Context, req *switchyardv1.PublishRequest) (*switchyardv1.PublishResponse, error) {
	if req.GetEvent() == nil {
		return nil, status.Error(codes.InvalidArgument, "event is required")
	}
	evs := []*pb.CloudEvent{req.GetEvent()}
	if err := s.checkSize(evs); err != nil {
		return nil, err
	}
	res, err := s.r.Publish(ctx, evs)
	if err != nil {
		return nil, StatusFor(err)
	}
	return &switchyardv1.PublishResponse{Triggers: res.Triggers[0]}, nil
}

func (s *eventService) PublishBatch(ctx context.Context, req *switchyardv1.PublishBatchRequest) (*switchyardv1.PublishBatchResponse, error) {
	if err := s.checkSize(req.GetEvents()); err != nil {
		return nil, err
	}
	res, err := s.r.Publish(ctx, req.GetEvents())
	if err != nil {
		return nil, StatusFor(err)
	}
	return &switchyardv1.PublishBatchResponse{Accepted: int32(len(req.GetEvents())), Routed: int32(res.Routed)}, nil
}
