"""Draw the fastkernel logos (a lightning bolt on a Python-blue disc) as PNG, stdlib only."""

import struct
import sys
import zlib
from pathlib import Path

BLUE = (48, 105, 152, 255)
YELLOW = (255, 212, 59, 255)
CLEAR = (0, 0, 0, 0)
# A bolt as a polygon in unit coordinates.
BOLT = [(0.58, 0.12), (0.28, 0.56), (0.48, 0.56), (0.40, 0.88), (0.72, 0.42), (0.52, 0.42), (0.62, 0.12)]


def inside(poly, x, y):
    hit = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def pixel(size, px, py):
    x, y = (px + 0.5) / size, (py + 0.5) / size
    if (x - 0.5) ** 2 + (y - 0.5) ** 2 > 0.48**2:
        return CLEAR
    return YELLOW if inside(BOLT, x, y) else BLUE


def png(size):
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(size, x, y)) for x in range(size)) for y in range(size))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for size in (32, 64):
        (out / f"logo-{size}x{size}.png").write_bytes(png(size))
