package trigger_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/router/trigger"
	_ "github.com/switchyard-io/switchyard/targets/all"
)

// problems decodes a trigger file and returns every problem, decoding and
// validation, as "line N: path: msg".
func problems(t *testing.T, file string) []string {
	t.Helper()
	docs, errs := trigger.Decode([]byte(file))
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	for _, d := range docs {
		for _, e := range d.Validate() {
			out = append(out, e.Error())
		}
	}
	return out
}

func TestPublishTargetFieldsValidatedWithTheirPaths(t *testing.T) {
	cases := map[string]struct {
		file string
		want []string // each a substring of one problem, in order
	}{
		"missing required field": {
			file: "name: a\ntarget:\n  publish:\n    kind: amqp\n    routing_key: x\n",
			want: []string{"line 3: target.publish.exchange: required"},
		},
		"unknown field and wrong types": {
			file: "name: a\ntarget:\n  publish:\n    kind: amqp\n    exchange: orders\n    mandatory: 'yes'\n    colour: red\n",
			want: []string{"line 7: target.publish.colour: unknown field of target kind amqp; want one of kind, exchange,", "line 6: target.publish.mandatory: want a bool"},
		},
		"unknown kind": {
			file: "name: a\ntarget: {publish: {kind: carrier-pigeon}}\n",
			want: []string{`target.publish.kind: unknown target kind "carrier-pigeon"; want one of amqp, kafka, nats_jetstream, redis_streams, sql`},
		},
		"no kind": {
			file: "name: a\ntarget: {publish: {exchange: x}}\n",
			want: []string{"target.publish.kind: required"},
		},
		"credentials inline": {
			file: "name: a\ntarget: {publish: {kind: redis_streams, url: 'redis://:hunter2@r:6379/0', stream: s}}\n",
			want: []string{"target.publish.url: holds credentials"},
		},
		"secret name malformed": {
			file: "name: a\ntarget: {publish: {kind: nats_jetstream, subject: a.b, user: u, password_secret: 'not a name'}}\n",
			want: []string{`target.publish.password_secret: "not a name" is not a secret name`},
		},
		"kind checks": {
			file: "name: a\ntarget: {publish: {kind: sql, dialect: oracle, addr: db, database: d, user: u, table: 'x; drop'}}\n",
			want: []string{`target.publish.dialect: "oracle": want postgres or mysql`, `target.publish.addr: "db" is not host:port`, `target.publish.table: "x; drop"`},
		},
		"tls and auth do not apply": {
			file: "name: a\ntarget: {publish: {kind: kafka, topic: t}, tls: {server_name: x}, auth: {bearer_secret: b}}\n",
			want: []string{"target.tls: does not apply to a publish target", "target.auth: does not apply to a publish target"},
		},
		"publish beside grpc": {
			file: "name: a\ntarget: {grpc: 'h:1', publish: {kind: kafka, topic: t}}\n",
			want: []string{"target: set only one of target.grpc, target.url, target.pull and target.publish"},
		},
		"wildcard subject": {
			file: "name: a\ntarget: {publish: {kind: nats_jetstream, subject: 'orders.>'}}\n",
			want: []string{`target.publish.subject: "orders.>" is not a subject to publish to`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := problems(t, tc.file)
			require.Len(t, got, len(tc.want), "%q", got)
			for i, w := range tc.want {
				require.Contains(t, got[i], w)
			}
		})
	}
}

func TestPublishTargetValidAndRoundTrips(t *testing.T) {
	file := `name: orders-to-rabbit
target:
  publish:
    kind: amqp
    url: amqp://mq.internal:5672/shop
    user: switchyard
    password_secret: rabbit-pw
    exchange: orders
    routing_key_attribute: type
    mandatory: false
`
	specs, err := trigger.Parse([]byte(file))
	require.NoError(t, err)
	tr, err := trigger.Compile(specs[0])
	require.NoError(t, err)
	pt := tr.Spec.Target.Publish
	require.NotNil(t, pt)
	require.Equal(t, `amqp://mq.internal:5672/shop exchange="orders"`, tr.Spec.Target.Redacted())
	require.Empty(t, tr.Spec.Target.Address())

	// The API's proto and the JSON of listings give the same target back.
	p := trigger.ToProto(tr.Spec)
	back := trigger.FromProto(p)
	require.True(t, proto.Equal(p, trigger.ToProto(back)))
	_, c1, err := pt.Build()
	require.NoError(t, err)
	_, c2, err := back.Target.Publish.Build()
	require.NoError(t, err)
	require.Equal(t, c1, c2)
	require.False(t, c2.Bool("mandatory"))

	b, err := json.Marshal(tr.Spec)
	require.NoError(t, err)
	require.Contains(t, string(b), `"publish":{"exchange":"orders","kind":"amqp",`)
	again, err := trigger.Parse(b)
	require.NoError(t, err)
	_, c3, err := again[0].Target.Publish.Build()
	require.NoError(t, err)
	require.Equal(t, c1, c3)
	var direct trigger.PublishTarget
	require.NoError(t, json.Unmarshal([]byte(`{"kind":"kafka","topic":"t","brokers":["k:1"]}`), &direct))
	require.Equal(t, "kafka", direct.Kind)
	require.Equal(t, []any{"k:1"}, direct.Fields["brokers"])
}

func TestPublishTargetPolicy(t *testing.T) {
	spec := trigger.Spec{Name: "p", Target: trigger.Target{Publish: &trigger.PublishTarget{Kind: "nats_jetstream", Fields: map[string]any{
		"url": "nats://10.0.0.1:4222,nats://ok:4222", "subject": "a.b", "user": "u", "password_secret": "nats-pw",
	}}}}
	require.NoError(t, spec.Validate())
	pol := trigger.Policy{
		RequireTLS: true,
		CheckAddress: func(hp string) error {
			if strings.HasPrefix(hp, "10.") {
				return errors.New("forbidden address")
			}
			return nil
		},
		CheckSecret: func(name string) error { return errors.New("not held: " + name) },
	}
	err := spec.ValidateWith(pol)
	var fes trigger.FieldErrors
	require.ErrorAs(t, err, &fes)
	var got []string
	for _, fe := range fes {
		got = append(got, fe.Error())
	}
	require.Equal(t, []string{
		"target.publish: this server requires TLS to targets: use the kind's TLS form (see docs/targets/nats_jetstream.md)",
		"target.publish.url: forbidden address",
		"target.publish.password_secret: not held: nats-pw",
	}, got)
	spec.Target.Publish.Fields["url"] = "tls://ok:4222"
	require.NoError(t, spec.ValidateWith(trigger.Policy{RequireTLS: true, CheckSecret: func(string) error { return nil }}))
}

// FuzzPublishTargetJSON: the flat JSON form of a publish target (API
// listings, `-o json`) never panics, and what it reads writes back the
// same.
func FuzzPublishTargetJSON(f *testing.F) {
	f.Add([]byte(`{"kind":"amqp","exchange":"orders","mandatory":false}`))
	f.Add([]byte(`{"kind":"kafka","brokers":["k:1",2.5,{"a":[1]}],"topic":"t"}`))
	f.Add([]byte(`{"kind":7}`))
	f.Add([]byte(`{"maxlen":12345678901234567890}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p trigger.PublishTarget
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("%s read but does not write back: %v", b, err)
		}
		var again trigger.PublishTarget
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%s does not read back: %v", out, err)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed %s to %s", out, out2)
		}
	})
}
