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

// ListSources lists the server's sources. They belong to the platform, not
// to a tenant: an identity whose scope is restricted sees none.
func (s *sourceService) ListSources(ctx context.Context, _ *switchyardv1.ListSourcesRequest) (*switchyardv1.ListSourcesResponse, error) {
	out := &switchyardv1.ListSourcesResponse{}
	r := s.runner()
	if r == nil || !sourcesVisible(ctx) {
		return out, nil
	}
	for _, st := range r.Status() {
		out.Sources = append(out.Sources, &switchyardv1.SourceStatus{
			Name: st.Name, Kind: st.Kind, State: string(st.State), Events: st.Events, Rejected: st.Rejected, Errors: st.Errors,
			LastEventTime: tsOrNil(st.LastEvent), LastError: st.LastError, LastErrorTime: tsOrNil(st.LastErrorTime),
			Position: st.Position, Reconnects: st.Reconnects, PausedReason: st.PausedForReason,
			NextFireTime: tsOrNil(st.NextFire),
		})
	}
	return out, nil
}
