"""The Job worker's delivery: every slot of one result runs in one GUI event, in order.

Why it matters: the engine service frees the engine in a slot connected after the loader's.
Had the two slots run as two queued events (Qt posts one per connection, from the worker, one
by one), the GUI could run in between and see a model loaded on an engine still held: a Send
there was refused as "The model is loading" (CI saw it once).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject

from app.ui.workers import Job


class _MetaCalls(QObject):
    """Counts queued slot calls (QEvent.MetaCall) delivered anywhere in the application."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, _obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.MetaCall:
            self.count += 1
        return False


def test_all_slots_of_one_result_run_in_the_same_event(qtbot):
    counter = _MetaCalls()
    QCoreApplication.instance().installEventFilter(counter)
    try:
        seen: list[tuple[str, int]] = []
        job = Job(lambda _ctx: 42, name="answer")
        job.on_success(lambda r: seen.append(("first", counter.count)))
        job.on_success(lambda r: seen.append(("second", counter.count)))
        job.on_success(lambda r: seen.append(("third", counter.count)))
        with qtbot.waitSignal(job.finished, timeout=10_000):
            job.start()
    finally:
        QCoreApplication.instance().removeEventFilter(counter)
    assert [name for name, _ in seen] == ["first", "second", "third"]
    assert len({n for _, n in seen}) == 1, seen  # no event was delivered between them


def test_failure_and_partials_keep_their_order(qtbot):
    got: list[object] = []

    def work(ctx):
        for i in range(50):
            ctx.partial(i)
            ctx.progress(i, 50, "")
        raise ValueError("the end")

    job = Job(work, name="stream")
    job.on_partial(lambda i: got.append(("partial", i)))
    job.on_progress(lambda d, t, _n: got.append(("progress", d)))
    job.on_failure(lambda e: got.append(("failed", str(e))))
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start()
    expected = [x for i in range(50) for x in (("partial", i), ("progress", i))] + [("failed", "the end")]
    assert got == expected
