package sqljson

import (
	"encoding/json"
	"math"
)

// Float renders a floating-point column for JSON: the number itself, or
// "NaN", "Infinity" and "-Infinity" as strings (JSON has no such numbers).
func Float(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// IsNumber reports whether b is a number in JSON's grammar, so that an
// exact decimal can be written as a JSON number without losing digits.
func IsNumber(b []byte) bool {
	// A JSON document that starts with '-' or a digit and ends with a digit
	// is a number: json.Valid checks the grammar in between.
	return len(b) > 0 && (b[0] == '-' || isDigit(b[0])) && isDigit(b[len(b)-1]) && json.Valid(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
