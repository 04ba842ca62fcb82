"""Tab completion for the input line: slash commands, peer addresses and known nicks.

Rules:
- ``/co`` completes command names from ``commands.COMMANDS`` (the list ``/help`` shows), with
  a space after those that take an argument.
- After ``/connect `` or ``/disconnect `` the argument completes from known addresses.
- Anywhere else the word before the cursor completes from known nicks, case-insensitively,
  most recently heard first; a nick completed at the start of the line gets ``": "`` (the
  IRC way to address someone), elsewhere a space.
- ``KnownNicks`` only ever holds cleaned display text (``render.clean``): what the user saw
  is what gets inserted, never a peer's raw control characters.  It keeps ``MAX_NICKS``
  nicks of at most ``MAX_NICK_CHARS`` characters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from ..commands import COMMANDS
from .render import clean

MAX_NICKS = 500
MAX_NICK_CHARS = 64  # a longer one is shown cut (render.NICK_WIDTH), and nobody types it
ADDRESS_COMMANDS = ("connect", "disconnect")


class KnownNicks:
    """Nicks heard recently, most recent first, at most ``limit`` of them."""

    def __init__(self, limit: int = MAX_NICKS) -> None:
        self.limit = limit
        self._nicks: OrderedDict[str, None] = OrderedDict()

    def heard(self, nick: str) -> None:
        if len(nick) > MAX_NICK_CHARS:  # any length a peer likes: never kept
            return
        nick = clean(nick).strip()
        if not nick or " " in nick:
            return
        self._nicks[nick] = None
        self._nicks.move_to_end(nick, last=False)
        while len(self._nicks) > self.limit:
            self._nicks.popitem(last=True)

    def recent(self) -> list[str]:
        return list(self._nicks)


class ChatCompleter(Completer):
    def __init__(
        self,
        nicks: Callable[[], Iterable[str]],
        addresses: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        self._nicks = nicks
        self._addresses = addresses

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            yield from _commands(before)
            return
        name, _, arg = before[1:].partition(" ")
        if before.startswith("/") and name.lower() in ADDRESS_COMMANDS and " " not in arg:
            yield from _matches(arg, self._addresses(), suffix="")
            return
        word = document.get_word_before_cursor(WORD=True)
        if not word:
            return
        suffix = ": " if before == word else " "
        yield from _matches(word, self._nicks(), suffix=suffix)


def _commands(before: str) -> Iterator[Completion]:
    prefix = before[1:].lower()
    for name, (args, description) in COMMANDS.items():
        if name.startswith(prefix):
            yield Completion(
                f"/{name}" + (" " if args else ""),
                start_position=-len(before),
                display=f"/{name} {args}".rstrip(),
                display_meta=description,
            )


def _matches(word: str, candidates: Iterable[str], *, suffix: str) -> Iterator[Completion]:
    folded = word.casefold()
    for candidate in candidates:
        if candidate.casefold().startswith(folded):
            yield Completion(candidate + suffix, start_position=-len(word), display=candidate)
