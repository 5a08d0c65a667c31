"""The bytes the event log stores for a resource: its JSON compressed with zstd and a preset
dictionary (a resource is ~1.4 KB of JSON, far below the ~2 KB at which PostgreSQL's own TOAST
compression starts, and compresses about 8x with a dictionary trained on FHIR resources).

Stored bytes are either the JSON itself (it starts with ``{``: rows written before compression or
with ``FHIRLEDGER_LOG_COMPRESSION=none``) or one zstd frame that names its dictionary by id; the
decompressed bytes are the resource exactly as served (invariant 1). The dictionaries are part of
the history: the table ``event_log_dictionary`` holds every one (append-only), the package ships
the initial one (``dictionaries/<id>.zdict``, made by ``bench/log_dictionary.py``).

Compressors are not thread-safe and bodies are prepared in worker threads too: each thread has its own.
"""

from __future__ import annotations

import threading
from pathlib import Path

import zstandard

MAGIC = b"\x28\xb5\x2f\xfd"  # a zstd frame; JSON starts with '{'
DICTIONARY_ID = 1
"""The dictionary new frames use (the shipped one)."""
LEVEL = 3
SHIPPED = Path(__file__).resolve().parent / "dictionaries"

_dictionaries: dict[int, zstandard.ZstdCompressionDict] = {}
_local = threading.local()
_enabled: list[bool] = []


class UnknownDictionary(LookupError):
    """A frame names a dictionary this process does not hold."""


def add_dictionary(dict_id: int, data: bytes) -> None:
    """Make a dictionary known to the decoders (from ``event_log_dictionary`` or the package); two
    different dictionaries under one id would misread the history, so that is refused."""
    known = _dictionaries.get(dict_id)
    if known is None:
        _dictionaries[dict_id] = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)
    elif known.as_bytes() != data:
        raise ValueError(f"two different zstd dictionaries have id {dict_id} (event_log_dictionary and the package?)")


def shipped(dict_id: int = DICTIONARY_ID) -> bytes:
    """A dictionary the package carries (stored at start by :func:`app.events.dictionaries.load_dictionaries`)."""
    return (SHIPPED / f"{dict_id}.zdict").read_bytes()


def _dictionary(dict_id: int) -> zstandard.ZstdCompressionDict:
    if dict_id not in _dictionaries:
        path = SHIPPED / f"{dict_id}.zdict"
        if not path.is_file():
            raise UnknownDictionary(
                f"an event's resource is a zstd frame of dictionary {dict_id}, which this process does not hold:"
                " it is neither shipped with this package nor was it in event_log_dictionary when the process started"
            )
        add_dictionary(dict_id, path.read_bytes())
    return _dictionaries[dict_id]


def compression_enabled() -> bool:
    """``FHIRLEDGER_LOG_COMPRESSION`` (``zstd``, the default, or ``none``), read once per process."""
    if not _enabled:
        from app.settings import get_settings

        _enabled.append(get_settings().log_compression == "zstd")
    return _enabled[-1]


def set_compression(enabled: bool | None) -> None:
    """Override the setting in this process (``None``: read it again); for tests and tools."""
    _enabled.clear()
    if enabled is not None:
        _enabled.append(enabled)


def encode(json_bytes: bytes) -> bytes:
    """The bytes to store for a resource's JSON (a frame of the current dictionary, or the JSON)."""
    if not compression_enabled():
        return json_bytes
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=_dictionary(DICTIONARY_ID), write_dict_id=True, write_checksum=False
        )
        _local.compressor = compressor
    return compressor.compress(json_bytes)


def decode(stored: bytes) -> bytes:
    """The resource's JSON from stored bytes (either form); raises :class:`UnknownDictionary`."""
    if stored[:4] != MAGIC:
        return stored
    dict_id = zstandard.get_frame_parameters(stored).dict_id
    decompressors = getattr(_local, "decompressors", None)
    if decompressors is None:
        decompressors = _local.decompressors = {}
    decompressor = decompressors.get(dict_id)
    if decompressor is None:
        decompressor = decompressors[dict_id] = zstandard.ZstdDecompressor(
            dict_data=_dictionary(dict_id) if dict_id else None
        )
    return decompressor.decompress(stored)


def decoded(stored: bytes | None) -> bytes | None:
    """:func:`decode`, passing a deletion's ``None`` through."""
    return None if stored is None else decode(stored)
