"""A long layer list in a bookmark: packed into one compact URL value, or, when even that is
too long for a URL, offered as a file.

A URL's query string reaches the server in one HTTP request line: Tornado (under Streamlit)
answered a 190,089-character one from 10,000 layers with "HTTP 400" (issue 15), and browsers,
proxies and chat apps cut far shorter ones. So `presets.to_query` writes

* up to `PACK_ABOVE` characters of query string, the layers as repeated `layer=` values
  (readable and editable by hand);
* above it, one `packed=` value: the layer text (one layer per line, the grammar's text form)
  zlib-compressed and base64url-encoded without padding (`pack`);
* and the page writes no query string longer than `MAX_QUERY_CHARS`: it says "too large to
  bookmark" and offers the layer text as a download instead.

Opening a `packed=` value (`unpack`) is bounded: at most `MAX_QUERY_CHARS` characters are
decoded and at most `MAX_TEXT_BYTES` bytes decompressed, so a decompression bomb in a link
stops there; every refusal is one line.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
import zlib
from collections.abc import Mapping, Sequence

from cnnlab.calc.spec import LimitError, SpecError

PACKED_KEY = "packed"  # the query parameter of a packed layer list
PACK_ABOVE = 2_000  # characters of query string above which the layers are packed
MAX_QUERY_CHARS = 8_000  # characters of query string a bookmark may have
MAX_TEXT_BYTES = 1_000_000  # bytes of layer text a packed value may decompress to


def query_chars(query: Mapping[str, str | Sequence[str]]) -> int:
    """How many characters `query` takes as a URL's query string (percent-encoded)."""
    return len(urllib.parse.urlencode(query, doseq=True))


def too_large(query: Mapping[str, str | Sequence[str]]) -> bool:
    """Whether `query` is too long to bookmark (more than MAX_QUERY_CHARS)."""
    return query_chars(query) > MAX_QUERY_CHARS


def pack(text: str) -> str:
    """`text` zlib-compressed, base64url-encoded, without padding: URL-safe as it is."""
    packed = base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9))
    return packed.rstrip(b"=").decode("ascii")


def unpack(value: str) -> str:
    """The text `pack` packed into `value`; SpecError (one line) for anything else, and
    LimitError past MAX_QUERY_CHARS characters or MAX_TEXT_BYTES bytes of text."""
    value = str(value).strip()
    if len(value) > MAX_QUERY_CHARS:
        raise LimitError(f"{PACKED_KEY}: {len(value):,} characters, more than a bookmark's "
                         f"limit of {MAX_QUERY_CHARS:,}")
    try:
        data = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_",
                                validate=True)
    except (binascii.Error, ValueError):  # ValueError: a character outside ASCII
        raise SpecError(f"{PACKED_KEY}: not a packed layer list (bad base64url)") from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, MAX_TEXT_BYTES + 1)  # never more than this
    except zlib.error:
        raise SpecError(f"{PACKED_KEY}: not a packed layer list (bad zlib data)") from None
    if len(raw) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise LimitError(f"{PACKED_KEY}: the layer text is more than {MAX_TEXT_BYTES:,} bytes "
                         "once decompressed (the calculator's limit)")
    if not inflater.eof:
        raise SpecError(f"{PACKED_KEY}: the packed layer list is cut short")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{PACKED_KEY}: the packed layer text is not UTF-8") from None
