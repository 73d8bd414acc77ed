// Package all registers every built-in connector. Only cmd/ and the server
// import it.
package all

import (
	// Each import registers one connector kind.
	_ "github.com/switchyard-io/switchyard/connectors/webhook"
)
