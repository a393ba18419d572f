"""The throttles' clock in tests (the autouse `clock` fixture of conftest.py)."""

T0 = 1_800_000_000  # a window boundary for every period (divisible by 86400)


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now
