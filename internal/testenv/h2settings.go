package testenv

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// ClientH2Settings listens on a loopback port, calls dial with its address
// (which should make an HTTP/2 client connect there: a gRPC call), and
// returns the SETTINGS that client sent first. The call itself fails: no
// server answers it.
func ClientH2Settings(t testing.TB, dial func(addr string)) map[http2.SettingID]uint32 {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go dial(lis.Addr().String())
	c, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		t.Fatalf("no HTTP/2 preface (%q, %v)", preface, err)
	}
	fr := http2.NewFramer(c, c)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the client's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			out := map[http2.SettingID]uint32{}
			_ = sf.ForeachSetting(func(s http2.Setting) error { out[s.ID] = s.Val; return nil })
			return out
		}
	}
}
