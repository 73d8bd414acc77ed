package cli

import (
	"context"
	"io"
	"unicode/utf8"

	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
)

// dryRunSpecs asks the server what applying each spec would do (see
// sdk.DryRunApplyTrigger: nothing is stored) and prints it: a table of
// the triggers with the fields a replacement changes, or, with -o
// json/yaml, their outcomes with the triggers as they would be stored.
func dryRunSpecs(ctx context.Context, c *sdk.Client, specs []loadedSpec, format outputFormat, out, errOut io.Writer) error {
	outcomes, err := applyEach(ctx, specs, errOut, "checked (dry run)", func(l loadedSpec) (applyOutcome, error) {
		resp, err := c.DryRunApplyTrigger(ctx, trigger.ToProto(l.spec))
		if err != nil {
			return applyOutcome{}, err
		}
		after := trigger.FromProto(resp.GetTrigger())
		var before trigger.Spec
		if p := resp.GetPrevious(); p != nil {
			before = trigger.FromProto(p)
		}
		return applyOutcome{Name: l.spec.Name, Result: resultOf(resp.GetCreated(), resp.GetChanged()), DryRun: true,
			Generation: resp.GetTrigger().GetGeneration(), Changes: trigger.Diff(before, after), Trigger: after}, nil
	})
	if format == formatTable {
		if perr := printDryRunTable(out, outcomes); perr != nil {
			return perr
		}
		return err
	}
	if perr := printOutcomes(out, format, outcomes); perr != nil {
		return perr
	}
	return err
}

// printOutcomes prints apply outcomes as a JSON array or YAML list.
func printOutcomes(w io.Writer, format outputFormat, outcomes []applyOutcome) error {
	if outcomes == nil {
		outcomes = []applyOutcome{}
	}
	if format == formatYAML {
		return writeYAML(w, outcomes)
	}
	return writeJSON(w, outcomes)
}

// maxDiffValue bounds the runes of a value in the dry run's table; -o
// json has them whole.
const maxDiffValue = 60

// printDryRunTable prints one row per trigger, and for a replaced one a
// row per field changed under it.
func printDryRunTable(w io.Writer, outcomes []applyOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	tab := newTable(w, "TRIGGER", "RESULT (DRY RUN)", "FIELD", "BEFORE", "AFTER")
	for _, o := range outcomes {
		if o.Result != "configured" {
			tab.row(o.Name, o.Result, "", "", "")
			continue
		}
		if len(o.Changes) == 0 {
			// The server saw a change in what answers show redacted
			// (a URL's credentials).
			tab.row(o.Name, o.Result, "(a value shown redacted)", "", "")
			continue
		}
		for i, ch := range o.Changes {
			name, result := o.Name, o.Result
			if i > 0 {
				name, result = "", ""
			}
			tab.row(name, result, ch.Path, diffValue(ch.Before), diffValue(ch.After))
		}
	}
	return tab.flush()
}

// diffValue renders a FieldChange value for the table: "-" for unset,
// cut to maxDiffValue runes.
func diffValue(v string) string {
	if v == "" {
		return "-"
	}
	if utf8.RuneCountInString(v) > maxDiffValue {
		return string([]rune(v)[:maxDiffValue-1]) + "…"
	}
	return v
}
