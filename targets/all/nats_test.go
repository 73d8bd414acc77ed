package all_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func jetStreamErr(url string) (jetstream.JetStream, *nats.Conn, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc, nil
}

func jetStream(t *testing.T, url string) (jetstream.JetStream, *nats.Conn) {
	t.Helper()
	js, nc, err := jetStreamErr(url)
	require.NoError(t, err)
	return js, nc
}
