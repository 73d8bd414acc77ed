package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

func TestAuditor(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	var logBuf bytes.Buffer
	au, err := NewAuditor(AuditConfig{KeyPrefix: b.Prefix}, b.Client, slog.New(slog.NewJSONHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := newAPIKey()
	id := &Identity{Subject: "shop-admin", Method: MethodAPIKey, Roles: []Role{RoleOperator}, Scope: Scope{Triggers: []string{"shop-"}}, Remote: "10.0.0.7:4411"}
	start := time.Now()

	recs := []Record{
		RecordFor(id, ActionTriggerDelete, "shop-orders", nil),
		RecordFor(id, ActionDeadLetterPurge, "bank-ledger", id.AllowTrigger(PermDeadLettersWrite, "bank-ledger")),
		RecordFor(id, ActionTokenCreate, "ci", errors.New("store down while creating "+key)),
		RecordFor(nil, ActionTriggerApply, "x", &UnauthenticatedError{Reason: "no credentials"}),
	}
	recs[0].Method = "/switchyard.v1.TriggerService/DeleteTrigger"
	recs[0].Detail = "purged 12 events; caller sent Authorization: Bearer " + key
	for _, r := range recs {
		if err := au.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	wantOutcomes := []string{OutcomeOK, OutcomeDenied, OutcomeFailed, OutcomeDenied}

	got, err := au.List(ctx, start.Add(-time.Second), 10)
	if err != nil || len(got) != 4 {
		t.Fatalf("list: %d records, %v", len(got), err)
	}
	for i, r := range got {
		if r.Outcome != wantOutcomes[i] || r.Action != recs[i].Action || r.Target != recs[i].Target || r.ID == "" {
			t.Errorf("record %d: %+v", i, r)
		}
		if r.Time.Before(start.Add(-time.Second)) || r.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("record %d time %s", i, r.Time)
		}
	}
	if r := got[0]; r.Subject != "shop-admin" || r.AuthMethod != MethodAPIKey || r.Remote != "10.0.0.7:4411" || r.Method != recs[0].Method {
		t.Errorf("who/where lost: %+v", r)
	}
	if !strings.Contains(got[1].Detail, "bank-ledger") {
		t.Errorf("denial detail %q", got[1].Detail)
	}

	// Secrets never reach the stream nor the log.
	_, secret, _ := ParseAPIKey(key)
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), secret) || strings.Contains(logBuf.String(), secret) {
		t.Fatalf("a key's secret was recorded:\n%s\n%s", raw, logBuf.String())
	}
	// One JSON log line per record.
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d log lines", len(lines))
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &line); err != nil || line["msg"] != "audit" || line["outcome"] != OutcomeDenied || line["target"] != "bank-ledger" || line["subject"] != "shop-admin" {
		t.Fatalf("log line %s (%v)", lines[1], err)
	}

	// Latest records when since is zero, oldest first; limits hold.
	last, err := au.List(ctx, time.Time{}, 2)
	if err != nil || len(last) != 2 || last[0].Action != ActionTokenCreate || last[1].Action != ActionTriggerApply {
		t.Fatalf("latest: %+v %v", last, err)
	}
	if none, _ := au.List(ctx, time.Now().Add(time.Hour), 10); len(none) != 0 {
		t.Fatalf("future since: %+v", none)
	}

	// Fields are bounded.
	huge := RecordFor(id, ActionTriggerApply, strings.Repeat("t", 10_000), errors.New(strings.Repeat("e", 10_000)))
	if err := au.Record(ctx, huge); err != nil {
		t.Fatal(err)
	}
	last, _ = au.List(ctx, time.Time{}, 1)
	if len(last[0].Target) > maxAuditField+4 || len(last[0].Detail) > maxAuditDetail+4 {
		t.Fatalf("unbounded: target %d, detail %d bytes", len(last[0].Target), len(last[0].Detail))
	}
}

func TestAuditStreamIsCapped(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	au, err := NewAuditor(AuditConfig{KeyPrefix: b.Prefix, MaxLen: 100}, b.Client, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := au.Record(ctx, Record{Subject: "s", Action: ActionTriggerApply, Target: fmt.Sprint(i), Outcome: OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Client.XLen(ctx, newKeyLayout(b.Prefix).audit).Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole stream nodes (100 entries by default), so the
	// stream may exceed the cap by up to a node, never grow without end.
	if n < 100 || n > 300 {
		t.Fatalf("the audit stream holds %d entries with a cap of 100", n)
	}
	if _, err := NewAuditor(AuditConfig{MaxLen: -1}, b.Client, nil); err == nil {
		t.Fatal("a negative cap was accepted")
	}
}
