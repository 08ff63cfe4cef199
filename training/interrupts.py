"""How a training run stops before its end: Ctrl-C or a kill, noted and taken after the step in hand
(``StopFlag``), and the exceptions that tell the loop's caller which stop it was (both checkpointed)."""
from __future__ import annotations

import os
import signal
from typing import Any


class StoppedEarly(KeyboardInterrupt):
    """--max-steps was reached: checkpointed, to be continued with --resume (not an error)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or a kill, taken after the step in hand (StopFlag): checkpointed at a step boundary. A bare
    KeyboardInterrupt (a second Ctrl-C) may land anywhere in a step, so the loop saves nothing for it."""


class StopFlag:
    """Ctrl-C (SIGINT) and a kill (SIGTERM) are noted, not raised: the step in hand finishes (a DataLoader
    starting its workers, an optimiser half through its update, a batch half augmented are never cut), and the
    caller stops after it, checkpointed. A second Ctrl-C aborts at once (KeyboardInterrupt wherever it lands;
    the loop then keeps the last checkpoint as it is). Under torchrun the agent passes on the Ctrl-C the
    terminal already sent, so there a repeated SIGINT is only noted, like a repeated SIGTERM."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, abort_on_second_interrupt: bool | None = None, announce: bool = False) -> None:
        self.requested = False
        self.abort_on_second_interrupt = ("TORCHELASTIC_RUN_ID" not in os.environ if abort_on_second_interrupt is None
                                          else abort_on_second_interrupt)
        self.announce = announce
        self._old: dict[int, Any] = {}
        try:
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not in the main thread
            self._old = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and self.requested and self.abort_on_second_interrupt:
            raise KeyboardInterrupt  # the second Ctrl-C: now
        if not self.requested and self.announce:
            what = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            again = "; Ctrl-C again aborts at once, keeping only the last checkpoint" if self.abort_on_second_interrupt else ""
            os.write(2, f"\n{what}: stopping after the step in hand, checkpointed{again}\n".encode())
        self.requested = True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
