package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1, "1800000000": 1800000000, "9223372036854775807": 1<<63 - 1} {
		got, err := parseTimestamp(in)
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", "01", " 1", "1 ", "1.5", "1e9", "9223372036854775808", "0x10", "１"} {
		if got, err := parseTimestamp(in); err == nil {
			t.Errorf("%q: accepted as %d", in, got)
		}
	}
}

func TestFresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for ts, ok := range map[int64]bool{1_800_000_000: true, 1_800_000_000 - 300: true, 1_800_000_000 + 300: true,
		1_800_000_000 - 301: false, 1_800_000_000 + 301: false, 0: false, 1<<63 - 1: false} {
		if r := fresh("h", ts, now, 5*time.Minute); (r == nil) != ok {
			t.Errorf("ts %d: refusal %v, want accepted %v", ts, r, ok)
		}
	}
}

func TestStandardKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for secret, want := range map[string][]byte{
		"whsec_" + base64.StdEncoding.EncodeToString(key):    key,
		"whsec_" + base64.RawStdEncoding.EncodeToString(key): key,
		"raw secret": []byte("raw secret"),
	} {
		got, err := standardKey(secret)
		if err != nil || string(got) != string(want) {
			t.Errorf("%q: %q, %v", secret, got, err)
		}
	}
	for _, secret := range []string{"whsec_", "whsec_!!", "whsec_a b"} {
		_, err := standardKey(secret)
		if b64 := strings.TrimPrefix(secret, "whsec_"); err == nil || (b64 != "" && strings.Contains(err.Error(), b64)) {
			t.Errorf("%q: error %v (must refuse without showing the secret)", secret, err)
		}
	}
}

func TestParseStandardSignatures(t *testing.T) {
	a, b := base64.StdEncoding.EncodeToString([]byte("aaaa")), base64.StdEncoding.EncodeToString([]byte("bbbb"))
	cases := map[string]int{
		"v1," + a:                       1,
		"v1," + a + " v1," + b:          2,
		"  v1," + a + "   v1a,xyz  ":    1,
		"v2," + a + " v1,not base64! ":  -1,
		"":                              -1,
		"v1a," + a:                      -1,
		"v1" + a:                        -1,
		"v1," + a + ",extra v1," + b[:]: 1, // the first entry's base64 has a comma: not base64
	}
	for in, want := range cases {
		sigs, err := parseStandardSignatures(in)
		if want < 0 {
			if err == nil {
				t.Errorf("%q: accepted %q", in, sigs)
			}
			continue
		}
		if err != nil || len(sigs) != want {
			t.Errorf("%q: %d signatures (%v), want %d", in, len(sigs), err, want)
		}
	}
}

