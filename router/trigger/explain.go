package trigger

import (
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
)

// ExplanationToProto converts a filter's explanation to its API message.
func ExplanationToProto(e filter.Explanation) *switchyardv1.FilterResult {
	return &switchyardv1.FilterResult{Matched: e.Matched, Clauses: clausesToProto(e.Clauses)}
}

// ExplanationFromProto converts an API message back to an explanation.
func ExplanationFromProto(r *switchyardv1.FilterResult) filter.Explanation {
	cs := clausesFromProto(r.GetClauses())
	if cs == nil {
		cs = []filter.Clause{}
	}
	return filter.Explanation{Matched: r.GetMatched(), Clauses: cs}
}

func clausesToProto(cs []filter.Clause) []*switchyardv1.FilterClause {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*switchyardv1.FilterClause, len(cs))
	for i, c := range cs {
		out[i] = &switchyardv1.FilterClause{
			Path: c.Path, Kind: string(c.Kind), Held: c.Held,
			Attribute: c.Attribute, Missing: c.Missing, Expected: c.Expected, Prefixes: c.Prefixes, Actual: c.Actual,
			Expression: c.Expression, Value: c.Value, Error: c.Error,
			Reason: c.Reason, Causes: clausesToProto(c.Causes),
		}
	}
	return out
}

func clausesFromProto(cs []*switchyardv1.FilterClause) []filter.Clause {
	if len(cs) == 0 {
		return nil
	}
	out := make([]filter.Clause, len(cs))
	for i, c := range cs {
		out[i] = filter.Clause{
			Path: c.GetPath(), Kind: filter.ClauseKind(c.GetKind()), Held: c.GetHeld(),
			Attribute: c.GetAttribute(), Missing: c.GetMissing(), Expected: c.GetExpected(), Prefixes: c.GetPrefixes(), Actual: c.GetActual(),
			Expression: c.GetExpression(), Value: c.GetValue(), Error: c.GetError(),
			Reason: c.GetReason(), Causes: clausesFromProto(c.GetCauses()),
		}
	}
	return out
}
