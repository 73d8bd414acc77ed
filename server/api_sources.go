package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

type sourceService struct {
	switchyardv1.UnimplementedSourceServiceServer
	runner func() *connectors.Runner
}

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func (s *sourceService) ListSources(context.Context, *switchyardv1.ListSourcesRequest) (*switchyardv1.ListSourcesResponse, error) {
	out := &switchyardv1.ListSourcesResponse{}
	r := s.runner()
	if r == nil {
		return out, nil
	}
	for _, st := range r.Status() {
		out.Sources = append(out.Sources, &switchyardv1.SourceStatus{
			Name: st.Name, Kind: st.Kind, State: string(st.State), Events: st.Events, Rejected: st.Rejected, Errors: st.Errors,
			LastEventTime: tsOrNil(st.LastEvent), LastError: st.LastError, LastErrorTime: tsOrNil(st.LastErrorTime),
			Position: st.Position, Reconnects: st.Reconnects, PausedReason: st.PausedForReason,
		})
	}
	return out, nil
}
