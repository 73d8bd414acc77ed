package e2e

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// mqttConnect connects an MQTT 3.1.1 client to the local Mosquitto.
func mqttConnect(t *testing.T, clientID string, clean bool) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID(clientID).
		SetCleanSession(clean).SetAutoReconnect(false))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "Mosquitto at 127.0.0.1:1883")
	require.NoError(t, tok.Error())
	return c
}

// mqttCrash is the mqtt source's crash test (see
// TestConnectorCrashLosesNothing) with protocol version (4: 3.1.1, 5): 500
// QoS 1 messages published to its topic while it ingests them; Mosquitto
// keeps the persistent session, queues what is published while the server
// is down and resends what it had not acknowledged.
func mqttCrash(t *testing.T, version int) crashCase {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	clientID := "sytest-e2e-mqtt-" + prefix
	topic := clientID + "/readings"

	// The persistent session must exist before anything is published, as
	// for any MQTT subscriber; the source resumes it.
	pre := mqttConnect(t, clientID, false)
	tok := pre.Subscribe(topic, 1, nil)
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	pre.Disconnect(100)
	t.Cleanup(func() { // a clean connection drops the session
		if c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID(clientID).SetCleanSession(true)); c.Connect().WaitTimeout(5 * time.Second) {
			c.Disconnect(100)
		}
	})
	pub := mqttConnect(t, clientID+"-pub", true)
	t.Cleanup(func() { pub.Disconnect(100) })

	// 500 stays below Mosquitto's default max_queued_messages (1000).
	const total = 500
	return crashCase{
		prefix: prefix,
		sources: fmt.Sprintf(`
  - name: readings
    kind: mqtt
    fields:
      url: tcp://127.0.0.1:1883
      topics: [%q]
      client_id: %s
      protocol_version: %d
      content_type: application/json
      type: crash.mqtt
`, topic, clientID, version),
		filter: "{attributes: {type: crash.mqtt}}",
		total:  total,
		feed: func() <-chan error {
			published := make(chan error, 1)
			go func() {
				for i := range total {
					tok := pub.Publish(topic, 1, false, fmt.Appendf(nil, `{"reading":%d}`, i))
					if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						published <- fmt.Errorf("publish %d: %v", i, tok.Error())
						return
					}
					if i%10 == 9 {
						time.Sleep(5 * time.Millisecond)
					}
				}
				published <- nil
			}()
			return published
		},
	}
}
