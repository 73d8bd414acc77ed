package filter

import (
	"fmt"
	"testing"
)

// BenchmarkIndexMatch measures routing one event through an Index of n
// triggers, each requiring its own exact type; one of them matches. The cost
// should not depend on n. The prefix case shows the cost of triggers the
// index cannot bucket (one evaluation each).
func BenchmarkIndexMatch(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("triggers=%d", n), func(b *testing.B) {
			entries := make([]Entry, n)
			for i := range entries {
				s := Spec{Attributes: map[string]string{"type": fmt.Sprintf("com.example.type%d", i)}}
				entries[i] = Entry{Name: fmt.Sprintf("trigger-%d", i), Spec: s, Filter: mustCompile(b, s)}
			}
			benchIndex(b, NewIndex(entries), fmt.Sprintf("com.example.type%d", n/2))
		})
	}
	b.Run("prefix-triggers=1000", func(b *testing.B) {
		entries := make([]Entry, 1000)
		for i := range entries {
			s := Spec{Prefix: map[string]string{"type": fmt.Sprintf("com.example.type%d.", i)}}
			entries[i] = Entry{Name: fmt.Sprintf("trigger-%d", i), Spec: s, Filter: mustCompile(b, s)}
		}
		benchIndex(b, NewIndex(entries), "com.example.type500.x")
	})
}

func benchIndex(b *testing.B, ix *Index, typ string) {
	ev := testEvent(withType(typ))
	in := &Input{}
	var buf []string
	b.ReportAllocs()
	for b.Loop() {
		in.Reset(ev)
		buf = ix.Match(in, buf[:0])
	}
	if len(buf) != 1 {
		b.Fatalf("matched %v, want one trigger", buf)
	}
}

// BenchmarkCEL measures a CEL filter over JSON data: "eval" on an Input
// that already decoded the data (the second and later CEL triggers for an
// event), "decode+eval" on a fresh event each time (the first one).
func BenchmarkCEL(b *testing.B) {
	f := mustCompile(b, Spec{CEL: "data.total > 100 && data.customer.country == 'NL'"})
	ev := testEvent(withText("application/json", `{"total": 150, "customer": {"id": 7, "country": "NL"}, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}`))
	b.Run("eval", func(b *testing.B) {
		in := NewInput(ev)
		b.ReportAllocs()
		for b.Loop() {
			if !f.Match(in) {
				b.Fatal("no match")
			}
		}
	})
	b.Run("decode+eval", func(b *testing.B) {
		in := &Input{}
		b.ReportAllocs()
		for b.Loop() {
			in.Reset(ev)
			if !f.Match(in) {
				b.Fatal("no match")
			}
		}
	})
}

// BenchmarkCESQL measures a CESQL filter: "eval" with the sdk-go event
// already built, "build+eval" with it built for each event.
func BenchmarkCESQL(b *testing.B) {
	f := mustCompile(b, Spec{CESQL: "subject LIKE 'eu-%' AND count > 10"})
	ev := testEvent(withAttr("subject", ceString("eu-order-42")), withAttr("count", ceInt(42)))
	b.Run("eval", func(b *testing.B) {
		in := NewInput(ev)
		b.ReportAllocs()
		for b.Loop() {
			if !f.Match(in) {
				b.Fatal("no match")
			}
		}
	})
	b.Run("build+eval", func(b *testing.B) {
		in := &Input{}
		b.ReportAllocs()
		for b.Loop() {
			in.Reset(ev)
			if !f.Match(in) {
				b.Fatal("no match")
			}
		}
	})
}

// BenchmarkExact measures an exact filter on type and source.
func BenchmarkExact(b *testing.B) {
	f := mustCompile(b, Spec{Attributes: map[string]string{"type": "com.example.order.created", "source": "/shop/eu"}})
	in := NewInput(testEvent())
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(in) {
			b.Fatal("no match")
		}
	}
}