func TestParseStripeSignature(t *testing.T) {
	sig := hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	ok := map[string]int{
		"t=1800000000,v1=" + sig:                     1,
		"t=1800000000,v1=" + sig + ",v1=" + sig:      2,
		"v0=abc, t=1800000000 , v1=" + sig:           1,
		"t=1800000000,v1=zz,v1=" + sig + ",x=":       1,
		"t=1800000000,v1=" + sig + ",scheme=v2,v2=x": 1,
	}
	for in, want := range ok {
		tsText, ts, sigs, err := parseStripeSignature(in)
		if err != nil || tsText != "1800000000" || ts != 1_800_000_000 || len(sigs) != want {
			t.Errorf("%q: %q %d %d sigs, %v", in, tsText, ts, len(sigs), err)
		}
	}
	for _, in := range []string{"", "t=1800000000", "v1=" + sig, "t=1800000000,t=1800000001,v1=" + sig,
		"t=-1,v1=" + sig, "t=18e8,v1=" + sig, "t=1800000000,v1", "t=1800000000,v1=zz"} {
		if _, _, _, err := parseStripeSignature(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestLocalMarks(t *testing.T) {
	ctx := context.Background()
	var m localMarks
	if cur, set, _ := m.Mark(ctx, "k", "a", time.Minute); !set || cur != "a" {
		t.Fatalf("first mark: %q %v", cur, set)
	}
	if cur, set, _ := m.Mark(ctx, "k", "b", time.Minute); set || cur != "a" {
		t.Fatalf("second mark: %q %v", cur, set)
	}
	_ = m.Put(ctx, "k", "done", time.Millisecond)
	testenv.Eventually(t, 5*time.Second, func() bool { _, set, _ := m.Mark(ctx, "k", "c", time.Minute); return set }, "the mark to expire")
	_ = m.Drop(ctx, "k")
	if _, set, _ := m.Mark(ctx, "k", "d", time.Millisecond); !set {
		t.Fatal("a dropped mark is still there")
	}
	// Expired marks are swept as marks are written, so the map stays bounded.
	testenv.Eventually(t, 5*time.Second, func() bool {
		for i := range sweepEvery {
			_ = m.Put(ctx, strconv.Itoa(i), "x", time.Millisecond)
		}
		return len(m.m) < 2*sweepEvery
	}, "expired marks swept")
}

func FuzzParseStandardSignatures(f *testing.F) {
	f.Add("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
	f.Add("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==")
	f.Add("v1,,,, v1 ,v1")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := parseStandardSignatures(h)
		if (err == nil) != (len(sigs) > 0) {
			t.Fatalf("%q: %d signatures and error %v", h, len(sigs), err)
		}
		if len(sigs) > len(strings.Fields(h)) {
			t.Fatalf("%q: more signatures than entries", h)
		}
	})
}

func FuzzParseStripeSignature(f *testing.F) {
	f.Add("t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
	f.Add("t=1,v1=00,t=2")
	f.Add("t=,v1=")
	f.Add(",,=,")
	f.Fuzz(func(t *testing.T, h string) {
		tsText, ts, sigs, err := parseStripeSignature(h)
		if err != nil {
			return
		}
		if len(sigs) == 0 || ts < 0 || strconv.FormatInt(ts, 10) != tsText || !strings.Contains(h, "t="+tsText) {
			t.Fatalf("%q: accepted as t=%q (%d) with %d signatures", h, tsText, ts, len(sigs))
		}
	})
}

// FuzzVerify feeds every verifier arbitrary headers and bodies. A request is
// accepted only when it carries the signature computed here from the spec;
// the correctly signed request built from the same id and body is always
// accepted; a refusal never shows the expected signature.
func FuzzVerify(f *testing.F) {
	key := []byte("fuzz key")
	now := time.Unix(1_800_000_000, 0)
	const nowText = "1800000000"
	mac := func(parts ...string) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write([]byte(p))
		}
		return m.Sum(nil)
	}
	std := standardVerifier{key: key, tolerance: 5 * time.Minute}
	stripe := stripeVerifier{key: key, tolerance: 5 * time.Minute}
	gh := hmacVerifier{key: key, header: hdrGitHubSignature, prefix: "sha256=", newHash: sha256.New}

	body := `{"a":1}`
	f.Add("msg_1", nowText, "v1,"+base64.StdEncoding.EncodeToString(mac("msg_1."+nowText+"."+body)),
		"t="+nowText+",v1="+hex.EncodeToString(mac(nowText+"."+body)), "sha256="+hex.EncodeToString(mac(body)), []byte(body))
	f.Add("msg_1", "1799999000", "v1,AAAA", "t=1799999000,v1=00", "sha256=00", []byte(body))
	f.Add("", "", "", "", "", []byte{})
	f.Fuzz(func(t *testing.T, id, ts, stdSig, stripeSig, ghSig string, body []byte) {
		h := http.Header{}
		h.Set(hdrWebhookID, id)
		h.Set(hdrWebhookTimestamp, ts)
		h.Set(hdrWebhookSignature, stdSig)
		h.Set(hdrStripeSignature, stripeSig)
		h.Set(hdrGitHubSignature, ghSig)
		checkRefusal := func(name string, r *refusal, secrets ...string) {
			t.Helper()
			if r.status != http.StatusBadRequest && r.status != http.StatusUnauthorized && r.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("%s: status %d", name, r.status)
			}
			for _, s := range secrets {
				if strings.Contains(r.detail, s) {
					t.Fatalf("%s: the refusal shows the expected signature: %s", name, r.detail)
				}
			}
		}

		// Standard Webhooks.
		want := mac(id + "." + ts + "." + string(body))
		v, r := std.verify(h, body, now)
		if r == nil {
			n, err := parseTimestamp(ts)
			if err != nil || fresh("", n, now, std.tolerance) != nil || v.id != id || id == "" || len(id) > maxIDHeader {
				t.Fatalf("standard: accepted id %q ts %q", id, ts)
			}
			sigs, _ := parseStandardSignatures(stdSig)
			if !anyEqual(sigs, want) {
				t.Fatalf("standard: accepted %q without the right signature", stdSig)
			}
		} else {
			checkRefusal("standard", r, base64.StdEncoding.EncodeToString(want))
		}
		if id != "" && len(id) <= maxIDHeader {
			good := h.Clone()
			good.Set(hdrWebhookTimestamp, nowText)
			good.Set(hdrWebhookSignature, "v1,"+base64.StdEncoding.EncodeToString(mac(id+"."+nowText+"."+string(body))))
			if v, r := std.verify(good, body, now); r != nil || v.id != id || !v.ts.Equal(now) {
				t.Fatalf("standard: refused a signed request: %+v", r)
			}
		}

		// Stripe.
		if _, r := stripe.verify(h, body, now); r == nil {
			tsText, n, sigs, err := parseStripeSignature(stripeSig)
			if err != nil || fresh("", n, now, stripe.tolerance) != nil || !anyEqual(sigs, mac(tsText+"."+string(body))) {
				t.Fatalf("stripe: accepted %q", stripeSig)
			}
		} else if tsText, _, _, err := parseStripeSignature(stripeSig); err == nil {
			checkRefusal("stripe", r, hex.EncodeToString(mac(tsText+"."+string(body))))
		}
		good := http.Header{}
		good.Set(hdrStripeSignature, "t="+nowText+",v1="+hex.EncodeToString(mac(nowText+"."+string(body))))
		if v, r := stripe.verify(good, body, now); r != nil || !v.ts.Equal(now) {
			t.Fatalf("stripe: refused a signed request: %+v", r)
		}

		// GitHub / hmac.
		wantHex := hex.EncodeToString(mac(string(body)))
		if _, r := gh.verify(h, body, now); r == nil {
			got, _ := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(ghSig), "sha256="))
			if !hmac.Equal(got, mac(string(body))) || !strings.HasPrefix(strings.TrimSpace(ghSig), "sha256=") {
				t.Fatalf("github: accepted %q", ghSig)
			}
		} else {
			checkRefusal("github", r, wantHex)
		}
		good = http.Header{}
		good.Set(hdrGitHubSignature, "sha256="+wantHex)
		if _, r := gh.verify(good, body, now); r != nil {
			t.Fatalf("github: refused a signed request: %+v", r)
		}
	})
}
