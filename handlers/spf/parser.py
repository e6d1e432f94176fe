"""RFC 7208 SPF record syntax: a total parser.

`parse_record(text)` never raises: it returns an `SPFRecord` (typed terms) or an
`SPFSyntaxError` naming the exact problem and the offending term. The whole
record is checked before anything is evaluated (RFC 7208 §4.6: syntax errors
anywhere in the record are detected), including macro-string syntax (§7.1),
domain-spec endings, CIDR ranges, duplicate `redirect=`/`exp=` (§6) and 7-bit
ASCII (§3.1 via §4.5: TXT bytes outside ASCII cannot form a valid record).

The ABNF followed here (RFC 7208 §12)::

    record           = version terms *SP
    version          = "v=spf1"
    terms            = *( 1*SP ( directive / modifier ) )
    directive        = [ qualifier ] mechanism
    mechanism        = all / include / a / mx / ptr / ip4 / ip6 / exists
    modifier         = redirect / explanation / unknown-modifier
    unknown-modifier = name "=" macro-string
    domain-spec      = macro-string domain-end
    domain-end       = ( "." toplabel [ "." ] ) / macro-expand
    macro-expand     = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

Qualifier = Literal["+", "-", "~", "?"]

QUALIFIER_RESULT: dict[str, str] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
# Terms that cost one DNS lookup towards the limit of 10 (RFC 7208 §4.6.4).
LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
DELIMITERS = ".-+,/_="
DOMAIN_LETTERS = frozenset("slodiphv")
EXP_LETTERS = frozenset("slodiphvcrt")  # c, r, t only in explanation text (§7.1)
MAX_RECORD_BYTES = 65535

_VERSION = re.compile(r"v=spf1(?: |\Z)", re.IGNORECASE)
_MOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*")
# RFC 7208 toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ),
# written so that no input backtracks more than linearly (issue 8 regex review): the letter
# is found by a lookahead over digits instead of by splitting an alphanumeric run three ways.
_TOPLABEL = re.compile(r"\A(?:(?=[0-9]*[A-Za-z])[A-Za-z0-9]+|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z")
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4 = re.compile(rf"{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}")
# Near misses, told apart so the error says what is actually wrong with the address.
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_PARTIAL_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){0,2}")
_IP6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
_CIDR_SUFFIX = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?\Z")


# ---------------------------------------------------------------------------
# Macro strings (§7)


@dataclass(frozen=True)
class Macro:
    """One `%{...}` macro-expand."""

    letter: str  # lower-case macro letter
    url_escape: bool  # upper-case letter: URL-escape the expansion (§7.3)
    digits: int | None  # keep this many right-hand parts (None = all)
    reverse: bool
    delimiters: str  # "" = "."

    def text(self) -> str:
        letter = self.letter.upper() if self.url_escape else self.letter
        return (
            "%{"
            + letter
            + (str(self.digits) if self.digits else "")
            + ("r" if self.reverse else "")
            + self.delimiters
            + "}"
        )


# A parsed macro-string: literal text pieces ("%%" -> "%", "%_" -> " ", "%-" -> "%20")
# and Macro objects, in order.
MacroToken = str | Macro


class MacroSyntaxError(ValueError):
    pass


def parse_macro_string(
    text: str, letters: frozenset[str] = DOMAIN_LETTERS, *, explain: bool = False
) -> tuple[MacroToken, ...]:
    """Tokenise a macro-string (or, with explain=True, an explain-string that may hold spaces).

    Raises MacroSyntaxError with a precise message on bad syntax.
    """
    return _tokenize(text, letters, explain)[0]


def _tokenize(text: str, letters: frozenset[str], explain: bool) -> tuple[tuple[MacroToken, ...], int]:
    """Tokens plus the index in `text` where the trailing run of plain literal characters starts."""
    tokens: list[MacroToken] = []
    literal: list[str] = []
    tail_start = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            if i + 1 >= n:
                raise MacroSyntaxError(
                    f"'%' at the end of {text!r} must be followed by '{{', '%', '_' or '-'"
                )
            nxt = text[i + 1]
            if nxt in "%_-":
                literal.append({"%": "%", "_": " ", "-": "%20"}[nxt])
                i += 2
                tail_start = i
                continue
            if nxt != "{":
                raise MacroSyntaxError(f"'%{nxt}' in {text!r} is not a macro (use %%, %_, %- or %{{...}})")
            end = text.find("}", i + 2)
            if end < 0:
                raise MacroSyntaxError(f"unterminated macro '%{{' in {text!r}")
            if literal:
                tokens.append("".join(literal))
                literal = []
            tokens.append(_parse_macro_body(text[i + 2 : end], letters))
            i = end + 1
            tail_start = i
            continue
        o = ord(ch)
        if not (0x21 <= o <= 0x7E or (explain and o == 0x20)):
            raise MacroSyntaxError(f"character {_show_char(ch)} is not allowed in {text!r}")
        literal.append(ch)
        i += 1
    if literal:
        tokens.append("".join(literal))
    return tuple(tokens), tail_start


def _parse_macro_body(body: str, letters: frozenset[str]) -> Macro:
    if not body:
        raise MacroSyntaxError("empty macro '%{}'")
    letter = body[0]
    low = letter.lower()
    if low not in EXP_LETTERS:
        raise MacroSyntaxError(f"unknown macro letter {letter!r} in '%{{{body}}}'")
    if low not in letters:
        raise MacroSyntaxError(f"macro letter {letter!r} is only allowed in explanation text ('%{{{body}}}')")
    j = 1
    while j < len(body) and body[j] in "0123456789":
        j += 1
    digits: int | None = None
    if j > 1:
        num = body[1:j].lstrip("0")
        if not num:
            raise MacroSyntaxError(f"the number of parts in '%{{{body}}}' must not be zero")
        digits = int(num) if len(num) <= 6 else 999_999
    reverse = False
    if j < len(body) and body[j] in "rR":
        reverse = True
        j += 1
    delims = body[j:]
    for d in delims:
        if d not in DELIMITERS:
            raise MacroSyntaxError(f"{_show_char(d)} is not a valid delimiter in '%{{{body}}}'")
    return Macro(low, letter != low, digits, reverse, delims)


def _show_char(ch: str) -> str:
    o = ord(ch)
    if 0x21 <= o <= 0x7E:
        return repr(ch)
    return f"U+{o:04X}" if o > 0xFF else f"0x{o:02x}"


def has_macros(tokens: tuple[MacroToken, ...]) -> bool:
    return any(isinstance(t, Macro) for t in tokens)


def literal_text(tokens: tuple[MacroToken, ...]) -> str:
    """The text of a macro-free token sequence."""
    return "".join(t for t in tokens if isinstance(t, str))


def parse_domain_spec(raw: str) -> tuple[MacroToken, ...]:
    """domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand."""
    tokens, tail_start = _tokenize(raw, DOMAIN_LETTERS, False)
    if not tokens:
        raise MacroSyntaxError("empty domain")
    tail = raw[tail_start:]
    if not tail:
        return tokens  # ends with a macro-expand
    if tail.endswith("."):
        tail = tail[:-1]
    dot = tail.rfind(".")
    top = tail[dot + 1 :]
    if dot < 0:
        if tail_start == 0:
            raise MacroSyntaxError(f"{raw!r} is not a domain name (it needs a dot and a top-level label)")
        raise MacroSyntaxError(f"{raw!r} must end in a macro or in '.' and a top-level label")
    if not _TOPLABEL.fullmatch(top):
        if top.isdigit():
            raise MacroSyntaxError(
                f"{raw!r} ends in a numeric label: an IP address needs ip4:/ip6:, not a domain mechanism"
            )
        raise MacroSyntaxError(f"{raw!r} does not end in a valid top-level label ({top!r})")
    return tokens


# ---------------------------------------------------------------------------
# Terms


@dataclass(frozen=True)
class Mechanism:
    qualifier: Qualifier
    name: str  # all include a mx ptr ip4 ip6 exists
    text: str  # the term as written
    domain_spec: str | None = None  # raw domain-spec (include a mx ptr exists)
    domain_tokens: tuple[MacroToken, ...] = ()
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4 / ip6
    cidr4: int = 32  # a / mx
    cidr6: int = 128  # a / mx

    @property
    def kind(self) -> str:
        return "mechanism"

    @property
    def result(self) -> str:
        return QUALIFIER_RESULT[self.qualifier]

    @property
    def costs_lookup(self) -> bool:
        return self.name in LOOKUP_MECHANISMS

    @property
    def has_macros(self) -> bool:
        return has_macros(self.domain_tokens)


@dataclass(frozen=True)
class Modifier:
    name: str  # lower-case: redirect, exp, or an unknown name
    value: str
    text: str
    tokens: tuple[MacroToken, ...] = ()

    @property
    def kind(self) -> str:
        return "modifier"

    @property
    def costs_lookup(self) -> bool:
        return self.name == "redirect"

    @property
    def has_macros(self) -> bool:
        return has_macros(self.tokens)


Term = Mechanism | Modifier


@dataclass(frozen=True)
class SPFRecord:
    text: str
    terms: tuple[Term, ...]
    mechanisms: tuple[Mechanism, ...]
    redirect: Modifier | None = None
    exp: Modifier | None = None
    unknown_modifiers: tuple[Modifier, ...] = ()

    @property
    def ok(self) -> bool:
        return True

    @property
    def has_all(self) -> bool:
        return any(m.name == "all" for m in self.mechanisms)

    @property
    def all_mechanism(self) -> Mechanism | None:
        for m in self.mechanisms:
            if m.name == "all":
                return m
        return None

    @property
    def lookup_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.costs_lookup)

    @property
    def uses_macros(self) -> bool:
        return any(t.has_macros for t in self.terms)


@dataclass(frozen=True)
class SPFSyntaxError:
    """Why a record is a permerror: `message` is one English sentence, `term` the culprit."""

    message: str
    term: str | None = None
    record: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.message


ParseResult = SPFRecord | SPFSyntaxError


class _TermError(ValueError):
    pass


# ---------------------------------------------------------------------------
# Record selection and parsing


def to_text(record: str | bytes) -> str | None:
    """bytes -> str when 7-bit ASCII, else None (a non-ASCII record is a permerror)."""
    if isinstance(record, bytes):
        try:
            return record.decode("ascii")
        except UnicodeDecodeError:
            return None
    return record if record.isascii() else None


def is_spf_record(record: str | bytes) -> bool:
    """RFC 7208 §4.5: the record starts with "v=spf1" (any case) followed by a space or its end."""
    if isinstance(record, bytes):
        head = record[:7].decode("latin-1")
    else:
        head = record[:7]
    return bool(_VERSION.match(head))


def select_records(records: list[bytes] | list[str]) -> list[bytes | str]:
    """The SPF records among a name's TXT records (§4.5)."""
    return [r for r in records if is_spf_record(r)]


