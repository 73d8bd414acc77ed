package trigger

import (
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-io/switchyard/router/filter"
)

func scopeEvent(source, typ string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: "1", Source: source, Type: typ, SpecVersion: "1.0"}
}

// TestScopeConfinesMatching: a trigger's event scope is ANDed into the
// filter it matches with, whatever its own filter says, and a filter's
// exact type still indexes the trigger.
func TestScopeConfinesMatching(t *testing.T) {
	target := Target{GRPC: "127.0.0.1:7070"}
	cases := map[string]struct {
		spec  Spec
		in    []*pb.CloudEvent
		out   []*pb.CloudEvent
		index string // the bucket the index puts it in
	}{
		"empty filter, one source prefix": {
			spec:  Spec{Name: "a", Target: target, Scope: EventScope{Sources: []string{"/a/"}}},
			in:    []*pb.CloudEvent{scopeEvent("/a/x", "t"), scopeEvent("/a/", "u")},
			out:   []*pb.CloudEvent{scopeEvent("/b/x", "t"), scopeEvent("/ab", "t")},
			index: "scan",
		},
		"exact type filter stays indexed": {
			spec: Spec{Name: "a", Target: target, Filter: filter.Spec{Attributes: map[string]string{"type": "com.a.created"}},
				Scope: EventScope{Sources: []string{"/a/"}}},
			in:    []*pb.CloudEvent{scopeEvent("/a/1", "com.a.created")},
			out:   []*pb.CloudEvent{scopeEvent("/b/1", "com.a.created"), scopeEvent("/a/1", "com.a.deleted")},
			index: "type",
		},
		"several prefixes in both dimensions": {
			spec: Spec{Name: "a", Target: target, Scope: EventScope{Sources: []string{"/a/", "/shared/a/"}, Types: []string{"com.a.", "org.a."}}},
			in:   []*pb.CloudEvent{scopeEvent("/a/1", "com.a.x"), scopeEvent("/shared/a/2", "org.a.y")},
			out: []*pb.CloudEvent{scopeEvent("/a/1", "com.b.x"), scopeEvent("/shared/b/2", "org.a.y"),
				scopeEvent("/b/1", "com.b.x")},
			index: "scan",
		},
		"a filter with its own all and any keeps them": {
			spec: Spec{Name: "a", Target: target, Filter: filter.Spec{
				All: []filter.Spec{{Attributes: map[string]string{"type": "t"}}},
				Any: []filter.Spec{{Prefix: map[string]string{"source": "/a/1"}}, {Prefix: map[string]string{"source": "/b/"}}},
			}, Scope: EventScope{Sources: []string{"/a/"}}},
			in:    []*pb.CloudEvent{scopeEvent("/a/1", "t")},
			out:   []*pb.CloudEvent{scopeEvent("/b/1", "t"), scopeEvent("/a/2", "t"), scopeEvent("/a/1", "u")},
			index: "type",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tr, err := Compile(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			ix := filter.NewIndex([]filter.Entry{{Name: tr.Name(), Spec: tr.Match, Filter: tr.Filter}})
			for _, ev := range tc.in {
				if got := ix.Match(filter.NewInput(ev), nil); len(got) != 1 {
					t.Errorf("%s %s: not matched", ev.Source, ev.Type)
				}
			}
			for _, ev := range tc.out {
				if got := ix.Match(filter.NewInput(ev), nil); len(got) != 0 {
					t.Errorf("%s %s: matched outside the scope", ev.Source, ev.Type)
				}
			}
			st := ix.Stats()
			got := map[bool]string{st.ByType == 1: "type", st.BySource == 1: "source", st.Scan == 1: "scan"}[true]
			if got != tc.index {
				t.Errorf("indexed by %s, want %s (%+v)", got, tc.index, st)
			}
			if len(tr.Spec.Filter.All) != len(tc.spec.Filter.All) {
				t.Error("Compile changed the spec's own filter")
			}
			// Round trip through the API message keeps the scope.
			back := FromProto(ToProto(tr.Spec))
			if strings.Join(back.Scope.Sources, ",") != strings.Join(tc.spec.Scope.Sources, ",") ||
				strings.Join(back.Scope.Types, ",") != strings.Join(tc.spec.Scope.Types, ",") {
				t.Errorf("scope after round trip: %+v", back.Scope)
			}
		})
	}
}

// TestScopeAtMaxDepth: the scope's conditions do not add a nesting level,
// so a filter nested to the limit still compiles with a scope.
func TestScopeAtMaxDepth(t *testing.T) {
	f := filter.Spec{Attributes: map[string]string{"type": "t"}}
	for range filter.MaxDepth {
		f = filter.Spec{All: []filter.Spec{f}}
	}
	s := Spec{Name: "deep", Target: Target{GRPC: "127.0.0.1:1"}, Filter: f}
	if _, err := Compile(s); err != nil {
		t.Fatalf("the filter alone: %v", err)
	}
	s.Scope = EventScope{Sources: []string{"/a/"}, Types: []string{"x", "y"}}
	if _, err := Compile(s); err != nil {
		t.Fatalf("with a scope: %v", err)
	}
}

func TestScopeValidation(t *testing.T) {
	long := strings.Repeat("x", MaxScopePrefixBytes+1)
	many := make([]string, MaxScopePrefixes+1)
	for i := range many {
		many[i] = "/p" + strings.Repeat("x", i)
	}
	cases := map[string]struct {
		scope EventScope
		path  string
	}{
		"empty prefix":  {EventScope{Sources: []string{"/a/", ""}}, "scope.sources[1]"},
		"long prefix":   {EventScope{Types: []string{long}}, "scope.types[0]"},
		"bad utf-8":     {EventScope{Types: []string{"\xff"}}, "scope.types[0]"},
		"many prefixes": {EventScope{Sources: many}, "scope.sources"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := Spec{Name: "a", Target: Target{GRPC: "127.0.0.1:1"}, Scope: tc.scope}.Validate()
			fe, ok := err.(FieldErrors)
			if !ok || len(fe) != 1 || fe[0].Path != tc.path {
				t.Fatalf("got %v, want one error at %s", err, tc.path)
			}
		})
	}
}

// TestScopeInTriggerFile: a trigger file may carry a scope, and a spec
// without one prints none.
func TestScopeInTriggerFile(t *testing.T) {
	specs, err := Parse([]byte("name: a\ntarget: {grpc: \"127.0.0.1:1\"}\nscope: {sources: [/a/], types: [com.a.]}\n"))
	if err != nil || len(specs) != 1 || specs[0].Scope.Sources[0] != "/a/" || specs[0].Scope.Types[0] != "com.a." {
		t.Fatalf("%+v %v", specs, err)
	}
	out, err := yaml.Marshal(Spec{Name: "a", Target: Target{GRPC: "127.0.0.1:1"}})
	if err != nil || strings.Contains(string(out), "scope") {
		t.Fatalf("%q %v", out, err)
	}
}
