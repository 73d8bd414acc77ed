package filter

import (
	"time"

	"cel.dev/cel-go/common/cost"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// Filter decides whether an event is selected.
//
// Filters are produced by Compile and are immutable: a Filter is safe for
// concurrent use by any number of goroutines, each with its own Input.
//
// Match never panics and never returns an error: any evaluation error (a CEL
// expression reading a field that the data does not have, a CESQL
// expression reading a missing attribute, a type mismatch, an exceeded cost
// limit, data that cannot be decoded, ...) means "no match".
type Filter interface {
	// Match reports whether the event held by in is selected.
	Match(in *Input) bool
}

// Input is one event presented to filters, together with the values derived
// from it that filters need: the decoded data and the variables for CEL, the
// sdk-go event for CESQL. They are computed lazily, on first use, and cached,
// so that an event is decoded at most once however many filters look at it,
// and not at all when only attribute filters (attributes, prefix, suffix)
// look at it.
//
// An Input is not safe for concurrent use: one goroutine evaluates the
// filters for one event. It can be reused for another event with Reset,
// which keeps its allocated storage; this makes Inputs suitable for a
// sync.Pool. The zero Input is ready to use and holds no event (a nil event,
// which has no attributes).
//
// The event must not be modified while the Input holds it.
type Input struct {
	ev   *pb.CloudEvent
	done derived

	data  any               // CEL `data`: decoded JSON, string, []byte or nil
	attrs map[string]string // CEL `attributes`
	exts  map[string]any    // CEL `extensions`
	time  time.Time         // CEL `time`
	sdk   *event.Event      // CESQL's view of the event (attributes only)

	act celActivation

	// The CEL cost of this event so far, across every CEL filter (see
	// CELEventBudget): celCost is nil until the first CEL evaluation.
	celCost      *cost.Tracker
	celLimit     uint64 // celCost.Limit points here
	celBudget    uint64
	celExhausted bool
}

// derived is a bit set of the derived values an Input has computed.
type derived uint8

const (
	haveData derived = 1 << iota
	haveAttrs
	haveExts
	haveTime
	haveSDK
)

// NewInput returns an Input holding ev, with the default CEL budget.
func NewInput(ev *pb.CloudEvent) *Input {
	in := &Input{}
	in.Reset(ev)
	return in
}

// SetCELBudget sets the CEL cost that every CEL filter evaluated on this
// Input may spend together, per event (0: DefaultCELEventBudget). It holds
// until changed; Reset keeps it.
func (in *Input) SetCELBudget(budget uint64) { in.celBudget = budget }

// CELBudgetExhausted reports whether a CEL filter evaluated on the current
// event stopped for want of budget (it did not match, nor did the CEL
// filters evaluated after it).
func (in *Input) CELBudgetExhausted() bool { return in.celExhausted }

// CELCost is the CEL cost spent on the current event so far.
func (in *Input) CELCost() uint64 {
	if in.celCost == nil {
		return 0
	}
	return in.celCost.ActualCost()
}

// Reset makes in hold ev, dropping every value derived from the previous
// event while keeping the storage it allocated.
func (in *Input) Reset(ev *pb.CloudEvent) {
	in.ev = ev
	in.done = 0
	in.data = nil
	clear(in.attrs)
	clear(in.exts)
	in.time = time.Time{}
	in.sdk = nil
	in.act.in = in
	if in.celCost != nil {
		*in.celCost = *celTracker // no cost spent on the new event
	}
	in.celExhausted = false
}

// Event returns the event that in holds.
func (in *Input) Event() *pb.CloudEvent { return in.ev }

// attribute returns the canonical string form of the named attribute.
func (in *Input) attribute(name string) (string, bool) {
	return cloudevent.Attribute(in.ev, name)
}

// celData returns the event data as CEL sees it; see decodeData.
func (in *Input) celData() any {
	if in.done&haveData == 0 {
		in.data = decodeData(in.ev)
		in.done |= haveData
	}
	return in.data
}

// celAttributes returns every attribute, core and extension, in its
// canonical string form.
func (in *Input) celAttributes() map[string]string {
	if in.done&haveAttrs == 0 {
		if in.attrs == nil {
			in.attrs = make(map[string]string, 4+len(in.ev.GetAttributes()))
		}
		fillAttributes(in.attrs, in.ev)
		in.done |= haveAttrs
	}
	return in.attrs
}

// celExtensions returns the extension attributes with their typed values.
func (in *Input) celExtensions() map[string]any {
	if in.done&haveExts == 0 {
		if in.exts == nil {
			in.exts = make(map[string]any, len(in.ev.GetAttributes()))
		}
		fillExtensions(in.exts, in.ev)
		in.done |= haveExts
	}
	return in.exts
}

// celTime returns the time attribute, or the zero protobuf Timestamp (the
// Unix epoch) when the event has none.
func (in *Input) celTime() time.Time {
	if in.done&haveTime == 0 {
		in.time = eventTime(in.ev)
		in.done |= haveTime
	}
	return in.time
}

// sdkEvent returns the attributes of the event as an sdk-go event, for CESQL.
func (in *Input) sdkEvent() *event.Event {
	if in.done&haveSDK == 0 {
		in.sdk = toSDKEvent(in.ev)
		in.done |= haveSDK
	}
	return in.sdk
}
