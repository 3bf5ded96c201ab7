"""A broadcast server in Python with websockets (Debian python3-websockets),
written the usual way: every text message goes to every client with
websockets.broadcast(). Usage: python3 py_websockets.py PORT (0: free)."""

import asyncio
import sys

import websockets

clients = set()


async def handler(ws, path=None):
    clients.add(ws)
    try:
        async for message in ws:
            websockets.broadcast(clients, message)
    finally:
        clients.discard(ws)


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, compression=None,
                                max_queue=None) as server:
        sock = next(iter(server.sockets))
        print("listening on 127.0.0.1:%d" % sock.getsockname()[1], file=sys.stderr, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
