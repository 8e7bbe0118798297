"""A loopback TCP proxy between mailhook and Dovecot that can inject the two
network faults of bench/soak:

  reset       every forwarding connection is closed with a TCP RST at both ends
              (SO_LINGER 0), as a NAT box or firewall that forgot it does.
  black hole  from its start, every open connection stops forwarding in both
              directions while both TCP connections stay up (bytes are read and
              dropped), and every connection accepted while it lasts forwards
              nothing (and is never connected upstream). When the hole ends, new
              connections work again but the black-holed ones stay dead, as a
              NAT mapping that was dropped: only the client (mailhook) can end
              them, by noticing and closing. The time from "black" until the
              client closed is the detection time.

Runs an asyncio loop in a thread of its own; the methods are called from other
threads."""

import asyncio
import socket
import struct
import threading
import time


class _Conn:
    __slots__ = ("cw", "uw", "black", "t_open", "t_black", "killed", "closed")

    def __init__(self, cw):
        self.cw = cw
        self.uw = None
        self.black = False
        self.t_open = time.monotonic()
        self.t_black = None
        self.killed = False  # mailhook was killed while this one was black
        self.closed = False


def _rst(writer):
    """Closes with a RST rather than a FIN."""
    if writer is None:
        return
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Proxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.conns = set()
        self.hole = False
        self.accepted = 0
        self.upstream_failures = 0
        self.resets = 0  # connections reset
        self.detections = []  # seconds from black until mailhook closed it
        self.closed_by_kill = 0  # black connections that ended because mailhook was killed
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="soak-proxy")
        self.thread.start()
        self.server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def _sync(self, fn):
        async def run():
            return fn()
        return self._call(run())

    async def _handle(self, cr, cw):
        c = _Conn(cw)
        self.accepted += 1
        self.conns.add(c)
        if self.hole:
            c.black, c.t_black = True, time.monotonic()
            await self._pump(cr, None, c, from_client=True)
            return
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            # Dovecot is down (a restart): the client sees the connection reset.
            self.upstream_failures += 1
            self._close(c)
            _rst(cw)
            return
        c.uw = uw
        await asyncio.gather(self._pump(cr, uw, c, from_client=True), self._pump(ur, cw, c, from_client=False))

    async def _pump(self, src, dst, c, from_client):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if c.black or dst is None:
                    continue  # the hole: read and dropped
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        if c.closed:
            return
        if from_client:
            # mailhook closed (or died): the end of the connection, black or not.
            if c.black:
                if c.killed:
                    self.closed_by_kill += 1
                else:
                    self.detections.append(round(time.monotonic() - c.t_black, 1))
            self._close(c)
            for w in (c.cw, c.uw):
                if w is not None:
                    w.close()
        elif not c.black:
            # Dovecot closed: pass it on. A black-holed client never hears of it.
            self._close(c)
            for w in (c.cw, c.uw):
                w.close()

    def _close(self, c):
        c.closed = True
        self.conns.discard(c)

    # --- faults, called from the driver's thread ---
    def reset(self):
        """RSTs every forwarding connection (black-holed ones stay as they are)."""
        def run():
            n = 0
            for c in list(self.conns):
                if c.black:
                    continue
                self._close(c)
                _rst(c.cw)
                _rst(c.uw)
                n += 1
            self.resets += n
            return n
        return self._sync(run)

    def hole_start(self):
        def run():
            self.hole = True
            now = time.monotonic()
            n = 0
            for c in self.conns:
                if not c.black:
                    c.black, c.t_black = True, now
                    n += 1
            return n
        return self._sync(run)

    def hole_end(self):
        def run():
            self.hole = False
        self._sync(run)

    def mark_kill(self):
        """mailhook is about to be killed: its black connections end by that, not by detection."""
        def run():
            for c in self.conns:
                if c.black:
                    c.killed = True
        self._sync(run)

    def black_open(self):
        """[(seconds black)] of black connections mailhook still holds."""
        now = time.monotonic()
        return self._sync(lambda: [round(now - c.t_black, 1) for c in self.conns if c.black])

    def open_count(self):
        return self._sync(lambda: len(self.conns))

    def stop(self):
        def run():
            self.server.close()
            for c in list(self.conns):
                self._close(c)
                _rst(c.cw)
                _rst(c.uw)
        try:
            self._sync(run)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