def parse_record(record: str | bytes) -> ParseResult:
    """Parse one SPF record. Never raises."""
    try:
        return _parse(record)
    except Exception as exc:  # belt and braces: the parser must be total
        shown = record if isinstance(record, str) else record.decode("latin-1")
        return SPFSyntaxError(f"unparsable record: {exc}", record=shown[:512])


def _parse(record: str | bytes) -> ParseResult:
    shown = record if isinstance(record, str) else record.decode("latin-1")
    if len(shown) > MAX_RECORD_BYTES:
        return SPFSyntaxError("the record is longer than a DNS answer can be", record=shown[:512])
    if not is_spf_record(record):
        return SPFSyntaxError(
            "not an SPF record: it must start with 'v=spf1' followed by a space", record=shown
        )
    text = to_text(record)
    if text is None:
        bad = next(ch for ch in shown if ord(ch) > 0x7F)
        culprit = next((t for t in shown.split(" ") if bad in t), None)
        return SPFSyntaxError(
            f"the record contains a non-ASCII character ({_show_char(bad)}); SPF records must be 7-bit ASCII",
            term=culprit,
            record=shown,
        )
    terms: list[Term] = []
    mechanisms: list[Mechanism] = []
    redirect: Modifier | None = None
    exp: Modifier | None = None
    unknown: list[Modifier] = []
    for raw in text[6:].split(" "):
        if not raw:
            continue  # several spaces between terms, or trailing spaces: allowed
        try:
            term = _parse_term(raw)
        except (_TermError, MacroSyntaxError) as exc:
            return SPFSyntaxError(f"{exc}", term=raw, record=text)
        if isinstance(term, Modifier):
            if term.name == "redirect":
                if redirect is not None:
                    return SPFSyntaxError("'redirect=' appears more than once", term=raw, record=text)
                redirect = term
            elif term.name == "exp":
                if exp is not None:
                    return SPFSyntaxError("'exp=' appears more than once", term=raw, record=text)
                exp = term
            else:
                unknown.append(term)
        else:
            mechanisms.append(term)
        terms.append(term)
    return SPFRecord(text, tuple(terms), tuple(mechanisms), redirect, exp, tuple(unknown))


