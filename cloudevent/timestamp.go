package cloudevent

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// parseTimestamp parses an RFC 3339 date-time (section 5.6 grammar:
// YYYY-MM-DD "T" hh:mm:ss [.fraction] ("Z" / ("+"/"-") hh:mm), with "t" and
// "z" accepted in lower case as the RFC allows). Fractions beyond
// nanoseconds are truncated. Leap seconds (:60) are refused because a
// protobuf Timestamp cannot represent them, and so are instants outside the
// Timestamp range 0001-01-01..9999-12-31 (UTC).
func parseTimestamp(s string) (*timestamppb.Timestamp, bool) {
	// Shortest form: 2006-01-02T15:04:05Z (20 bytes).
	if len(s) < 20 {
		return nil, false
	}
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
		s[13] != ':' || s[16] != ':' {
		return nil, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return nil, false
	}
	rest := s[19:]
	nanos := 0
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			if i <= 9 {
				nanos = nanos*10 + int(rest[i]-'0')
			}
			i++
		}
		if i == 1 {
			return nil, false
		}
		for d := i - 1; d < 9; d++ {
			nanos *= 10
		}
		rest = rest[i:]
	}
	offset := 0
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := num(rest[1:3])
		om, okm := num(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return nil, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return nil, false
	}
	unix := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() - int64(offset)
	ts := &timestamppb.Timestamp{Seconds: unix, Nanos: int32(nanos)}
	if ts.CheckValid() != nil {
		return nil, false
	}
	return ts, true
}

// daysIn returns the number of days of a month of the proleptic Gregorian
// calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendTimestamp appends the canonical string form of a timestamp: RFC 3339
// in UTC with the shortest fraction (time.RFC3339Nano), as AttributeValueString
// renders it.
func appendTimestamp(b []byte, ts *timestamppb.Timestamp) []byte {
	return ts.AsTime().UTC().AppendFormat(b, time.RFC3339Nano)
}
