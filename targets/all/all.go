// Package all registers every built-in broker target kind. Only cmd/ (and
// tests that need every kind) import it.
package all

import (
	// Each import registers one target kind.
	_ "github.com/switchyard-io/switchyard/targets/amqp"
	_ "github.com/switchyard-io/switchyard/targets/kafka"
	_ "github.com/switchyard-io/switchyard/targets/natsjs"
	_ "github.com/switchyard-io/switchyard/targets/redisstreams"
	_ "github.com/switchyard-io/switchyard/targets/sql"
)
