"""A TCP proxy that makes loopback look like the internet: latency and a bandwidth cap.

    python bench/latency_proxy.py TARGET_PORT [--rtt-ms 50] [--mbps 20] [--port 0]

Every byte is held for half the round trip in each direction (so a request and its answer
take `--rtt-ms` more than on loopback), and each connection's each direction is capped at
`--mbps` megabytes per second. Chunks stay in order; a bounded queue per direction keeps
TCP's back pressure, so a fast sender waits as it would on a slow link. Prints
`listening PORT` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

CHUNK = 64 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
               rate: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)

    async def receive() -> None:
        while data := await reader.read(CHUNK):
            await queue.put((loop.time() + delay, data))
        await queue.put((loop.time() + delay, b""))

    async def send() -> None:
        free = loop.time()  # when the link has sent what it was given
        while True:
            due, data = await queue.get()
            if not data:
                break
            free = max(free, due) + len(data) / rate
            wait = free - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(receive(), send())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(target_port: int, port: int, rtt: float, rate: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer, rtt / 2, rate),
                             pipe(up_reader, writer, rtt / 2, rate))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target_port", type=int)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--mbps", type=float, default=20.0, help="MB/s per connection")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.target_port, args.port, args.rtt_ms / 1000, args.mbps * 1e6))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
