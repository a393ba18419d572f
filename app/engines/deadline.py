"""OCR_ENGINE_TIMEOUT for engines that run an ONNX model inside the server process.

Tesseract is a child process that pytesseract kills at the timeout. An ONNX model runs in
the uWSGI worker itself, where nothing stopped it until harakiri killed the whole worker: a
502, no record, every loaded model lost. onnxruntime ends a running `session.run` (with an
error) once the RunOptions it was given has `terminate` set, from any thread: `limit()` sets it
from a timer, and a wrapped session passes the current call's RunOptions to every run.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_run_options: ContextVar[Any] = ContextVar("onnx_run_options", default=None)


class CancellableSession:
    """An onnxruntime InferenceSession whose runs stop when the current `limit()` expires."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, output_names, input_feed, run_options=None):
        return self.session.run(output_names, input_feed, run_options or _run_options.get())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


@contextmanager
def limit(seconds: float) -> Iterator[Any]:
    """The block's ONNX runs (through CancellableSession) end with an error once `seconds` have
    passed; the yielded RunOptions' `terminate` then tells a timeout from any other failure."""
    import onnxruntime

    options = onnxruntime.RunOptions()
    timer = threading.Timer(seconds, setattr, (options, "terminate", True))
    timer.daemon = True
    token = _run_options.set(options)
    timer.start()
    try:
        yield options
    finally:
        timer.cancel()
        _run_options.reset(token)
