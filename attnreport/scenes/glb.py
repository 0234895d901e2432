"""Pack the JSON glTF that VTK writes (buffers inlined as data URIs) into one binary ``.glb``.

VTK's exporter writes only the JSON form; the binary container is a 12-byte header, the JSON
chunk and one BIN chunk, each 4-byte aligned (glTF 2.0 specification, section 4.4).
"""

from __future__ import annotations

import base64
import json
import struct

_MAGIC = b"glTF"
_JSON = b"JSON"
_BIN = b"BIN\x00"


def _pad(data: bytes, filler: bytes) -> bytes:
    return data + filler * (-len(data) % 4)


def pack_glb(gltf: dict) -> bytes:
    """A glTF dict whose buffers are ``data:`` URIs -> the bytes of a binary glTF (version 2)."""
    gltf = json.loads(json.dumps(gltf))  # a deep copy we may edit
    blob = bytearray()
    offsets = []
    for index, buffer in enumerate(gltf.get("buffers", [])):
        uri = buffer.get("uri", "")
        if not uri.startswith("data:") or ";base64," not in uri:
            raise ValueError(f"glTF buffer {index} is not an inline base64 data URI")
        data = base64.b64decode(uri.split(",", 1)[1])
        offsets.append(len(blob))
        blob += _pad(data, b"\x00")
    for view in gltf.get("bufferViews", []):
        view["byteOffset"] = view.get("byteOffset", 0) + offsets[view["buffer"]]
        view["buffer"] = 0
    if offsets:
        gltf["buffers"] = [{"byteLength": len(blob)}]
    text = _pad(json.dumps(gltf, separators=(",", ":"), sort_keys=True).encode("utf-8"), b" ")
    chunks = struct.pack("<I4s", len(text), _JSON) + text
    if offsets:
        chunks += struct.pack("<I4s", len(blob), _BIN) + bytes(blob)
    return struct.pack("<4sII", _MAGIC, 2, 12 + len(chunks)) + chunks


def unpack_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON and the BIN chunk of a binary glTF (for tests and checks)."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != _MAGIC or version != 2 or length != len(data):
        raise ValueError(f"not a binary glTF 2 file (magic {magic!r}, version {version}, length {length})")
    size, kind = struct.unpack_from("<I4s", data, 12)
    if kind != _JSON:
        raise ValueError(f"first glTF chunk is {kind!r}, not JSON")
    gltf = json.loads(data[20 : 20 + size])
    rest = 20 + size
    blob = b""
    if rest < len(data):
        size, kind = struct.unpack_from("<I4s", data, rest)
        if kind != _BIN:
            raise ValueError(f"second glTF chunk is {kind!r}, not BIN")
        blob = data[rest + 8 : rest + 8 + size]
    return gltf, blob