def _parse_term(raw: str) -> Term:
    for ch in raw:
        if not 0x21 <= ord(ch) <= 0x7E:
            raise _TermError(
                f"term {raw!r} contains the character {_show_char(ch)}; terms are separated by single spaces only"
            )
    # A modifier has '=' before any ':' or '/'.
    cut = len(raw)
    for sep in ":/=":
        k = raw.find(sep)
        if 0 <= k < cut:
            cut = k
    if cut < len(raw) and raw[cut] == "=":
        return _parse_modifier(raw, raw[:cut], raw[cut + 1 :])
    return _parse_mechanism(raw)


def _parse_modifier(raw: str, name: str, value: str) -> Modifier:
    if not name:
        raise _TermError(f"{raw!r}: a modifier needs a name before '='")
    if not _MOD_NAME.fullmatch(name):
        raise _TermError(f"{raw!r}: {name!r} is not a valid modifier name (it must start with a letter)")
    low = name.lower()
    if low in ("redirect", "exp"):
        if not value:
            raise _TermError(f"{raw!r}: '{low}=' needs a domain")
        try:
            tokens = parse_domain_spec(value)
        except MacroSyntaxError as exc:
            raise _TermError(f"{raw!r}: {exc}") from None
        return Modifier(low, value, raw, tokens)
    try:
        tokens = parse_macro_string(value, EXP_LETTERS)
    except MacroSyntaxError as exc:
        raise _TermError(f"{raw!r}: {exc}") from None
    return Modifier(low, value, raw, tokens)


