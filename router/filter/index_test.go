package filter

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
)

// bruteForce evaluates every entry, in name order: what Index.Match must
// return.
func bruteForce(entries []Entry, in *Input) []string {
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	var out []string
	for _, e := range sorted {
		if e.Filter != nil && e.Filter.Match(in) {
			out = append(out, e.Name)
		}
	}
	return out
}

func entry(t testing.TB, name string, s Spec) Entry {
	return Entry{Name: name, Spec: s, Filter: mustCompile(t, s)}
}

// mixedEntries returns n entries of every indexable and non-indexable
// shape, in shuffled name order.
func mixedEntries(t testing.TB, n int) []Entry {
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []Entry
	for _, i := range rng.Perm(n) {
		name := fmt.Sprintf("trigger-%05d", i)
		typ := fmt.Sprintf("com.example.t%d", i%50)
		src := fmt.Sprintf("/src/%d", i%20)
		var s Spec
		switch i % 8 {
		case 0: // exact type
			s = Spec{Attributes: map[string]string{"type": typ}}
		case 1: // exact type and source
			s = Spec{Attributes: map[string]string{"type": typ, "source": src}}
		case 2: // type inside a nested all, with CEL
			s = Spec{All: []Spec{{Prefix: map[string]string{"source": "/src/"}}, {All: []Spec{{Attributes: map[string]string{"type": typ}}}}}, CEL: "type.size() > 0"}
		case 3: // exact source only
			s = Spec{Attributes: map[string]string{"source": src}}
		case 4: // prefix only: scan
			s = Spec{Prefix: map[string]string{"type": fmt.Sprintf("com.example.t%d", i%5)}}
		case 5: // type under any: not indexable, scan
			s = Spec{Any: []Spec{{Attributes: map[string]string{"type": typ}}, {Attributes: map[string]string{"subject": "s"}}}}
		case 6: // CESQL on the type: scan
			s = Spec{CESQL: fmt.Sprintf("type = '%s'", typ)}
		case 7: // type under not: scan
			s = Spec{Not: &Spec{Attributes: map[string]string{"type": typ}}, Suffix: map[string]string{"source": fmt.Sprint(i % 7)}}
		}
		entries = append(entries, entry(t, name, s))
	}
	return entries
}

func TestIndexMatchesBruteForce(t *testing.T) {
	entries := mixedEntries(t, 2000)
	ix := NewIndex(entries)
	require.Equal(t, 2000, ix.Len())
	st := ix.Stats()
	require.Equal(t, IndexStats{Types: 50, Sources: 5, ByType: 750, BySource: 250, Scan: 1000}, st)

	var events []*pb.CloudEvent
	for ty := 0; ty < 52; ty += 3 { // 50 and 51 are no trigger's type
		for src := 0; src < 22; src += 3 { // 21 is no trigger's source
			events = append(events, testEvent(withType(fmt.Sprintf("com.example.t%d", ty)), withSource(fmt.Sprintf("/src/%d", src))))
		}
	}
	events = append(events, testEvent(withAttr("subject", ceString("s"))), testEvent(withType(""), withSource("")), nil)

	var buf []string
	total := 0
	for _, ev := range events {
		in := NewInput(ev)
		buf = ix.Match(in, buf[:0])
		want := bruteForce(entries, NewInput(ev))
		require.Equal(t, want, append([]string(nil), buf...), "event type=%q source=%q", ev.GetType(), ev.GetSource())
		total += len(buf)
	}
	require.Greater(t, total, 1000, "the test events must exercise matches")
}

func TestIndexManyExactTypes(t *testing.T) {
	const n = 10000
	var entries []Entry
	for i := range n {
		entries = append(entries, entry(t, fmt.Sprintf("t%05d", i), Spec{Attributes: map[string]string{"type": fmt.Sprintf("com.example.type%d", i)}}))
	}
	// Filters the index cannot bucket are still found.
	entries = append(entries,
		entry(t, "all-orders", Spec{Prefix: map[string]string{"type": "com.example.type42"}}),
		entry(t, "cel", Spec{CEL: "type == 'com.example.type4242'"}),
		entry(t, "everything", Spec{}),
		entry(t, "by-source", Spec{Attributes: map[string]string{"source": "/shop/eu"}}),
	)
	ix := NewIndex(entries)
	require.Equal(t, IndexStats{Types: n, Sources: 1, ByType: n, BySource: 1, Scan: 3}, ix.Stats())

	got := ix.Match(NewInput(testEvent(withType("com.example.type4242"))), nil)
	require.Equal(t, []string{"all-orders", "by-source", "cel", "everything", "t04242"}, got)

	got = ix.Match(NewInput(testEvent(withType("com.example.type7"), withSource("/other"))), nil)
	require.Equal(t, []string{"everything", "t00007"}, got)

	got = ix.Match(NewInput(testEvent(withType("unknown"), withSource("/other"))), []string{"kept"})
	require.Equal(t, []string{"kept", "everything"}, got, "Match appends to dst")
}

func TestIndexEdgeCases(t *testing.T) {
	typ := Spec{Attributes: map[string]string{"type": "com.example.order.created"}}
	ix := NewIndex([]Entry{
		entry(t, "b", typ),
		entry(t, "a", typ),
		entry(t, "dup", typ),
		entry(t, "dup", typ),
		{Name: "nil-filter", Spec: typ},
		{Name: "nil-filter-scan"},
		// Contradictory type requirements: bucketed by one, never matches.
		entry(t, "contradiction", Spec{Attributes: map[string]string{"type": "com.example.order.created"}, All: []Spec{{Attributes: map[string]string{"type": "other"}}}}),
		// An empty exact type is not indexed.
		entry(t, "empty-type", Spec{Attributes: map[string]string{"type": ""}}),
	})
	require.Equal(t, 8, ix.Len())
	require.Equal(t, []string{"a", "b", "dup", "dup"}, ix.Match(NewInput(testEvent()), nil))
	require.Empty(t, NewIndex(nil).Match(NewInput(testEvent()), nil))
	require.Equal(t, 0, NewIndex(nil).Len())

	// The index copies its entries.
	entries := []Entry{entry(t, "x", typ)}
	ix = NewIndex(entries)
	entries[0].Name = "changed"
	require.Equal(t, []string{"x"}, ix.Match(NewInput(testEvent()), nil))
}

func TestIndexConcurrent(t *testing.T) {
	entries := mixedEntries(t, 400)
	entries = append(entries, entry(t, "json", Spec{CEL: "data.n > 1"}), entry(t, "sql", Spec{CESQL: "EXISTS subject"}))
	ix := NewIndex(entries)
	events := []*pb.CloudEvent{
		testEvent(withType("com.example.t3"), withSource("/src/3"), withText("application/json", `{"n": 2}`)),
		testEvent(withType("com.example.t4"), withSource("/src/4"), withAttr("subject", ceString("s"))),
	}
	want := make([][]string, len(events))
	for i, ev := range events {
		want[i] = bruteForce(entries, NewInput(ev))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			in := &Input{}
			var buf []string
			for i := range 50 {
				k := (g + i) % len(events)
				in.Reset(events[k])
				buf = ix.Match(in, buf[:0])
				if !slices.Equal(buf, want[k]) {
					t.Errorf("goroutine %d: got %v, want %v", g, buf, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}
