"""HTML templates for the approval emails and pages, rendered with escaping by default.

Templates use ``string.Template`` placeholders (``$name``). Every value is HTML-escaped unless
it is wrapped in :class:`Markup`, which only code in this package does, for fragments it has
built itself from escaped parts.

:func:`plain_text` is the one cleaning of untrusted text for every email and page: HTML escaping
(:func:`escape`) and the text emails' quoting (``mail.quoted``) and one-line fields
(``mail.one_line``) are all built on it, so a character it removes reaches no reader anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from functools import cache
from importlib import resources
from string import Template
from typing import Final


class Markup(str):
    """HTML that is already safe (built from escaped parts); inserted as is."""


# Every line break a mail client or browser may honour, as one.
_LINE_BREAK: Final = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# What no reader should get as is: C0/C1 controls (line breaks and tab are handled above), and the
# invisible or direction-changing characters that make text read otherwise than it is stored.
_HIDDEN: Final = re.compile(
    r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def plain_text(value: object) -> str:
    """Untrusted text as a reader may see it: line breaks as ``\\n``, tabs as spaces, controls
    and invisible or direction-changing characters removed. ``None`` is the empty string."""
    text = "" if value is None else str(value)
    return _HIDDEN.sub("", _LINE_BREAK.sub("\n", text).replace("\t", "    "))


def escape(value: object) -> Markup:
    """``value`` as HTML: cleaned by :func:`plain_text`, then escaped (Markup is kept as is)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(plain_text(value), quote=True))


@cache
def _source(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def render(name: str, **values: object) -> Markup:
    """Template ``name`` with every value escaped (a missing placeholder is an error)."""
    return Markup(Template(_source(name)).substitute({k: escape(v) for k, v in values.items()}))


# Kept in Python rather than a .css file: the Lambda package ships only .py/.html/.json files.
STYLESHEET: Final = """\
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:40rem;margin:2rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}
dt{font-weight:600;color:#4a5468}
dd{margin:0;white-space:pre-wrap;word-break:break-word}
.error{background:#fdecea;border-left:4px solid #c62828;padding:.6rem .8rem}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.6rem .8rem}
.note{color:#4a5468;font-size:.9rem}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input[type=text]{font-size:1.3rem;letter-spacing:.2rem;width:8rem;padding:.3rem}
.actions{margin-top:1rem;display:flex;gap:1rem}
button{font-size:1rem;padding:.5rem 1.4rem;border:0;border-radius:4px;cursor:pointer;background:#2e7d32;color:#fff}
button.deny{background:#c62828}
"""


def stylesheet() -> str:
    return STYLESHEET


def style_hash() -> str:
    """The CSP source for the page's one inline stylesheet (so no 'unsafe-inline' is needed)."""
    digest = hashlib.sha256(stylesheet().encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


TEMPLATE_NAMES: Final = ("page.html", "confirm.html", "message.html", "email.html", "notice.html")
