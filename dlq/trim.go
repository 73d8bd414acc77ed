package dlq

import "context"

// retainChunk is how many queues one RetainDLQs call covers: one pipeline
// per round, bounded so that a store with many triggers is not sent one
// huge pipeline.
const retainChunk = 500

// Retain applies retention to every queue of rs, in calls of retainChunk
// queues (Store.RetainDLQs, one pipelined round trip per round of each),
// and reports each queue's evictions (with its error, if any) to report. An
// error of one queue does not stop the others; Retain returns early only
// when ctx ends.
func Retain(ctx context.Context, st Retainer, rs []Retention, report func(Evicted)) error {
	for len(rs) > 0 {
		chunk := rs[:min(retainChunk, len(rs))]
		rs = rs[len(chunk):]
		ev, err := st.RetainDLQs(ctx, chunk)
		for _, e := range ev {
			report(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
