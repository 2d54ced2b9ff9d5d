"""`canhgiac demo`'s Ctrl-C: a KeyboardInterrupt swallowed on its way (kafka-python's event loop
catches BaseException in its tasks) is still acted on, and a second Ctrl-C raises again, until
the clean-up has begun."""

from __future__ import annotations

import os
import signal

import pytest

from canhgiac.cmd_demo import Interrupt


def test_a_swallowed_ctrl_c_is_acted_on_at_the_next_check_and_a_second_one_raises(capsys):
    interrupt = Interrupt()
    interrupt.check()  # nothing received: no effect
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    try:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, to this process
            for _ in range(1000):  # the handler runs between two bytecodes of this thread
                pass
        except KeyboardInterrupt:
            pass  # swallowed, as a library's ``except BaseException`` does
        assert interrupt.received.is_set()
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()  # the demo's next wait notices it
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C raises again
            for _ in range(1000):
                pass
        interrupt.cleaning.set()  # the clean-up has begun: Ctrl-C no longer cuts it short
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
        interrupt.check()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "still stopping the processes; please wait" in capsys.readouterr().out
