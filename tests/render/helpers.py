"""A run's NPZ arrays for the brief, with known values, and a loopback OpenAI-protocol server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def fast_arrays() -> dict[str, dict[str, np.ndarray]]:
    """Scalar results of the ``fast`` components of a quiet, dark, slowly cut vertical clip."""
    f = np.float64
    return {
        "metadata_features": {"duration_s": f(42.0), "width": np.int64(720),
                              "height": np.int64(1280), "fps": f(30.0),
                              "title_chars": np.int64(12), "description_words": np.int64(8),
                              "tags_count": np.int64(0), "title_words": np.int64(2)},
        "shot_detection": {"n_cuts": np.int64(3), "cuts_per_minute": f(4.3),
                           "mean_shot_length_s": f(10.5),
                           "cut_timestamps_s": np.array([11.0, 20.5, 31.0])},
        "color_stats": {"brightness_mean": f(0.21), "contrast_mean": f(0.18)},
        "motion": {"motion_mean": f(0.031), "static_ratio": f(0.62)},
        "loudness": {"integrated_lufs": f(-21.4), "true_peak_dbtp": f(-0.3),
                     "short_term_lufs": np.array([-30.0, -25.5, -24.0], dtype=np.float32),
                     "short_term_times_s": np.array([1.0, 2.0, 3.0])},
        "audio_features": {"tempo_bpm": f(118.0), "silence_ratio": f(0.12)},
    }


@contextmanager
def openai_server(answer: Callable[[dict[str, Any], int], tuple[int, dict[str, str], bytes]]
                  ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback server of ``POST /v1/chat/completions``; ``answer(body, n)`` gives the n-th
    request's (status, headers, body). Yields (base URL, the requests' bodies)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            status, headers, payload = answer(body, len(seen))
            try:
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout case)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def completion(content: dict[str, Any]) -> bytes:
    return json.dumps({"model": "fake", "choices": [{"message": {
        "role": "assistant", "content": json.dumps(content, ensure_ascii=False)}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20}}).encode()


def echo_statements(body: dict[str, Any]) -> dict[str, Any]:
    """An answer that rewrites nothing: the statements of the request, as the schema asks."""
    schema = body["response_format"]["json_schema"]["schema"]
    user = body["messages"][-1]["content"]
    if "sentences" in schema["properties"]:  # the retry: its statements as one JSON list
        return {"sentences": json.loads(next(ln for ln in user.splitlines()
                                             if ln.startswith("[\"")))}
    lines = [ln.split(". ", 1)[1] for ln in user.splitlines() if ln[:1].isdigit()]
    out, i = [], 0
    for sec in schema["properties"]["sections"]["prefixItems"]:
        n = sec["properties"]["sentences"]["minItems"]
        out.append({"id": sec["properties"]["id"]["const"], "sentences": lines[i:i + n]})
        i += n
    return {"sections": out}
