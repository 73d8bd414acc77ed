// Package all registers every built-in connector. Only cmd/ (and tests that
// need every kind) import it.
package all

import (
	// Each import registers one connector kind.
	_ "github.com/switchyard-io/switchyard/connectors/amqp"
	_ "github.com/switchyard-io/switchyard/connectors/directory"
	_ "github.com/switchyard-io/switchyard/connectors/kafka"
	_ "github.com/switchyard-io/switchyard/connectors/mqtt"
	_ "github.com/switchyard-io/switchyard/connectors/mysql"
	_ "github.com/switchyard-io/switchyard/connectors/natsjs"
	_ "github.com/switchyard-io/switchyard/connectors/postgres"
	_ "github.com/switchyard-io/switchyard/connectors/redisstreams"
	_ "github.com/switchyard-io/switchyard/connectors/s3notify"
	_ "github.com/switchyard-io/switchyard/connectors/s3poll"
	_ "github.com/switchyard-io/switchyard/connectors/schedule"
	_ "github.com/switchyard-io/switchyard/connectors/webhook"
)
