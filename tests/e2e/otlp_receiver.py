"""A tiny OTLP/HTTP trace receiver for the end-to-end tests: a real HTTP server that accepts
`POST /v1/traces` in the OTLP JSON encoding (what Chorus exports) and keeps the spans.

OTLP JSON writes trace and span ids as hex (the specification) or, from a plain protobuf JSON
encoder, as base64; both are read here, as lowercase hex.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _hex_id(value: str | None, size: int) -> str:
    if not value:
        return ""
    if len(value) == size * 2 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        return binascii.hexlify(base64.b64decode(value)).decode()
    except (binascii.Error, ValueError):
        return value


def _any_value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    return value


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items or []}


@dataclass
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    status: int = 0     # 0 unset, 1 ok, 2 error


class OTLPReceiver:
    """`start()` listens on 127.0.0.1 (a free port); `endpoint` is what `tracing.otlp_endpoint` takes."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.bad_requests: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != "/v1/traces" or not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    receiver._bad(f"{self.path} {self.headers.get('Content-Type')}")
                    self.send_response(415)
                    self.end_headers()
                    return
                try:
                    receiver._add(json.loads(body))
                except (ValueError, KeyError, TypeError) as error:
                    receiver._bad(f"undecodable body: {error}: {body[:300]!r}")
                    self.send_response(400)
                    self.end_headers()
                    return
                answer = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "OTLPReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _bad(self, what: str) -> None:
        with self._lock:
            self.bad_requests.append(what)

    def _add(self, document: dict[str, Any]) -> None:
        received = []
        for resource_spans in document.get("resourceSpans", []):
            service = _attributes(resource_spans.get("resource", {}).get("attributes")).get("service.name", "")
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    received.append(ReceivedSpan(
                        service=service, trace_id=_hex_id(span.get("traceId"), 16), span_id=_hex_id(span.get("spanId"), 8),
                        parent_span_id=_hex_id(span.get("parentSpanId"), 8), name=span.get("name", ""),
                        kind=int(span.get("kind", 0)), attributes=_attributes(span.get("attributes")),
                        events=[event.get("name", "") for event in span.get("events", [])],
                        status=int((span.get("status") or {}).get("code", 0))))
        with self._lock:
            self.requests += 1
            self.spans.extend(received)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]
