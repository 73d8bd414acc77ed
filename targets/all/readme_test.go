package all_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/router/trigger"
)

// TestREADMEPublishTrigger: the README's broker-target trigger is valid as
// shown.
func TestREADMEPublishTrigger(t *testing.T) {
	specs, err := trigger.Parse([]byte(testenv.READMEBlock(t, "publish-trigger")))
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.NoError(t, specs[0].Validate())
	require.Equal(t, "amqp", specs[0].Target.Publish.Kind)
	require.Equal(t, `amqp://rabbitmq.internal:5672/shop exchange="orders"`, specs[0].Target.Redacted())
}
