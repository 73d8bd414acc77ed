// Package examples holds the tests that run the examples in other languages
// (node-function, python-function, node-publisher) against a real
// Switchyard server on loopback: each example is built and run as its README
// says, and what it sends and receives is checked. It has no non-test code.
//
// The tests need Node.js with npm and each Node example's node_modules
// (npm ci), and a Python 3 with Debian's python3-grpcio and python3-protobuf
// plus protoc (protobuf-compiler, libprotobuf-dev); scripts/test.sh installs
// them. A missing tool fails the tests with what to install; they never skip.
// SWITCHYARD_PYTHON names the interpreter to use (default: the first of
// python3 on PATH and /usr/bin/python3 that imports grpc).
package examples
