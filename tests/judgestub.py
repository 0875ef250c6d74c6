"""A stand-in Omni-Judge server: the two endpoints of LMDeploy's OpenAI-style api_server that the Omni-MATH
evaluator uses (GET /v1/models; POST /v1/completions, answered on one JSON line as lmdeploy's APIClient reads
it), judging TRUE when the prompt's candidate equals its reference. Bounded: it serves at most MAX_REQUESTS
requests and lives at most LIFETIME_S seconds.

As a program it takes LMDeploy's command line (`serve api_server MODEL --model-name NAME --server-name HOST
--server-port PORT ...`), so it can stand where oda-sft runs `lmdeploy`; it logs each request to $JUDGESTUB_LOG."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUESTS = 200
LIFETIME_S = 120.0
VERDICT = "## Student Final Answer\n{answer}\n\n## Equivalence Judgement\n{verdict}\n\n## Justification\nstand-in\n"


def same_answer(prompt: str) -> bool:
    """TRUE when the prompt's candidate equals its reference (the prompt says `REFERENCE: r ... CANDIDATE: c`)."""
    reference, _, candidate = prompt.partition("REFERENCE:")[2].partition("CANDIDATE:")
    return reference.strip() == candidate.strip()


def _handler(
    model_name: str, seen: list[dict[str, Any]], judge: Callable[[str], bool] = same_answer
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: the log file says what was asked
            pass

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.append({"method": "GET", "path": self.path})
            if self.path == "/v1/models":
                self._answer(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            seen.append({"method": "POST", "path": self.path, "body": body})
            if self.path != "/v1/completions" or body.get("model") != model_name:
                self._answer(404, {"object": "error", "message": f"The model {body.get('model')!r} does not exist."})
                return
            prompt = str(body.get("prompt", ""))
            verdict = "TRUE" if judge(prompt) else "FALSE"
            text = VERDICT.format(answer=prompt.partition("CANDIDATE:")[2].strip(), verdict=verdict)
            self._answer(200, {"object": "text_completion", "choices": [{"index": 0, "text": text}]})

    return Handler


@contextmanager
def serving(
    model_name: str, port: int = 0, judge: Callable[[str], bool] = same_answer
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """In this process, on a thread: the server's base URL and the requests it saw."""
    seen: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(model_name, seen, judge))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> int:
    def option(name: str, default: str) -> str:
        return argv[argv.index(name) + 1] if name in argv else default

    model_name, host, port = (
        option("--model-name", "?"),
        option("--server-name", "0.0.0.0"),
        option("--server-port", "23333"),
    )
    seen: list[dict[str, Any]] = []
    server = ThreadingHTTPServer((host, int(port)), _handler(model_name, seen))
    server.timeout = 0.2
    print(f"stand-in Omni-Judge on {host}:{port} as {model_name}: {argv}", flush=True)
    deadline = time.monotonic() + LIFETIME_S
    served = 0
    while time.monotonic() < deadline and served < MAX_REQUESTS:
        server.handle_request()
        served += len(seen)
        if os.environ.get("JUDGESTUB_LOG") and seen:
            with open(os.environ["JUDGESTUB_LOG"], "a", encoding="utf-8") as log:
                log.writelines(json.dumps(s) + "\n" for s in seen)
        seen.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
