package sqljson

import (
	"encoding/json"
	"math"
	"testing"
)

func TestIsNumber(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "-1.5e10": true, "12.": false, ".5": false, "01": false, "NaN": false, "": false, "1e": false, "-": false, "1E+3": true, "1 ": false, " 1": false, "[1]": false} {
		if IsNumber([]byte(s)) != want {
			t.Errorf("IsNumber(%q) != %v", s, want)
		}
	}
}

// Every float renders as something encoding/json accepts.
func TestFloatAlwaysEncodes(t *testing.T) {
	for _, f := range []float64{0, -1.5, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)} {
		b, err := json.Marshal(Float(f))
		if err != nil {
			t.Fatalf("Float(%v) does not encode: %v", f, err)
		}
		if !math.IsNaN(f) && !math.IsInf(f, 0) && !IsNumber(b) {
			t.Errorf("Float(%v) encodes as %s, want a number", f, b)
		}
	}
	for f, want := range map[float64]string{math.NaN(): "NaN", math.Inf(1): "Infinity", math.Inf(-1): "-Infinity"} {
		if got := Float(f); got != want {
			t.Errorf("Float(%v) = %v, want %q", f, got, want)
		}
	}
}
