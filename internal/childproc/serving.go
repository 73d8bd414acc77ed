package childproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ServingMsg is the msg of the log line with which `switchyard serve`
// reports its bound addresses (server.Serve logs it).
const ServingMsg = "switchyard serving"

// ErrNotServing is what ParseServing returns for a line that is not the
// serving line: not a JSON object, or another message.
var ErrNotServing = errors.New("childproc: not the serving line")

// Addrs are the addresses a serving child listens on, each host:port.
type Addrs struct {
	HTTP string
	GRPC string
}

// servingLine is the part of a JSON log line ParseServing reads.
type servingLine struct {
	Msg  string `json:"msg"`
	HTTP any    `json:"http"`
	GRPC any    `json:"grpc"`
}

// ParseServing returns the addresses in a serving log line. A line that is
// not one gives ErrNotServing; a serving line whose "http" or "grpc" field
// is missing, not a string or not a host:port gives an error naming the
// field.
func ParseServing(line []byte) (Addrs, error) {
	var l servingLine
	if json.Unmarshal(line, &l) != nil || l.Msg != ServingMsg {
		return Addrs{}, ErrNotServing
	}
	h, err1 := addrField("http", l.HTTP)
	g, err2 := addrField("grpc", l.GRPC)
	if err := errors.Join(err1, err2); err != nil {
		return Addrs{}, fmt.Errorf("childproc: serving line: %w", err)
	}
	return Addrs{HTTP: h, GRPC: g}, nil
}

// addrField checks one address field of the serving line.
func addrField(name string, v any) (string, error) {
	s, ok := v.(string)
	switch {
	case v == nil:
		return "", fmt.Errorf("field %s: missing", name)
	case !ok:
		return "", fmt.Errorf("field %s: want a string, got %T", name, v)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("field %s: %w", name, err)
	}
	if host == "" {
		return "", fmt.Errorf("field %s: %q: no host", name, s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("field %s: %q: want a port from 1 to 65535", name, s)
	}
	return s, nil
}
