#!/usr/bin/env python3
"""One loopback HTTP/1.1 server for every environment of the scale benchmark.

GET /healthz/<service>/<colour>  -> 200, and counts one check for
                       `<service>/<colour>` (environment <colour>["<service>"])
GET /counts         -> JSON {env: checks} since the last reset
GET /connections    -> JSON {"connections": n}: TCP connections accepted since
                       the last reset (the checks share a few kept-alive ones)
GET /reset          -> clears the counts
Keep-alive, so cutover's shared client reuses its connections. asyncio keeps
it to one thread: it must not compete with cutover for the 2 cores more than
the requests themselves cost.

Usage: health_server.py PORT
"""
import asyncio
import collections
import json
import sys

COUNTS = collections.Counter()
CONNECTIONS = [0]


def answer(status, body, ctype="text/plain"):
    body = body.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def serve(reader, writer):
    CONNECTIONS[0] += 1
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/healthz/"):
                COUNTS[path[len("/healthz/"):]] += 1
                out = answer("200 OK", "ok\n")
            elif path == "/counts":
                out = answer("200 OK", json.dumps(COUNTS), "application/json")
            elif path == "/connections":
                # This request's own connection is not cutover's.
                body = json.dumps({"connections": CONNECTIONS[0] - 1})
                out = answer("200 OK", body, "application/json")
            elif path == "/reset":
                COUNTS.clear()
                CONNECTIONS[0] = 0
                out = answer("200 OK", "reset\n")
            else:
                out = answer("404 Not Found", "no such path\n")
            writer.write(out)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
