"""Wake-ups between the server processes of one ``tasksd serve --processes N``.

Each push queue is dispatched by one process at a time (the one that owns it in the store),
but a CreateTask or a ResumeQueue reaches whichever process the kernel gave the client's
connection. Without a word from that process, the owner would find the new task only at its
next poll, up to a second later. So before the parent forks, it makes one datagram socket
pair per process (``Siblings``); every process inherits them all, reads its own and writes
to the others'. When a process's dispatcher is told of a queue it does not dispatch, it tells
its siblings (the queue's name and the new task's due time), and the one that dispatches the
queue wakes its worker as it would for a task created there. The messages of one turn of the
event loop go together, one per queue, and a message that does not fit in a sibling's buffer
is dropped: the poll is still there behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from tasksd.clock import EPOCH, to_us
from tasksd.model.errors import TasksError
from tasksd.model.names import QueueName

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
"""Bytes read per datagram: a queue name and a time are far shorter."""

Wake = Callable[[QueueName, "datetime | None"], object]


class Siblings:
    """One connected datagram socket pair per process: process ``i`` reads the first socket of
    pair ``i``; the others write to its second socket. Made in the parent, before it forks."""

    def __init__(self, processes: int) -> None:
        self._pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(processes)]
        for pair in self._pairs:
            for sock in pair:
                sock.setblocking(False)

    def link(self, index: int) -> SiblingLink:
        """What process ``index`` reads and writes."""
        others = [pair[1] for number, pair in enumerate(self._pairs) if number != index]
        return SiblingLink(self._pairs[index][0], others)


class SiblingLink:
    """One process's end of ``Siblings``: ``tell`` the others of a queue, ``listen`` for them."""

    def __init__(self, inbox: socket.socket, others: list[socket.socket]) -> None:
        self._inbox = inbox
        self._others = others
        self._pending: dict[str, int | None] = {}
        """Queue path → the earliest due time (µs) told this turn of the loop (None: now)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop it listens on."""
        self._closed = False

    def listen(self, loop: asyncio.AbstractEventLoop, wake: Wake) -> None:
        """Call ``wake`` for each queue a sibling tells of, on ``loop``."""
        self._loop = loop
        while True:  # what earlier processes of this index left unread is of no use now
            try:
                self._inbox.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                break
        loop.add_reader(self._inbox.fileno(), self._read, wake)

    def tell(self, queue: QueueName, due: datetime | None) -> None:
        """Tell the other processes that ``queue`` may have a task due (at ``due``, or now),
        at the end of this turn of the event loop."""
        if not self._others or self._closed:
            return
        due_us = None if due is None else to_us(due)
        path = queue.path
        if path in self._pending:
            told = self._pending[path]
            self._pending[path] = None if told is None or due_us is None else min(told, due_us)
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._send)
        self._pending[path] = due_us

    def _send(self) -> None:
        pending, self._pending = self._pending, {}
        for path, due_us in pending.items():
            message = f"{path} {'' if due_us is None else due_us}".encode()
            for other in self._others:
                # A full buffer (a sibling busy or stopped) drops it: its poll finds the task.
                with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionRefusedError):
                    other.send(message)

    def _read(self, wake: Wake) -> None:
        for _ in range(256):  # then let the loop run other work; the rest waits for the next turn
            try:
                message = self._inbox.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            try:
                path, _, due = message.decode().partition(" ")
                queue = QueueName.parse(path, "queue")
                due_at = EPOCH + timedelta(microseconds=int(due)) if due else None
            except (UnicodeDecodeError, ValueError, OverflowError, TasksError):
                log.warning("ignored a message from a sibling process: %r", message[:200])
                continue
            wake(queue, due_at)

    def close(self) -> None:
        self._closed = True
        if self._loop is not None:
            self._loop.remove_reader(self._inbox.fileno())
            self._loop = None
        self._pending.clear()
