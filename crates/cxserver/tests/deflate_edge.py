"""A compressing AlwaysOn edge for crates/cxserver/tests/deflate.rs.

Python's `websockets` (python3-websockets) connects over TLS (certificate not
checked: the test server's is self-signed), offering permessage-deflate the
way the ThingWorx C SDK does (bare `permessage-deflate`). Commands on stdin,
one per line:  send <hex> | recv | stats | close.  Answers on stdout:
  ext <name> <server_no_context_takeover> <client_no_context_takeover>
  got <hex>
  stats <rsv1 frames in> <wire bytes in> <rsv1 frames out> <wire bytes out>
"""

import asyncio
import ssl
import sys

import websockets
from websockets.extensions import permessage_deflate as pmd

STATS = {"in_frames": 0, "in_bytes": 0, "out_frames": 0, "out_bytes": 0}

_decode = pmd.PerMessageDeflate.decode
_encode = pmd.PerMessageDeflate.encode


def decode(self, frame, *, max_size=None):
    if frame.rsv1:
        STATS["in_frames"] += 1
    STATS["in_bytes"] += len(frame.data)
    return _decode(self, frame, max_size=max_size)


def encode(self, frame):
    out = _encode(self, frame)
    if out.rsv1:
        STATS["out_frames"] += 1
    STATS["out_bytes"] += len(out.data)
    return out


pmd.PerMessageDeflate.decode = decode
pmd.PerMessageDeflate.encode = encode


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(url, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with websockets.connect(
        url,
        ssl=ctx,
        compression=None,
        extensions=[pmd.ClientPerMessageDeflateFactory()],
        extra_headers={"appKey": key},
        max_size=None,
    ) as ws:
        for e in ws.extensions:
            say(f"ext {e.name} {int(e.remote_no_context_takeover)} {int(e.local_no_context_takeover)}")
        if not ws.extensions:
            say("ext none 0 0")
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "close":
                break
            cmd, _, arg = line.partition(" ")
            if cmd == "send":
                await ws.send(bytes.fromhex(arg))
            elif cmd == "recv":
                m = await asyncio.wait_for(ws.recv(), 10)
                say("got " + (m.hex() if isinstance(m, bytes) else m.encode().hex()))
            elif cmd == "stats":
                s = STATS
                say(f"stats {s['in_frames']} {s['in_bytes']} {s['out_frames']} {s['out_bytes']}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
