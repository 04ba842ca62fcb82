"""Full-text queries built from what the user typed: words, never FTS5 syntax.

Rules:
- The text is split on whitespace (a NUL is one: FTS5 would end a string there); each word
  becomes one FTS5 string (``"word"``, any ``"`` in it doubled), and the strings are joined
  by spaces: a message matches when it holds every word, in any order, case and accents
  aside (the index's ``unicode61`` tokenizer with ``remove_diacritics 2``).  A word that
  is several tokens (``foo-bar``, ``don't``) matches them as a phrase.
- Nothing the user types is FTS5 syntax: ``"``, ``*``, ``(``, ``NEAR``, ``AND``, ``-`` or
  ``:`` are text, so no query is an error and none reaches past the index.
- A word with no letter or digit (``"``, ``--``) is left out: it is no token.  Text with no
  word left matches nothing (``None``).
- At most ``MAX_WORDS`` words of at most ``MAX_WORD`` characters are used, so the work a
  search costs is bounded whatever is pasted.
"""

from __future__ import annotations

MAX_WORDS = 16
MAX_WORD = 100


def fts_query(text: str) -> str | None:
    """The FTS5 ``MATCH`` expression for ``text``, or None when it can match nothing."""
    words = []
    for word in text.replace("\0", " ").split():
        word = word[:MAX_WORD]
        if not any(c.isalnum() for c in word):
            continue
        words.append('"' + word.replace('"', '""') + '"')
        if len(words) == MAX_WORDS:
            break
    return " ".join(words) or None
