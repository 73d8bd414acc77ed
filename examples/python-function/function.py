#!/usr/bin/env python3
"""A Switchyard function in Python. It serves the contract's unary
FunctionService/Invoke (proto/switchyard/function/v1/function.proto) with
grpcio and hands each event to a handler as an events.CloudEvent. What it
does with an event, to show the outcomes:

  - it prints one JSON line on standard output: the invocation's metadata and
    the event in the CloudEvents JSON format;
  - an event whose JSON data has "retry_ms": N is answered OUTCOME_RETRY with
    retry_after N ms on its first attempt (its second attempt comes at least
    N ms later);
  - every other attempt is answered OUTCOME_ACK with one reply event,
    "<type>.handled" with the same data and extensions, which Switchyard
    publishes to the bus.

InvokeStream is not registered: grpcio answers UNIMPLEMENTED for it, and
Switchyard then delivers with unary calls (docs/functions/contract.md).

Usage: ./gen.sh && python3 function.py [--listen 127.0.0.1:7072]
The address it listens on is printed on standard error (port 0 picks one).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))  # written by gen.sh

import grpc  # noqa: E402

import events  # noqa: E402
from switchyard.function.v1 import function_pb2  # noqa: E402

SERVICE = "switchyard.function.v1.FunctionService"

_print_lock = threading.Lock()


def handle(ev: events.CloudEvent, info: dict) -> function_pb2.InvokeResponse:
    """Decides what becomes of one event."""
    retry_ms = asked_retry(ev)
    if retry_ms is not None and info["attempt"] == 1:
        # OUTCOME_RETRY with retry_after: no google.rpc.Status to build.
        resp = function_pb2.InvokeResponse(
            outcome=function_pb2.OUTCOME_RETRY, reason=f"asked to be retried after {retry_ms} ms"
        )
        resp.retry_after.FromMilliseconds(retry_ms)
        return resp
    reply = dataclasses.replace(
        ev,
        id=ev.id + ".handled",
        type=ev.type + ".handled",
        source="/examples/python-function",
        time=datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        extensions=dict(ev.extensions),
    )
    # Always say OUTCOME_ACK: an empty outcome acknowledges too, but
    # Switchyard cannot tell it from a forgotten one.
    return function_pb2.InvokeResponse(outcome=function_pb2.OUTCOME_ACK, replies=[events.to_proto(reply)])


def invoke(request: function_pb2.InvokeRequest, context: grpc.ServicerContext) -> function_pb2.InvokeResponse:
    if not request.HasField("event"):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request has no event")
    try:
        ev = events.from_proto(request.event)
    except ValueError as err:
        # A permanent code: Switchyard dead-letters the event with this message.
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot convert the event: {err}")
    info = {
        "attempt": request.attempt,
        "round": request.round,
        "trigger": request.trigger,
        "idempotency_key": request.idempotency_key,
    }
    if request.HasField("deadline"):
        info["deadline"] = request.deadline.ToJsonString()
    try:
        resp = handle(ev, info)
    except Exception as err:  # noqa: BLE001 - any failure of the handler
        # A retryable code: the event comes again after the trigger's backoff.
        context.abort(grpc.StatusCode.INTERNAL, f"handler failed: {err}")
    line = json.dumps({**info, "via": "unary", "received_ms": time.time_ns() // 1_000_000, "event": events.to_json(ev)})
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return resp


def asked_retry(ev: events.CloudEvent) -> int | None:
    if ev.data is None or not events.is_json(ev.datacontenttype):
        return None
    try:
        data = json.loads(ev.data)
    except ValueError:
        return None
    ms = data.get("retry_ms") if isinstance(data, dict) else None
    return ms if isinstance(ms, int) and not isinstance(ms, bool) and ms > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description="Switchyard example function (unary Invoke)")
    parser.add_argument("--listen", default="127.0.0.1:7072", help="host:port to listen on (port 0 picks one)")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    # The one method, registered by hand: no generated _grpc module needed.
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Invoke": grpc.unary_unary_rpc_method_handler(
                        invoke,
                        request_deserializer=function_pb2.InvokeRequest.FromString,
                        response_serializer=function_pb2.InvokeResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    try:
        port = server.add_insecure_port(args.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        sys.exit(f"cannot listen on {args.listen}")
    server.start()
    host = args.listen.rsplit(":", 1)[0]
    print(f"python function listening on {host}:{port}", file=sys.stderr, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    # Finish the calls running (Switchyard retries what is cut short).
    server.stop(grace=10).wait()


if __name__ == "__main__":
    main()
