package e2e

import (
	"fmt"
	"os"
	"path/filepath"
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

// TestMQTTSourceCrashLosesNothing runs an mqtt source in `switchyard serve`,
// publishes 500 QoS 1 messages to its topic while it ingests them,
// SIGKILLs the server mid-stream, restarts it and checks that every
// message's event reached the function: Mosquitto keeps the persistent
// session, queues what is published while the server is down and resends
// what it had not acknowledged.
func TestMQTTSourceCrashLosesNothing(t *testing.T) {
	for _, version := range []int{4, 5} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) { mqttCrash(t, version) })
	}
}

func mqttCrash(t *testing.T, version int) {
	redisURL := testenv.RedisURL()
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

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: readings
    kind: mqtt
    fields:
      url: tcp://127.0.0.1:1883
      topics: [%q]
      client_id: %s
      protocol_version: %d
      content_type: application/json
      type: crash.mqtt
`, topic, clientID, version)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: mqtt-crash
filter: {attributes: {type: crash.mqtt}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	// Publish in the background, paced, so that the kill lands mid-stream.
	// 500 stays below Mosquitto's default max_queued_messages (1000).
	const total = 500
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
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.kill()
	atKill := c.unique()
	require.NoError(t, <-published)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	restarted := time.Now()
	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d messages delivered after the restart (have %d)", total, c.unique())
	t.Logf("mqtt v%d crash test: %d published, %d delivered before SIGKILL, %d delivered in all (%s after the restart), %d duplicates",
		version, total, atKill, c.unique(), time.Since(restarted).Round(time.Millisecond), c.duplicates())
	b.stop(t)
}
