"""The hub's websockets connection and its writer thread: the I/O under :mod:`hubserver.server`.

:class:`HubConnection` is websockets' asyncio ``ServerConnection`` that hands each complete
message to the hub as soon as it is parsed (and parses plain text frames itself);
:class:`WriterThread` runs the ledger's writes off the event loop, one queue item in and one
loop callback out per commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event as WsEvent
from websockets.protocol import Protocol, State
from websockets.typing import BytesLike

from core.satellite.client import LiveKeepalive

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["HubConnection", "WriterThread", "at_frame_start"]

_MAX_FRAGMENTS = 4096
"""Most frames one fragmented message may have (as websockets' own receive queue)."""


class HubConnection(LiveKeepalive, ServerConnection):
    """A websockets server connection that hands each complete message to the hub at once.

    websockets' asyncio API queues every data frame for a ``recv()`` call in the handler's
    task: per message a queue hop, a future and a task switch, which cost the hub more CPU
    than the frame itself. This subclass (given to ``serve(create_connection=...)``, the
    documented way to customize connections) overrides ``process_event``, which websockets'
    ``data_received`` calls for every parsed event, and keeps complete messages in
    :attr:`inbox`; :attr:`sink` (the hub's pump for this connection) is called after each.
    Everything else stays websockets': the handshake, pings and pongs, close codes,
    ``max_size``, TLS, the write buffer's flow control. Fragmented messages are joined here
    (at most :data:`_MAX_FRAGMENTS` frames, ``max_size`` bytes in total as websockets checks),
    text is decoded as UTF-8 (invalid: close 1007, as ``recv()`` does). Reading is paused
    while the inbox holds ``max_queue`` messages, as websockets' queue does.
    ``tests/hub/test_frames.py::test_websockets_hooks_the_hub_relies_on`` pins the hooks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox: deque[str | bytes] = deque()
        self.sink: Callable[[], None] | None = None
        self.reading_paused = False
        self.discard = False
        """The hub is closing this connection: messages are dropped, reading goes on."""
        self._frags: list[BytesLike] | None = None
        self._frag_text = False
        self._fast: bool | None = None  # None: not decided yet (handshake)
        self._buf = bytearray()  # a frame's start not complete yet (fast path)
        self.heard = 0.0
        """Loop time of the last ping or pong from the client: a sign of life that is no
        message (the hub's idle timeout counts it: a quiet satellite answers the hub's
        pings)."""

    def data_received(self, data: bytes) -> None:
        """Parse plain text frames here; give websockets everything else.

        websockets' generator-based parser costs about a third of a small message's CPU.
        Once the handshake is done, with no extension negotiated and the parser at a frame
        boundary, complete unfragmented masked text frames are parsed here; each control
        frame (ping, pong, close) is fed whole to websockets' parser, so it stays at a frame
        boundary and answers pings, checks close codes and closes as always. Anything else
        (binary, fragmented, over ``max_size``, reserved bits, unmasked, a closing connection)
        hands the rest of the stream to websockets for good.
        """
        self.note_rx()  # any byte is a sign of life (LiveKeepalive: slow links)
        if not self._fast:
            super().data_received(data)
            if self._fast is None and self.request is not None:
                self._fast = at_frame_start(self.protocol)
            return
        buf: bytes | bytearray = data
        if self._buf:  # grows in place: a big frame in small reads is not copied each time
            self._buf += data
            buf = self._buf
        if self.protocol.extensions:  # negotiated after the request: compression
            self._slow(buf, 0)
            return
        n = len(buf)
        i = 0
        protocol = self.protocol
        limit = protocol.max_message_size
        while n - i >= 6:
            b0 = buf[i]
            b1 = buf[i + 1]
            ln = b1 & 0x7F
            j = i + 2
            if ln == 126:
                if n - i < 8:
                    break
                ln = int.from_bytes(buf[j:j + 2], "big")
                j += 2
            elif ln == 127:
                if n - i < 14:
                    break
                ln = int.from_bytes(buf[j:j + 8], "big")
                j += 8
            op = b0 & 0x0F
            if b0 & 0x70 or not b1 & 0x80 or protocol.state is not State.OPEN \
                    or (limit is not None and ln > limit) or (op >= 8 and ln > 125) \
                    or (op < 8 and b0 != 0x81):
                self._slow(buf, i)
                return
            end = j + 4 + ln
            if end > n:
                break
            if op >= 8:  # a control frame: websockets answers it
                super().data_received(bytes(buf[i:end]))
            else:  # the connection is open (checked above): _message's check is done
                self._take(apply_mask(buf[j + 4:end], buf[j:j + 4]), True)
            i = end
        if buf is self._buf:
            del self._buf[:i]
        elif i < n:
            self._buf = bytearray(buf[i:])

    def _slow(self, buf: bytes | bytearray, i: int) -> None:
        self._fast = False
        rest = bytes(buf[i:])
        self._buf = bytearray()
        super().data_received(rest)

    def process_event(self, event: WsEvent) -> None:
        if self.request is None or not isinstance(event, Frame):
            super().process_event(event)  # the opening handshake
            return
        op = event.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if self._frags is not None:  # websockets' parser refuses this first
                return
            if not event.fin:
                self._frags = [event.data]
                self._frag_text = op is Opcode.TEXT
                return
            self._message(event.data, op is Opcode.TEXT)
        elif op is Opcode.CONT:
            frags = self._frags
            if frags is None:
                return
            frags.append(event.data)
            if event.fin:
                self._frags = None
                self._message(b"".join(frags), self._frag_text)
            elif len(frags) > _MAX_FRAGMENTS:
                self._frags = None
                self._fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
        else:
            if op is Opcode.PONG or op is Opcode.PING:
                self.heard = self.loop.time()
            super().process_event(event)  # pongs acknowledge pings

    def _message(self, raw: BytesLike, text: bool) -> None:
        if self.protocol.state in (State.CLOSING, State.CLOSED):
            # closing (a 1007 of an earlier frame of this read, or the hub closes it): what
            # follows is not served, and reading goes on so the client's close is read.
            # (Frames sent with the HTTP request arrive while it is CONNECTING: served.)
            self.drop_inbox()
            return
        self._take(raw if isinstance(raw, bytes) else bytes(raw), text)

    def _take(self, data: bytes, text: bool) -> None:
        """A complete message of a connection that is not closing (:meth:`_message`)."""
        if self.discard:  # the hub closes it: not served, as in _message
            self.drop_inbox()
            return
        msg: str | bytes = data
        if text:
            try:
                msg = data.decode()
            except UnicodeDecodeError as exc:
                self._fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                return
        self.inbox.append(msg)
        if len(self.inbox) >= (self.max_queue_high or 16) and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        if self.sink is not None:
            self.sink()

    def taken(self) -> None:
        """The hub took messages from the inbox: read again once it has room."""
        if self.reading_paused and len(self.inbox) <= (self.max_queue_low or 4):
            self.reading_paused = False
            with contextlib.suppress(Exception):  # the transport may be closing
                self.transport.resume_reading()

    def drop_inbox(self) -> None:
        """Forget the messages not served yet (the connection is closing) and read again."""
        self.discard = True
        self.inbox.clear()
        self.taken()

    def _fail(self, code: int, reason: str) -> None:
        self.inbox.clear()
        if self.protocol.state is State.OPEN:
            self.protocol.fail(code, reason)
            self.send_data()
            # the server half-closed: a client that never closes its side is cut off
            self.loop.call_later(self.close_timeout or 10.0, self._abort)

    def _abort(self) -> None:
        if self.state is not State.CLOSED:
            self.transport.abort()


def at_frame_start(protocol: Protocol) -> bool:
    """True when websockets' parser has consumed nothing of the next frame.

    Its parser is a generator that waits in ``StreamReader.at_eof`` between frames (and in
    ``read_exact`` inside one): the innermost generator tells which.
    """
    if protocol.reader.buffer:
        return False
    gen: Any = protocol.parser
    while gen.gi_yieldfrom is not None:
        gen = gen.gi_yieldfrom
    return bool(gen.gi_code.co_name == "at_eof")


_Done = Callable[[Any], None]


class WriterThread:
    """The one thread that runs the ledger's writes (and catch-up reads, unless the ledger
    reads beside its commits: then a second one, the reader, runs those) for the hub.

    One queue item per commit in, one ``call_soon_threadsafe`` per commit out: what a
    ``run_in_executor`` call does, without its two futures and their chained callbacks.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str = "outpost-hub-writer"):
        self._loop = loop
        self._q: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], _Done] | None]
        self._q = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], done: _Done) -> None:
        """Run ``fn(*args)`` on the thread, then ``done(result or exception)`` on the loop."""
        self._q.put((fn, args, done))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, args, done = item
            try:
                res = fn(*args)
            except BaseException as exc:  # handed to the loop, which logs it
                res = exc
            try:
                self._loop.call_soon_threadsafe(done, res)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    async def stop(self) -> None:
        """Finish the running item and end the thread."""
        self._q.put(None)
        while self._thread.is_alive():
            await asyncio.sleep(0.005)
