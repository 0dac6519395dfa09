"""Independent permessage-deflate peer for crates/net/tests/deflate.rs.

Python's `websockets` (Debian python3-websockets) connects to the Rust
server, sends messages and checks the echoes; prints one JSON line.

usage: deflate_client.py URL MODE
  MODE = deflate | deflate-nct (client_no_context_takeover) | plain | bomb
"""

import asyncio
import json
import random
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


def property_update(i, rnd):
    # Shaped like an AlwaysOn property write: names repeat, values change.
    names = ["Temperature", "Pressure", "Humidity", "FanSpeed", "InletValve"]
    parts = [f"{n}={rnd.randint(0, 100000) / 100};q=GOOD;t=1700000{i:06d}" for n in names]
    return ("Things/SteamSensor%03d/Properties:" % (i % 7) + "|".join(parts)).encode()


async def echo(url, mode):
    if mode == "plain":
        kwargs = {"compression": None}
    elif mode == "deflate-nct":
        kwargs = {
            "compression": None,
            "extensions": [
                ClientPerMessageDeflateFactory(
                    client_no_context_takeover=True, client_max_window_bits=True
                )
            ],
        }
    else:
        kwargs = {}
    rnd = random.Random(7)
    sent = 0
    async with websockets.connect(url, max_size=None, **kwargs) as ws:
        exts = [
            {
                "name": e.name,
                "remote_no_context_takeover": e.remote_no_context_takeover,
                "local_no_context_takeover": e.local_no_context_takeover,
            }
            for e in ws.extensions
        ]
        messages = []
        # Large text and binary messages (> 64 KiB).
        messages.append(("Lorem ipsum dolor sit amet, ünïcödé " * 4000))
        messages.append(bytes(range(256)) * 1024)
        messages.append(b"".join(property_update(i, rnd) for i in range(800)))
        # Incompressible binary.
        messages.append(rnd.randbytes(70000))
        # Many small property updates: context takeover matters here.
        for i in range(300):
            messages.append(property_update(i, rnd))
        messages.append("")
        messages.append(b"x")
        for m in messages:
            await ws.send(m)
            back = await ws.recv()
            if back != m:
                raise SystemExit(f"echo mismatch: sent {len(m)} got {len(back)}")
            sent += len(m.encode() if isinstance(m, str) else m)
        # A fragmented compressed message (RSV1 on the first frame only),
        # with a ping in flight.
        frags = [b"fragment-%d;" % i * 50 for i in range(5)]
        pong = await ws.ping(b"in-between")
        await ws.send(frags)
        back = await ws.recv()
        await pong
        if back != b"".join(frags):
            raise SystemExit("fragmented echo mismatch")
        sent += sum(len(f) for f in frags)
        print(json.dumps({"extensions": exts, "payload": sent, "messages": len(messages) + 1}))


async def bomb(url):
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(b"\0" * (4 << 20))
        try:
            await asyncio.wait_for(ws.recv(), 10)
            print(json.dumps({"closed": False}))
        except websockets.ConnectionClosed as e:
            print(json.dumps({"closed": True, "code": e.rcvd.code if e.rcvd else None,
                              "reason": e.rcvd.reason if e.rcvd else None}))


def main():
    url, mode = sys.argv[1], sys.argv[2]
    if mode == "bomb":
        asyncio.run(bomb(url))
    else:
        asyncio.run(echo(url, mode))


if __name__ == "__main__":
    main()
