package trigger

import (
	"reflect"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/router/filter"
)

// TestExplainShowsTheScope: a trigger's explanation has its scope's
// clauses, named by the scope's fields, before the filter's.
func TestExplainShowsTheScope(t *testing.T) {
	tr, err := Compile(Spec{Name: "a-orders", Target: Target{GRPC: "127.0.0.1:7070"},
		Filter: filter.Spec{Attributes: map[string]string{"type": "com.a.created"}, CEL: "subject == 'x'"},
		Scope:  EventScope{Sources: []string{"/a/"}, Types: []string{"com.a.", "org.a."}}})
	if err != nil {
		t.Fatal(err)
	}
	e := tr.Explain(filter.NewInput(scopeEvent("/b/1", "com.a.created")))
	if e.Matched {
		t.Fatal("an event outside the scope matched")
	}
	var paths []string
	for _, c := range e.Clauses {
		paths = append(paths, c.Path)
	}
	if want := []string{"scope.sources", "scope.types", "filter.attributes.type", "filter.cel"}; !reflect.DeepEqual(paths, want) {
		t.Fatalf("clauses %v, want %v", paths, want)
	}
	failed := e.Failed()
	if len(failed) != 2 || failed[0].Path != "scope.sources" || failed[0].Reason != `source "/b/1" does not start with "/a/"` ||
		failed[1].Path != "filter.cel" {
		t.Fatalf("failed clauses %+v", failed)
	}
	if !e.Clauses[1].Held || e.Clauses[1].Kind != filter.KindPrefixes || !reflect.DeepEqual(e.Clauses[1].Prefixes, []string{"com.a.", "org.a."}) {
		t.Fatalf("types clause %+v", e.Clauses[1])
	}
}

// TestScopedFilterIsMatchCompiled: the filter a scoped trigger matches
// with decides as its Match spec compiled does (the index reads the spec,
// the router evaluates the filter).
func TestScopedFilterIsMatchCompiled(t *testing.T) {
	specs := []filter.Spec{
		{},
		{Attributes: map[string]string{"type": "com.a.x"}},
		{Any: []filter.Spec{{Prefix: map[string]string{"source": "/a/1"}}, {Suffix: map[string]string{"type": ".y"}}}},
		{Not: &filter.Spec{Prefix: map[string]string{"source": "/a/"}}},
		{All: []filter.Spec{{CESQL: "source LIKE '/shared/%'"}}, CEL: "type.startsWith('org.')"},
	}
	scopes := []EventScope{{Sources: []string{"/a/"}}, {Types: []string{"com.a.", "org.a."}}, {Sources: []string{"/a/", "/shared/a/"}, Types: []string{"org."}}}
	var events []*pb.CloudEvent
	for _, src := range []string{"/a/1", "/a/", "/b/1", "/shared/a/2", "/shared/b"} {
		for _, typ := range []string{"com.a.x", "org.a.y", "com.b.y", "org.b.x"} {
			events = append(events, scopeEvent(src, typ))
		}
	}
	for _, fs := range specs {
		for _, sc := range scopes {
			tr, err := Compile(Spec{Name: "a", Target: Target{GRPC: "127.0.0.1:7070"}, Filter: fs, Scope: sc})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := filter.Compile(tr.Match)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range events {
				got, want := tr.Filter.Match(filter.NewInput(ev)), ref.Match(filter.NewInput(ev))
				if got != want {
					t.Errorf("filter %+v scope %+v on %s %s: %v, Match spec says %v", fs, sc, ev.Source, ev.Type, got, want)
				}
				if e := tr.Explain(filter.NewInput(ev)); e.Matched != got {
					t.Errorf("Explain says %v, Match %v", e.Matched, got)
				}
			}
		}
	}
}

func TestExplanationProtoRoundTrip(t *testing.T) {
	tr, err := Compile(Spec{Name: "a", Target: Target{GRPC: "127.0.0.1:7070"}, Scope: EventScope{Sources: []string{"/a/", "/b/"}},
		Filter: filter.Spec{Any: []filter.Spec{{Attributes: map[string]string{"type": "x", "subject": "y"}}, {Not: &filter.Spec{CESQL: "TRUE"}}}, CEL: "data.total > 1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*pb.CloudEvent{scopeEvent("/a/1", "x"), scopeEvent("/c", "y"), nil} {
		e := tr.Explain(filter.NewInput(ev))
		if back := ExplanationFromProto(ExplanationToProto(e)); !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
		}
	}
	if e := ExplanationFromProto(nil); e.Matched || e.Clauses == nil {
		t.Fatalf("nil result: %+v", e)
	}
}
