"""OCR_ENGINE_TIMEOUT for engines that run an ONNX model inside the server process.

Tesseract (tesserocr) stops itself: it is handed the timeout (`Recognize(timeout=)`). An ONNX
model runs in the uWSGI worker itself, where nothing stopped it until harakiri killed the
whole worker: a 502, no record, every loaded model lost. `limit()` starts a timer for the block; when it
fires, the block's runs end with an error, from the timer's thread:
- onnxruntime ends a running `session.run` once the RunOptions it was given has `terminate`
  set: a CancellableSession passes the current block's RunOptions to every run;
- OpenVINO ends an infer request started with `start_async` when `cancel()` is called (a
  synchronous `infer()` does not stop: measured with openvino 2026.4): a
  CancellableInferRequest runs each inference that way, and the timer cancels it.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_current: ContextVar["Run | None"] = ContextVar("engine_run", default=None)


class Run:
    """One `limit()` block: expires once, from the timer's thread, stopping what runs then."""

    def __init__(self, run_options: Any) -> None:
        self.run_options = run_options  # onnxruntime.RunOptions, or None without onnxruntime
        self._lock = threading.Lock()
        self._expired = False
        self._cancels: list[Callable[[], None]] = []

    @property
    def terminate(self) -> bool:
        """True once the time is up: tells a timeout from any other failure."""
        return self._expired

    def expire(self) -> None:
        with self._lock:  # held while cancelling: a block that has ended is not cancelled late
            self._expired = True
            if self.run_options is not None:
                self.run_options.terminate = True
            for cancel in self._cancels:
                cancel()

    @contextmanager
    def started(self, start: Callable[[], None], cancel: Callable[[], None]) -> Iterator[None]:
        """`start()` a run that `cancel()` stops, and within the block, expiring cancels it;
        past the time, nothing starts (TimeoutError). Start and cancel never interleave."""
        with self._lock:
            if self._expired:
                raise TimeoutError("the engine's time is up")
            start()
            self._cancels.append(cancel)
        try:
            yield
        finally:
            with self._lock:
                self._cancels.remove(cancel)


class CancellableSession:
    """An onnxruntime InferenceSession whose runs stop when the current `limit()` expires."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, output_names, input_feed, run_options=None):
        run = _current.get()
        return self.session.run(output_names, input_feed, run_options or (run and run.run_options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


class CancellableInferRequest:
    """An OpenVINO InferRequest whose inferences stop when the current `limit()` expires."""

    def __init__(self, request: Any) -> None:
        self.request = request

    def infer(self, inputs: Any = None) -> None:
        run = _current.get()
        if run is None:
            self.request.infer(inputs)
            return
        with run.started(lambda: self.request.start_async(inputs), self.request.cancel):
            self.request.wait()  # raises once cancelled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.request, name)


def _run_options() -> Any:
    try:
        import onnxruntime
    except ImportError:  # an OpenVINO-only run needs none
        return None
    return onnxruntime.RunOptions()


@contextmanager
def limit(seconds: float) -> Iterator[Run]:
    """The block's ONNX runs (through CancellableSession / CancellableInferRequest) end with an
    error once `seconds` have passed; the yielded Run's `terminate` then tells a timeout from
    any other failure."""
    run = Run(_run_options())
    timer = threading.Timer(seconds, run.expire)
    timer.daemon = True
    token = _current.set(run)
    timer.start()
    try:
        yield run
    finally:
        timer.cancel()
        _current.reset(token)
