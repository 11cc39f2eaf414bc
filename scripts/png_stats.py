#!/usr/bin/env python3
"""Prints what a PNG image holds as one JSON object: width, height, the number of distinct colours
and the fraction of pixels that are not white. Python's standard library only (zlib); reads 8-bit
grey, RGB and RGBA images without interlacing, as Chromium's screenshots are.
Used by the dashboard tests to tell a rendered page from a blank one: scripts/png_stats.py FILE."""
import json
import struct
import sys
import zlib


def chunks(data):
    """The (type, payload) of each chunk after the signature."""
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        yield data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length


def unfilter(raw, width, height, bpp):
    """The pixel rows of the inflated image data, each row's filter undone."""
    stride = width * bpp
    rows, prev, pos = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return rows


def main(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG file")
    header, idat = None, b""
    for kind, payload in chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat += payload
    width, height, depth, colour, _, _, interlace = header
    bpp = {0: 1, 2: 3, 6: 4}.get(colour)
    if depth != 8 or bpp is None or interlace:
        sys.exit(f"{path}: only 8-bit grey, RGB or RGBA PNGs without interlacing are read")
    colours, non_white = set(), 0
    for row in unfilter(zlib.decompress(idat), width, height, bpp):
        for i in range(0, len(row), bpp):
            pixel = bytes(row[i:i + min(bpp, 3)])
            colours.add(pixel)
            non_white += pixel != b"\xff" * len(pixel)
    print(json.dumps({"width": width, "height": height, "colours": len(colours),
                      "non_white": non_white / (width * height)}))


if __name__ == "__main__":
    main(sys.argv[1])
