"""A local webhook receiver: what a housing corporation's endpoint would receive from the notifier.

`python -m devstack.webhook_receiver --port 9400 --secret whsec_...` prints every delivery (type, ids,
whether the Standard Webhooks signature verifies). Tests drive `WebhookReceiver` directly: its
`behaviour` decides each answer (status, headers, delay), and `received` keeps every request.
Loopback only; never imported by production code.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time()

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


def verify(secret: str, received: Received) -> bool:
    """Standard Webhooks verification with the independent `standardwebhooks` package when installed
    (the test extras pin it), else with the notifier's own signing code."""
    try:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError
    except ImportError:  # pragma: no cover - the demo without test extras
        from services.notifier.core.signing import signature

        header = received.headers.get("webhook-signature", "")
        expected = signature(
            secret, received.webhook_id, int(received.headers.get("webhook-timestamp", "0")), received.body
        )
        return expected in header.split(" ")
    try:
        Webhook(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (port 0 = any free port) in a background thread."""

    def __init__(
        self,
        port: int = 0,
        behaviour: Callable[[Received, int], Answer] | None = None,
        on_receive: Callable[[Received], None] | None = None,
        keep: Callable[[Received], bool] | None = None,
    ) -> None:
        self.port = port
        # Requests `keep` refuses are answered like the others but not recorded (a test on a shared broker
        # and database keeps only the deliveries of its own regions).
        self.keep = keep
        self.behaviour = behaviour or (lambda request, index: Answer())
        self.on_receive = on_receive
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                request = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                with receiver._lock:
                    index = len(receiver.received)
                    if receiver.keep is None or receiver.keep(request):
                        receiver.received.append(request)
                if receiver.on_receive is not None:
                    receiver.on_receive(request)
                answer = receiver.behaviour(request, index)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up (timeout) meanwhile

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(received: Received, secret: str | None) -> str:
    try:
        event = received.json()
        data = event.get("data", {})
        kind = event.get("type", "?").removeprefix("nl.wijkmatch.")
        if kind.startswith("care."):  # a care request to a provider (issue 16)
            what = (
                f"{kind} {data.get('care_type')} for case={data.get('case')} home in "
                f"{data.get('neighbourhood')} start={data.get('start_date')} "
                f"respond_by={data.get('respond_by')}"
            )
        else:
            what = (
                f"{kind} offer={data.get('offer_id')} unit={data.get('unit')} case={data.get('case')} "
                f"respond_by={data.get('respond_by')}"
            )
            if data.get("arrangements"):
                what += " care=" + ",".join(f"{a['care_type']}:{a['provider']}" for a in data["arrangements"])
            if data.get("lease_party"):
                what += f" lease={data['lease_party'].get('provider') or 'household'}"
    except (ValueError, AttributeError):
        what = f"{len(received.body)} bytes (not JSON)"
    check = "" if secret is None else (" signature ok" if verify(secret, received) else " SIGNATURE INVALID")
    return f"webhook {received.webhook_id}: {what}{check}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.webhook_receiver")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--secret", default=None, help="whsec_... to verify signatures with")
    args = parser.parse_args(argv)
    receiver = WebhookReceiver(
        args.port, on_receive=lambda r: print(describe(r, args.secret), flush=True)
    ).start()
    print(f"webhook receiver listening on {receiver.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


def for_regions(*regions: str) -> Callable[[Received], bool]:
    """A `keep` filter: webhooks whose CloudEvent names one of these regions."""
    wanted = set(regions)

    def keep(request: Received) -> bool:
        try:
            return request.json()["data"]["region"] in wanted
        except (ValueError, KeyError, TypeError):
            return False

    return keep
