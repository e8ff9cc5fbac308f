"""The pieces of process supervision, in memory on a ``task.Clock``.

The duty lock (one holder, handed over when it lets go), the connection board
that spreads connections, draining connections on stop, and the restart
back-off of :class:`s4d.workers.WorkerPool`. The real processes are exercised
in ``tests/clients/test_supervisor.py``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from typing import Any

from twisted.application import service
from twisted.internet.error import ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from s4d.config import Config
from s4d.service import DUTY_RETRY, DutyHolder
from s4d.util.connboard import ConnectionBoard, board_path
from s4d.util.duties import DutyLock, duty_holder
from s4d.workers import MAX_RESTART_DELAY, WorkerPool, drain
from tests.s3.memory import MemoryS3


class _Duty(service.Service):
    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.starts += 1

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        self.stops += 1


class DutyHolderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp()
        self.clock = Clock()

    def holder(self, **kwargs: Any) -> tuple[DutyHolder, _Duty]:
        duty = _Duty()
        return DutyHolder(DutyLock(self.data_dir), [duty], self.clock, **kwargs), duty

    def test_one_holder_then_the_next(self) -> None:
        first, first_duty = self.holder()
        second, second_duty = self.holder()
        self.assertIsNone(duty_holder(self.data_dir))
        first.startService()  # type: ignore[no-untyped-call]
        second.startService()  # type: ignore[no-untyped-call]
        self.assertEqual((first_duty.starts, second_duty.starts), (1, 0))
        self.assertEqual(duty_holder(self.data_dir), os.getpid())
        self.clock.advance(DUTY_RETRY * 5)
        self.assertEqual(second_duty.starts, 0)
        self.successResultOf(first.stopService())
        self.assertEqual(first_duty.stops, 1)
        self.assertIsNone(duty_holder(self.data_dir))
        self.clock.advance(DUTY_RETRY)
        self.assertEqual(second_duty.starts, 1)
        self.assertTrue(second.lock.held)
        self.successResultOf(second.stopService())

    def test_not_eligible_never_holds(self) -> None:
        allowed = [False]
        holder, duty = self.holder(eligible=lambda: allowed[0], try_at_start=False)
        holder.startService()  # type: ignore[no-untyped-call]
        self.clock.advance(DUTY_RETRY * 3)
        self.assertEqual(duty.starts, 0)
        allowed[0] = True
        self.clock.advance(DUTY_RETRY)
        self.assertEqual(duty.starts, 1)
        self.successResultOf(holder.stopService())

    def test_stop_without_holding(self) -> None:
        first, _ = self.holder()
        second, duty = self.holder()
        first.startService()  # type: ignore[no-untyped-call]
        second.startService()  # type: ignore[no-untyped-call]
        self.successResultOf(second.stopService())
        self.assertEqual(duty.stops, 0)
        self.assertTrue(first.lock.held)
        self.successResultOf(first.stopService())


class ConnectionBoardTests(SynchronousTestCase):
    def test_the_busier_process_waits(self) -> None:
        path = board_path(tempfile.mkdtemp())
        ConnectionBoard.reset(path)
        main, worker = ConnectionBoard(path, 0, 2), ConnectionBoard(path, 1, 2)
        self.assertFalse(main.should_wait(5), "alone on the board: nobody to leave it to")
        worker.set(0)
        self.assertTrue(main.should_wait(2))
        self.assertFalse(main.should_wait(1))
        self.assertFalse(worker.should_wait(0))
        main.clear(1)  # the worker ended
        self.assertFalse(main.should_wait(9))
        worker.close()
        main.close()


class _Transport:
    def __init__(self) -> None:
        self.lost = self.aborted = False

    def loseConnection(self) -> None:  # noqa: N802 - Twisted's name
        self.lost = True

    def abortConnection(self) -> None:  # noqa: N802 - Twisted's name
        self.aborted = True


class _Channel:
    def __init__(self, busy: bool) -> None:
        self.requests = [object()] if busy else []
        self.transport: _Transport | None = _Transport()
        self.told = 0

    def close_after_response(self) -> None:
        self.told += 1


class _Site:
    def __init__(self, *channels: _Channel) -> None:
        self.channels = set(channels)


class DrainTests(SynchronousTestCase):
    def test_idle_close_at_once_busy_when_answered(self) -> None:
        clock = Clock()
        idle, busy = _Channel(False), _Channel(True)
        site = _Site(idle, busy)
        done = drain(site, clock, 30)
        assert idle.transport is not None and busy.transport is not None
        self.assertTrue(idle.transport.lost)
        self.assertFalse(busy.transport.lost)
        site.channels.discard(idle)
        clock.advance(1)
        self.assertNoResult(done)
        busy.requests.clear()  # answered
        clock.advance(0.1)
        self.assertTrue(busy.transport.lost)
        site.channels.discard(busy)
        clock.advance(0.1)
        self.successResultOf(done)
        # each channel was told once to close after its answer
        self.assertEqual((idle.told, busy.told), (1, 1))

    def test_cut_off_after_the_timeout(self) -> None:
        clock = Clock()
        busy = _Channel(True)
        done = drain(_Site(busy), clock, 5)
        clock.advance(4.9)
        self.assertNoResult(done)
        clock.advance(0.2)
        assert busy.transport is not None
        self.assertTrue(busy.transport.aborted)
        self.successResultOf(done)


class DrainOverHttpTests(SynchronousTestCase):
    """Draining the real S3 site in memory: what the clients see on the wire."""

    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        self.assertEqual(self.s3.request("PUT", "/bkt", close=True).status, 200)

    def put_head(self, key: str, length: int) -> bytes:
        return self.s3.head_block(
            "PUT", f"/bkt/{key}", {"content-length": str(length)}, "UNSIGNED-PAYLOAD"
        )

    def test_answers_in_flight_say_connection_close(self) -> None:
        site, clock = self.s3.site, self.s3.clock
        uploading = self.s3.connect()
        uploading.send(self.put_head("in-flight", 10) + b"12345")
        idle = self.s3.connect()
        idle.send(self.s3.head_block("GET", "/bkt/in-flight", sign=True))  # answered: 404
        answered = idle.response()
        assert answered is not None
        self.assertEqual(answered.status, 404)
        self.assertIsNone(answered.header("connection"))  # kept alive before the drain
        done = drain(site, clock, 30)
        self.assertTrue(idle.transport.disconnecting)  # between requests: closed at once
        self.assertFalse(uploading.transport.disconnecting)
        uploading.send(b"67890")
        response = uploading.response()
        assert response is not None
        self.assertEqual((response.status, response.header("connection")), (200, "close"))
        self.assertTrue(uploading.transport.disconnecting)  # closed once answered
        for conn in (uploading, idle):
            conn.close()
        clock.advance(1)
        self.successResultOf(done)

    def test_a_request_arriving_during_the_drain_is_the_last(self) -> None:
        """Its head comes in after the drain began (pipelined, or just sent): the answer
        closes the connection too."""
        site, clock = self.s3.site, self.s3.clock
        conn = self.s3.connect()
        conn.send(b"PUT /bkt/late HTTP/1.1\r\n")  # the request line only: in flight
        done = drain(site, clock, 30)
        head = self.put_head("late", 3)
        conn.send(head[head.index(b"\r\n") + 2 :] + b"abc")
        response = conn.response()
        assert response is not None
        self.assertEqual((response.status, response.header("connection")), (200, "close"))
        self.assertTrue(conn.transport.disconnecting)
        conn.close()
        clock.advance(1)
        self.successResultOf(done)


class _Process:
    pid = 4242

    def writeToChild(self, fd: int, data: bytes) -> None:  # noqa: N802 - Twisted's name
        pass

    def closeChildFD(self, fd: int) -> None:  # noqa: N802 - Twisted's name
        pass

    def signalProcess(self, name: str) -> None:  # noqa: N802 - Twisted's name
        pass


class _Reactor(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[list[str]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], **kw: Any) -> Any:  # noqa: N802
        self.spawned.append(args)
        return _Process()


class RestartTests(SynchronousTestCase):
    def test_back_off_when_a_worker_keeps_dying_young(self) -> None:
        reactor = _Reactor()
        pool = WorkerPool(Config(workers=2, data_dir=tempfile.mkdtemp()), object(), reactor)
        pool.socket = socket.socket()
        self.addCleanup(pool.socket.close)
        pool.running = True
        pool._spawn(1)

        def die(after: float) -> None:
            reactor.advance(after)
            pool.workers[1].processEnded(Failure(ProcessTerminated(signal=9)))

        die(1)
        reactor.advance(0)  # the first death: started again at once
        self.assertEqual(len(reactor.spawned), 2)
        delays = []
        for _ in range(8):
            die(1)
            before = len(reactor.spawned)
            waited = 0.0
            while len(reactor.spawned) == before:
                reactor.advance(0.25)
                waited += 0.25
            delays.append(waited)
        self.assertEqual(delays[:4], [0.5, 1.0, 2.0, 4.0])
        self.assertEqual(max(delays), MAX_RESTART_DELAY)
        die(60)  # lived long: a fresh start, no pause
        reactor.advance(0)
        self.assertEqual(reactor.spawned[-1][-2], "--index=1")
        self.assertEqual(len(pool.workers), 1)
        # stopping: no restart
        pool._stopping = True
        before = len(reactor.spawned)
        die(1)
        reactor.advance(MAX_RESTART_DELAY * 2)
        self.assertEqual(len(reactor.spawned), before)
