r"""Stored text is data, never markup: one rule per place assay shows it.

Scorer names, model versions, entity ids, target events, segment values and source names come
from whoever wrote to the ledger. Wherever assay shows them they must read as the characters
stored, not as instructions to the renderer:

* terminal (Rich): never parsed as Rich markup (``[/]`` crashed, ``[link=…]`` made a live
  hyperlink), nor as emoji codes; see :func:`terminal_text` and :func:`terminal_markup`;
* charts (matplotlib): never parsed as mathtext (``$\cmd$`` crashed the drawing); see
  :func:`plot_text`;
* HTML: Jinja2 autoescaping already escapes ``<>&"'``; :func:`html_text` adds the visible
  controls below;
* CSV files assay writes: never a spreadsheet formula; see :func:`csv_cell`.

In the terminal, charts and HTML, invisible control and format characters are shown as
``<U+XXXX>`` (:func:`visible_controls`): a right-to-left override (U+202E) would otherwise
reverse what follows it on screen, an ESC could start a terminal escape sequence, a zero-width
space would make two different names look the same. A name that already contains the text
``<U+202E>`` reads the same as one with the character; the shown form favours the eye.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TypeVar

from rich.markup import escape
from rich.text import Text

#: Unicode categories made visible: controls (Cc: C0, DEL, C1 — ESC among them), format
#: characters (Cf: the bidi embeddings, overrides, isolates and marks, zero-width characters,
#: soft hyphen, BOM, tag characters), surrogates (Cs) and the line and paragraph separators.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NEGATIVE_NUMBER = re.compile(r"-(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

Cell = TypeVar("Cell")


def _show(char: str) -> str:
    if unicodedata.category(char) in INVISIBLE_CATEGORIES:
        return f"<U+{ord(char):04X}>"
    return char


def visible_controls(value: object) -> str:
    r"""Return ``str(value)`` with every control character shown as ``<U+XXXX>``.

    Every control, format, surrogate and line/paragraph-separator character (Unicode
    categories Cc, Cf, Cs, Zl, Zp) is replaced by the text ``<U+XXXX>``.

    Tab and newline are included: a stored value is one line of data.

    >>> visible_controls("\u202eevil\x1b[2J")
    '<U+202E>evil<U+001B>[2J'
    """
    text = str(value)
    if text.isprintable():  # the common case; isprintable() is False for all of the above
        return text
    return "".join(_show(char) for char in text)


def terminal_text(value: object, style: str = "") -> Text:
    """Return stored text for Rich, as a :class:`rich.text.Text`.

    It holds :func:`visible_controls` of ``value``, optionally styled as a whole. A ``Text`` is
    never parsed as markup nor for emoji codes, so ``[/]``, ``[link=…]`` and ``:smile:`` print as
    typed. Use it for table cells, titles, rules, and with :meth:`Text.assemble` for lines mixing
    assay's words.
    """
    return Text(visible_controls(value), style=style)


def terminal_markup(value: object) -> str:
    """Return stored text to interpolate into a Rich markup string.

    :func:`visible_controls`, then :func:`rich.markup.escape`, so no tag in it is parsed. Emoji
    codes (``:smile:``) are still replaced unless the string is printed with ``emoji=False``; prefer
    :func:`terminal_text`.
    """
    return escape(visible_controls(value))


def plot_text(value: object) -> str:
    r"""Return stored text for a matplotlib label, tick label or annotation.

    :func:`visible_controls`, then every ``$`` written as ``\$``. Matplotlib (without usetex) parses
    text as mathtext only when it holds an even, non-zero number of unescaped ``$``; with all of
    them escaped it never does, and draws each ``\$`` as ``$``, so the stored text is drawn as
    stored.
    """
    return visible_controls(value).replace("$", r"\$")


def html_text(value: object) -> str:
    """Return stored text for the HTML report: :func:`visible_controls`.

    Jinja2 autoescaping or :func:`markupsafe.escape` must still escape the result; this does
    not.
    """
    return visible_controls(value)


def csv_cell(value: Cell) -> Cell | str:
    r"""Return a cell for a CSV file assay writes, quoted when it could run as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``,
    so a spreadsheet shows it as text instead of evaluating it as a formula (OWASP "CSV Injection").
    Other values are returned unchanged.

    Decision: a plain negative decimal number (``-0.5``, ``-3``, ``-1e-3``) is left as it is.
    It cannot be a formula, and it is the value a reader most often needs to see exactly (a
    negative score). Anything else starting with ``-`` (``-1+1``, ``-cmd|…``) is quoted.

    >>> csv_cell('=HYPERLINK("http://x")'), csv_cell("-0.5"), csv_cell("-1+1")
    ('\'=HYPERLINK("http://x")', '-0.5', "'-1+1")
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if _PLAIN_NEGATIVE_NUMBER.fullmatch(value):
        return value
    return "'" + value
