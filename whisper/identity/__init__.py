"""Identities (extension 13, PROTOCOL.md §7.5-§7.7): keys, signatures, direct messages, channels.

Rules:
- Pure, apart from the key file (``keys.load_or_create``): no sockets, no trio, no clock of
  its own.  Crypto is PyNaCl's (libsodium): Ed25519 signatures, the Ed25519-to-X25519
  conversion and sealed boxes; nothing here reimplements a primitive.
- What arrives from peers is checked here without raising: ``signing.verify`` gives a
  verdict, ``dm.open_dm`` an ``Opened`` or None, ``channels.channel_of`` a name or
  ``BadChannel``.  What the user asks for that cannot be done is a one-line error
  (``KeyFileError``, ``DMError``, ``ChannelError``).
"""

from .channels import BadChannel, ChannelError, Channels, channel_body, channel_of, shown_text
from .dm import DMError, Opened, is_dm, open_dm, seal
from .fingerprints import fingerprint, short_fingerprint, typed_digits
from .keys import Identity, KeyFileError, default_path, load_or_create
from .pins import Assessment, PinTable, Trust
from .signing import SigStatus, Verdict, sign, verify

__all__ = [
    "Assessment",
    "BadChannel",
    "ChannelError",
    "Channels",
    "DMError",
    "Identity",
    "KeyFileError",
    "Opened",
    "PinTable",
    "SigStatus",
    "Trust",
    "Verdict",
    "channel_body",
    "channel_of",
    "default_path",
    "fingerprint",
    "is_dm",
    "load_or_create",
    "open_dm",
    "seal",
    "short_fingerprint",
    "shown_text",
    "sign",
    "typed_digits",
    "verify",
]