def _parse_mechanism(raw: str) -> Mechanism:
    qualifier: Qualifier = "+"
    body = raw
    if body[0] in "+-~?":
        qualifier = body[0]  # type: ignore[assignment]
        body = body[1:]
    k = len(body)
    for sep in ":/":
        j = body.find(sep)
        if 0 <= j < k:
            k = j
    name = body[:k].lower()
    rest = body[k:]
    if name not in MECHANISMS:
        if name in ("redirect", "exp"):
            raise _TermError(f"{raw!r}: {name} is a modifier and is written '{name}=...'")
        if not name:
            raise _TermError(f"{raw!r} has no mechanism name")
        raise _TermError(f"{raw!r}: unknown mechanism {body[:k]!r}")
    if name == "all":
        if rest:
            raise _TermError(f"{raw!r}: 'all' takes no argument")
        return Mechanism(qualifier, name, raw)
    if name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) == 1:
            raise _TermError(f"{raw!r}: '{name}' needs ':domain'")
        ds = rest[1:]
        try:
            tokens = parse_domain_spec(ds)
        except MacroSyntaxError as exc:
            raise _TermError(f"{raw!r}: {exc}") from None
        return Mechanism(qualifier, name, raw, ds, tokens)
    if name == "ptr":
        if not rest:
            return Mechanism(qualifier, name, raw)
        if not rest.startswith(":"):
            raise _TermError(f"{raw!r}: 'ptr' takes no CIDR length")
        ds = rest[1:]
        if not ds:
            raise _TermError(f"{raw!r}: empty domain after 'ptr:'")
        try:
            tokens = parse_domain_spec(ds)
        except MacroSyntaxError as exc:
            raise _TermError(f"{raw!r}: {exc}") from None
        return Mechanism(qualifier, name, raw, ds, tokens)
    if name in ("a", "mx"):
        ds_text: str | None = None
        if rest.startswith(":"):
            arg = rest[1:]
            m = _CIDR_SUFFIX.search(arg)
            assert m is not None  # the pattern can always match the empty suffix
            ds_text = arg[: m.start()]
            c4, c6 = m.group(1), m.group(2)
            if not ds_text:
                raise _TermError(f"{raw!r}: empty domain after '{name}:'")
        else:
            m = _CIDR_SUFFIX.fullmatch(rest) if rest else None
            if rest and m is None:
                raise _TermError(f"{raw!r}: bad CIDR length {rest!r} (use /N for IPv4 and //N for IPv6)")
            c4 = m.group(1) if m else None
            c6 = m.group(2) if m else None
        cidr4 = _cidr(raw, c4, 32) if c4 is not None else 32
        cidr6 = _cidr(raw, c6, 128) if c6 is not None else 128
        ds_tokens: tuple[MacroToken, ...] = ()
        if ds_text is not None:
            try:
                ds_tokens = parse_domain_spec(ds_text)
            except MacroSyntaxError as exc:
                raise _TermError(f"{raw!r}: {exc}") from None
        return Mechanism(qualifier, name, raw, ds_text, ds_tokens, None, cidr4, cidr6)
    # ip4 / ip6
    if not rest.startswith(":") or len(rest) == 1:
        raise _TermError(f"{raw!r}: '{name}' needs ':address'")
    arg = rest[1:]
    addr, slash, length = arg.partition("/")
    if name == "ip4":
        if not _IP4.fullmatch(addr):
            raise _TermError(f"{raw!r}: {_ip4_problem(addr)}")
        bits = _cidr(raw, length, 32) if slash else 32
        net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv4Network(
            f"{addr}/{bits}", strict=False
        )
    else:
        if not _IP6_CHARS.fullmatch(addr):
            raise _TermError(f"{raw!r}: {addr!r} is not an IPv6 address")
        try:
            ipaddress.IPv6Address(addr)
        except ValueError:
            raise _TermError(f"{raw!r}: {addr!r} is not an IPv6 address") from None
        bits = _cidr(raw, length, 128) if slash else 128
        net = ipaddress.IPv6Network(f"{addr}/{bits}", strict=False)
    return Mechanism(qualifier, name, raw, None, (), net)


