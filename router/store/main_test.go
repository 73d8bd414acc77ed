package store_test

import (
	"os"
	"testing"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestMain stops the Redis Cluster the tests share (testenv.All).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
