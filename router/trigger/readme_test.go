package trigger

import (
	"testing"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestREADMEOrderedTrigger keeps the README's ordered trigger valid.
func TestREADMEOrderedTrigger(t *testing.T) {
	specs, err := Parse([]byte(testenv.READMEBlock(t, "ordered-trigger")))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Compile(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	if tr.Key == nil || tr.Key.String() != "subject" || tr.Spec.Delivery.Ordering.OnDead != OnDeadContinue {
		t.Fatalf("README's ordered trigger: %+v", tr.Spec.Delivery.Ordering)
	}
}