def _ip4_problem(addr: str) -> str:
    """What is wrong with `addr`, which is not an RFC 7208 ip4-network."""
    if _DOTTED_QUAD.fullmatch(addr):
        if any(int(part) > 255 for part in addr.split(".")):
            return f"{addr!r} has a number over 255 (each of the four numbers of an IPv4 address is 0 to 255)"
        return f"{addr!r} has a number with a leading zero (write 192.0.2.1, not 192.0.2.01)"
    if _PARTIAL_QUAD.fullmatch(addr):
        return f"{addr!r} is not a complete IPv4 address (a.b.c.d)"
    return f"{addr!r} is not an IPv4 address (a.b.c.d)"


def _cidr(raw: str, text: str, limit: int) -> int:
    if not text or not text.isascii() or not text.isdigit():
        raise _TermError(f"{raw!r}: bad CIDR length {text!r}")
    if len(text) > 1 and text[0] == "0":
        raise _TermError(f"{raw!r}: CIDR length {text!r} has a leading zero")
    value = int(text) if len(text) <= 4 else limit + 1
    if value > limit:
        raise _TermError(f"{raw!r}: CIDR length /{text} is larger than {limit}")
    return value


def parse_explanation(text: str | bytes) -> tuple[MacroToken, ...] | None:
    """An explanation TXT (§6.2): explain-string tokens, or None when it is not valid."""
    t = to_text(text)
    if t is None:
        return None
    try:
        return parse_macro_string(t, EXP_LETTERS, explain=True)
    except MacroSyntaxError:
        return None
