#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the
# tests need when it is missing (Debian packages via apt-get, Go modules),
# then runs vet, gofmt, the generated-code check and every test with the race
# detector. Idempotent: running it again changes nothing that already works.
#
#   scripts/test.sh            everything
#   scripts/test.sh ./router/... -run TestX   (extra args go to `go test`)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '\n== %s\n' "$*" >&2; }

apt_updated=
apt_install() { # apt_install PACKAGE
  log "installing $1"
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}
need_pkg() { # need_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

wait_for() { # wait_for NAME CMD...
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "$name did not come up" >&2; return 1
}

log "services"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Redis: every store test and the end-to-end tests. The tests start their
# own Redis Cluster (six redis-server processes joined by redis-cli --cluster
# create, once per test package) and Sentinel groups (redis-server
# --sentinel) on spare loopback ports from these binaries.
need_pkg redis-server redis-server
need_pkg redis-cli redis-tools
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping
fi
echo "redis: $(redis-cli -h 127.0.0.1 -p 6379 ping)"

# PostgreSQL: the postgres connector's tests start private clusters with
# wal_level=logical from these binaries; the local cluster is started too.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
if ! port_open 5432 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi

# MariaDB: the mysql connector's tests start private servers with the binlog on.
need_pkg mariadbd mariadb-server
if ! port_open 3306; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi

# RabbitMQ, Mosquitto and NATS with JetStream: the amqp, mqtt and
# nats_jetstream connectors' tests use them on their standard ports.
need_pkg rabbitmq-server rabbitmq-server
if ! port_open 5672; then
  rabbitmq-server -detached || true
fi
need_pkg mosquitto mosquitto
if ! port_open 1883; then
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
need_pkg nats-server nats-server
if ! port_open 4222; then
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
for svc in 5672:rabbitmq 1883:mosquitto 4222:nats; do
  wait_for "${svc#*:}" port_open "${svc%%:*}"
done
echo "services: redis, postgresql binaries, mariadb, rabbitmq, mosquitto, nats up"

log "examples in other languages"
# examples/ tests run a Node function and publisher and a Python function.
# Node.js 20 or later with npm (the CloudEvents JS SDK needs 20; Debian 12's
# own nodejs is 18, so a NodeSource-style apt source is expected).
need_pkg node nodejs
command -v npm >/dev/null 2>&1 || apt_install npm
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
  { echo "Node.js $(node --version) is too old: the examples need 20 or later" >&2; exit 1; }
for d in examples/node-function examples/node-publisher; do
  sum=$(sha256sum "$d/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$d/node_modules/.switchyard-lock" 2>/dev/null)" != "$sum" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$d/node_modules/.switchyard-lock"
  fi
done
# Python: Debian's grpcio and protobuf for /usr/bin/python3, and protoc with
# the well-known .proto files for examples/python-function/gen.sh.
[ -x /usr/bin/python3 ] || apt_install python3
/usr/bin/python3 -c 'import grpc' 2>/dev/null || apt_install python3-grpcio
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || apt_install python3-protobuf
need_pkg protoc protobuf-compiler
[ -f /usr/include/google/protobuf/duration.proto ] || apt_install libprotobuf-dev
echo "examples: node $(node --version), npm $(npm --version), $(/usr/bin/python3 --version), $(protoc --version)"

log "go modules"
go mod download

log "go vet"
go vet ./...

log "staticcheck"
[ -x "$(go env GOPATH)/bin/staticcheck" ] && "$(go env GOPATH)/bin/staticcheck" -version | grep -q 2026.2.2 ||
  GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
"$(go env GOPATH)/bin/staticcheck" ./...

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

log "generated code and buf lint"
scripts/gen-proto.sh --check

log "go test -race -shuffle=on"
go test -race -shuffle=on -timeout 30m -count=1 "${@:-./...}"

# The Helm chart's check is a Go module of its own (Helm's library and the
# Kubernetes API types stay out of the main go.mod): it renders the chart,
# lints it, decodes every manifest strictly and runs serve --check-config on
# the result. Offline; run with the whole suite only. Without -race: it
# starts no goroutines of its own, and instrumenting Helm's dependency tree
# would cost minutes of build.
if [ $# -eq 0 ]; then
  log "helm chart (deploy/helm/chartcheck)"
  (
    cd deploy/helm/chartcheck
    go mod download
    go vet ./...
    "$(go env GOPATH)/bin/staticcheck" ./...
    go test -shuffle=on -count=1 ./...
  )
fi

# The alerting rules and the Grafana dashboard are checked by a module of its
# own too (Prometheus' rule and PromQL parsers would bring their large module
# into the main go.mod), against a real server built from this tree: it
# requires this module through `replace ../..`, and tidy keeps its
# requirements in step with this module's.
if [ $# -eq 0 ]; then
  log "alerting rules and dashboard (deploy/monitoring)"
  (
    cd deploy/monitoring
    go mod tidy
    go vet ./...
    "$(go env GOPATH)/bin/staticcheck" ./...
    go test -race -shuffle=on -count=1 ./...
  )
fi
