"""srs.conf as SRS 6 reads it: parse, check, compare and edit.

The tokenizer follows SRS's own (`SrsConfDirective::read_token`, after nginx): `#`
starts a comment only where a token could start, `;` ends a directive, `{`/`}` open
and close blocks, '...' and "..." quote one argument, and a directive must end on the
line it starts on. Error messages are SRS's, with a file:line:col in front.
Values such as `$CANDIDATE` are plain words; `${CANDIDATE}` must be quoted, for its
`{` opens a block, in SRS as here.

`check` then applies SRS's rewrite of older spellings (`srs_config_transform_vhost`)
and its `check_normal_config`, so what it rejects is what `srs -t` rejects. It sees
the file only: SRS_* environment overrides, the count of local network interfaces
(`stats.network`) and the open-file limit (`max_connections`) are not looked at.

`include` differs from SRS in one way: SRS opens the file relative to its working
directory; `load` tries the including file's directory first, then `cwd` (SRS's
working directory, default: ours), because in a pod the config directory is known
and SRS's working directory often is not.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from agents.errors import ConfigError
from agents.srs import directives as known

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


@dataclass
class Directive:
    """One directive (`name args;`) or block (`name args { ... }`) of a config file."""

    name: str
    args: list[str]
    children: list[Directive] | None  # None: not a block
    file: str
    line: int  # 1-based position of the name
    col: int
    start: int  # char offsets of the whole directive in its file's text
    end: int
    # Where each argument sits in the text (quotes included), for the editor.
    arg_spans: list[tuple[int, int]] = field(default_factory=list, repr=False, compare=False)
    name_end: int = field(default=-1, repr=False, compare=False)
    open_brace: int = field(default=-1, repr=False, compare=False)
    close_brace: int = field(default=-1, repr=False, compare=False)

    @property
    def arg0(self) -> str:
        """First argument, "" if none (SRS's `arg0()`)."""
        return self.args[0] if self.args else ""

    def get(self, name: str) -> Directive | None:
        """First child called `name`, as SRS's `get(name)`."""
        for child in self.children or ():
            if child.name == name:
                return child
        return None

    def all(self, name: str) -> list[Directive]:
        return [child for child in self.children or () if child.name == name]


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigSyntaxError(ConfigError):
    """The config cannot be read as SRS would read it; `problem` says where and why."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Config:
    path: str
    root: list[Directive]
    files: dict[str, str]  # every file read (the config, then its includes) -> its text
    _transformed: list[Directive] | None = field(
        default=None, init=False, repr=False, compare=False)

    def transformed(self) -> list[Directive]:
        """`transform(root)`, computed once: what SRS checks and runs. Read-only."""
        if self._transformed is None:
            self._transformed = transform(self.root)
        return self._transformed

    def get(self, *path: str) -> Directive | None:
        """Follow first matches down the tree: get("vhost", "cluster", "origin")."""
        return _walk(self.root, path)

    def vhosts(self) -> list[Directive]:
        return [d for d in self.root if d.name == "vhost"]

    def find_vhost(self, name: str) -> Directive | None:
        return next((v for v in self.vhosts() if v.arg0 == name), None)


def _walk(nodes: Sequence[Directive], path: Sequence[str]) -> Directive | None:
    found: Directive | None = None
    for name in path:
        found = next((d for d in nodes if d.name == name), None)
        if found is None:
            return None
        nodes = found.children or []
    return found


# ---------------------------------------------------------------------------
# Tokenizer and parser (SrsConfDirective::read_token / parse_conf)
# ---------------------------------------------------------------------------

_SPACES = " \t\r\n"
_ENTIRE, _BLOCK_START, _BLOCK_END, _EOF = range(4)


@dataclass(frozen=True)
class _Token:
    text: str
    start: int  # the opening quote, if quoted
    end: int  # past the closing quote, if quoted


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def error(self, offset: int, message: str) -> ConfigSyntaxError:
        line, col = self.where(offset)
        return ConfigSyntaxError(ConfigProblem(self.path, line, col, message))

    def read_token(self) -> tuple[int, list[_Token], int]:
        """One directive's tokens: (state, tokens, offset of the `;`/`{`/`}` or EOF)."""
        text, end = self.text, len(self.text)
        args: list[_Token] = []
        sharp_comment = d_quoted = s_quoted = need_space = False
        last_space = True
        word_start = quote_at = self.pos
        while True:
            if self.pos >= end:
                if args or not last_space:
                    hint = ""
                    if d_quoted or s_quoted:
                        hint = " (quote at {}:{} never closed)".format(*self.where(quote_at))
                    raise self.error(end, 'unexpected end of file, expecting ; or "}"' + hint)
                return _EOF, args, end
            at = self.pos
            ch = text[at]
            self.pos += 1
            if ch in "\r\n":
                sharp_comment = False
                if args:
                    hint = ""
                    if d_quoted or s_quoted:
                        hint = " (quote at {}:{} never closed)".format(*self.where(quote_at))
                    raise self.error(
                        at, f"unexpected end of line to parse token {args[0].text}{hint}"
                    )
            if sharp_comment:
                continue
            if need_space:
                if ch in _SPACES:
                    last_space, need_space = True, False
                    continue
                if ch == ";":
                    return _ENTIRE, args, at
                if ch == "{":
                    return _BLOCK_START, args, at
                raise self.error(at, f"unexpected '{ch}'")
            if last_space:
                if ch in _SPACES:
                    continue
                word_start = at
                if ch == ";":
                    if not args:
                        raise self.error(at, "unexpected ';'")
                    return _ENTIRE, args, at
                if ch == "{":
                    if not args:
                        raise self.error(at, "unexpected '{'")
                    return _BLOCK_START, args, at
                if ch == "}":
                    if args:
                        raise self.error(at, "unexpected '}'")
                    return _BLOCK_END, args, at
                if ch == "#":
                    sharp_comment = True
                    continue
                if ch == '"':
                    d_quoted, quote_at = True, at
                elif ch == "'":
                    s_quoted, quote_at = True, at
                last_space = False
                continue
            found = False
            if d_quoted:
                if ch == '"':
                    d_quoted, need_space, found = False, True, True
            elif s_quoted:
                if ch == "'":
                    s_quoted, need_space, found = False, True, True
            elif ch in _SPACES or ch in ";{":
                last_space, found = True, True
            if not found:
                continue
            quoted = need_space
            word = text[word_start + 1 if quoted else word_start : at]
            if word:  # SRS drops empty words ("" and '')
                args.append(_Token(word, word_start, at + 1 if quoted else at))
            if ch == ";":
                return _ENTIRE, args, at
            if ch == "{":
                return _BLOCK_START, args, at
            if ch in "\r\n" and args:
                raise self.error(at, f"unexpected end of line to parse token {args[0].text}")


# Called for each file named by an `include`; returns the directives it holds.
_Resolver = Callable[[_Token, _Reader], list[Directive]]


def _parse_text(text: str, path: str, resolve: _Resolver | None) -> list[Directive]:
    reader = _Reader(text, path)
    root: list[Directive] = []
    open_blocks: list[Directive] = []
    while True:
        state, args, at = reader.read_token()
        container = root if not open_blocks else open_blocks[-1].children
        assert container is not None
        if state == _BLOCK_END:
            if not open_blocks:
                raise reader.error(at, 'unexpected "}"')
            block = open_blocks.pop()
            block.close_brace, block.end = at, at + 1
            continue
        if state == _EOF:
            if open_blocks:
                block = open_blocks[-1]
                raise reader.error(
                    block.start, f'unexpected end of file, expecting "}}" to close {block.name}'
                )
            return root
        if not args:
            raise reader.error(at, "empty directive")
        if args[0].text == "include" and resolve is not None:
            if len(args) == 1:
                raise reader.error(args[0].start, "include is empty directive")
            for token in args[1:]:
                container.extend(resolve(token, reader))
            continue  # like SRS, a `{` after include is taken as `;`
        name = args[0]
        line, col = reader.where(name.start)
        directive = Directive(
            name=name.text,
            args=[t.text for t in args[1:]],
            children=None,
            file=path,
            line=line,
            col=col,
            start=name.start,
            end=at + 1,
            arg_spans=[(t.start, t.end) for t in args[1:]],
            name_end=name.end,
        )
        container.append(directive)
        if state == _BLOCK_START:
            directive.children = []
            directive.open_brace = at
            open_blocks.append(directive)


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


def parse(text: str, path: str) -> Config:
    """Parse one file's text; `include` stays a plain directive."""
    return Config(path=path, root=_parse_text(text, path, None), files={path: text})


def load(path: str, *, cwd: str | None = None, beside: bool = True) -> Config:
    """Read `path` and every file it includes.

    An include path is tried relative to the including file's directory (unless
    `beside` is false), then to `cwd` (SRS's working directory; default: the current
    one). SRS itself opens includes from its working directory only: the reload gate
    passes `beside=False` with SRS's cwd so it reads what SRS will read; check-config
    keeps `beside` for configs checked away from their pod. A missing or
    unreadable config raises ConfigError; a bad one (or a missing include)
    ConfigSyntaxError with the position.
    """
    try:
        text = _read_text(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    files: dict[str, str] = {path: text}
    active = [os.path.realpath(path)]

    def resolve(token: _Token, reader: _Reader) -> list[Directive]:
        target = _find_include(token.text, reader.path, cwd, beside)
        if target is None:
            base = cwd if cwd is not None else os.getcwd()
            where = (f"beside {os.path.dirname(reader.path) or '.'} and in {base}" if beside
                     else f"in {base}, SRS's working directory")
            raise reader.error(token.start, f"include {token.text}: no such file (looked {where})")
        real = os.path.realpath(target)
        if real in active:
            raise reader.error(token.start, f"include {token.text}: includes itself")
        try:
            included = _read_text(target)
        except OSError as exc:
            raise reader.error(
                token.start, f"include {token.text}: cannot read {target}: {exc.strerror or exc}"
            ) from None
        files.setdefault(target, included)
        active.append(real)
        try:
            return _parse_text(included, target, resolve)
        finally:
            active.pop()

    return Config(path=path, root=_parse_text(text, path, resolve), files=files)


def _find_include(name: str, including: str, cwd: str | None, beside: bool) -> str | None:
    if os.path.isabs(name):
        return name if os.path.isfile(name) else None
    candidates = [
        os.path.normpath(os.path.join(os.path.dirname(including), name)),
        os.path.normpath(os.path.join(cwd, name)) if cwd is not None else name,
    ][0 if beside else 1:]
    return next((c for c in candidates if os.path.isfile(c)), None)


def content_sha256(config: Config) -> str:
    """Hash of the text of every file read, in reading order; paths do not count."""
    digest = hashlib.sha256()
    for text in config.files.values():
        data = text.encode("utf-8", "surrogateescape")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# SRS's rewrite of older spellings (srs_config_transform_vhost)
# ---------------------------------------------------------------------------


def _copy(d: Directive) -> Directive:
    """Deep copy; `include` left unresolved (by `parse`) is not SRS's to check."""
    kids = None if d.children is None else [_copy(c) for c in d.children if c.name != "include"]
    # The constructor, not dataclasses.replace: this runs for every node on every reload.
    return Directive(d.name, list(d.args), kids, d.file, d.line, d.col, d.start, d.end,
                     d.arg_spans, d.name_end, d.open_brace, d.close_brace)


def _get_or_create(parent: Directive, name: str, arg0: str | None = None) -> Directive:
    """SRS's `get_or_create`: the first child `name` (with `arg0`), else a new last child."""
    for child in parent.children or ():
        if child.name == name and (arg0 is None or child.arg0 == arg0):
            return child
    if parent.children is None:
        parent.children = []
    args = [] if arg0 is None else [arg0]
    made = replace(parent, name=name, args=args, children=None, arg_spans=[])
    parent.children.append(made)
    return made


def _remove_first(parent: Directive, name: str) -> None:
    kids = parent.children or []
    for i, child in enumerate(kids):
        if child.name == name:
            del kids[i]
            return


def transform(root: Sequence[Directive]) -> list[Directive]:
    """A copy of `root` with SRS 6's legacy rewrites applied (what SRS checks and runs)."""
    out = [_copy(d) for d in root if d.name != "include"]
    for d in out:
        if d.name in known.LEGACY_ROOT_RENAMES:
            d.name = known.LEGACY_ROOT_RENAMES[d.name]
            continue
        if d.children is not None:
            dropped = known.LEGACY_DROPPED.get(d.name, frozenset())
            d.children = [c for c in d.children if c.name not in dropped]
            for child in d.children:
                child.name = known.LEGACY_CHILD_RENAMES.get(d.name, {}).get(child.name, child.name)
        if d.name == "stream_caster":
            sip = d.get("sip")
            if sip is not None and sip.children is not None:
                gone = known.LEGACY_DROPPED["stream_caster.sip"]
                sip.children = [c for c in sip.children if c.name not in gone]
            for host in d.all("host"):
                d.children = [c for c in d.children or () if c is not host]
                sip = _get_or_create(d, "sip")
                sip.children = [*(sip.children or []), replace(host, name="candidate")]
        if d.name == "vhost":
            _transform_vhost(d)
    return out


def _transform_vhost(vhost: Directive) -> None:
    kids = vhost.children
    if kids is None:
        return
    i = 0
    while i < len(kids):
        conf = kids[i]
        n = conf.name
        if n in known.LEGACY_VHOST_RENAMES:
            conf.name = known.LEGACY_VHOST_RENAMES[n]
            i += 1
            continue
        if n == "http_remux":
            _remove_first(conf, "hstrs")
        if (n == "refer" and not conf.children) or n in ("refer_play", "refer_publish"):
            del kids[i]
            refer = _get_or_create(vhost, "refer")
            _get_or_create(refer, "enabled", "on")
            _get_or_create(refer, known.LEGACY_VHOST_REFER[n]).args = list(conf.args)
            continue
        if n == "mr":
            del kids[i]
            publish = _get_or_create(vhost, "publish")
            for old, new in known.LEGACY_VHOST_MR.items():
                found = conf.get(old)
                if found is not None:
                    _get_or_create(publish, new).args = list(found.args)
            continue
        if n in known.LEGACY_VHOST_PUBLISH:
            del kids[i]
            publish = _get_or_create(vhost, "publish")
            _get_or_create(publish, known.LEGACY_VHOST_PUBLISH[n]).args = list(conf.args)
            continue
        if n in known.LEGACY_VHOST_TO_PLAY:
            del kids[i]
            _get_or_create(_get_or_create(vhost, "play"), n).args = list(conf.args)
            continue
        if n == "forward" and not conf.children and conf.args:
            enabled = _get_or_create(conf, "enabled")
            enabled.args = ["on"]
            _get_or_create(conf, "destination").args = list(conf.args)
            conf.args = []
            i += 1
            continue
        if n in known.LEGACY_VHOST_TO_CLUSTER:
            del kids[i]
            _get_or_create(_get_or_create(vhost, "cluster"), n).args = list(conf.args)
            continue
        if n in known.LEGACY_VHOST_RTC:
            del kids[i]
            rtc = _get_or_create(vhost, "rtc")
            for old, new in known.LEGACY_VHOST_RTC[n].items():
                found = conf.get(old)
                if found is not None:
                    _get_or_create(rtc, new).args = list(found.args)
            continue
        if n == "rtc":
            aac = conf.get("aac")
            if aac is not None:
                value = "on" if aac.arg0 == "transcode" else "off"
                _get_or_create(conf, "rtmp_to_rtc").args = [value]
                _remove_first(conf, "aac")
            bframe = conf.get("bframe")
            if bframe is not None:
                value = "on" if bframe.arg0 == "keep" else "off"
                _get_or_create(conf, "keep_bframe").args = [value]
                _remove_first(conf, "bframe")
        i += 1


# ---------------------------------------------------------------------------
# Values as SRS reads them
# ---------------------------------------------------------------------------

_ATOI = re.compile(r"[ \t\n\r\f\v]*([+-]?\d+)")
_ATOF = re.compile(r"[ \t\n\r\f\v]*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def _atoi(text: str) -> int:
    """C's atoi: the leading integer, 0 if none."""
    m = _ATOI.match(text)
    return int(m.group(1)) if m else 0


def _atof(text: str) -> float:
    m = _ATOF.match(text)
    return float(m.group(1)) if m else 0.0


def _arg0(root: Sequence[Directive], *path: str) -> str | None:
    """arg0 of the directive at `path`, None if absent (SRS's `!conf`)."""
    found = _walk(root, path)
    return None if found is None else found.arg0


def _text(root: Sequence[Directive], path: Sequence[str], default: str) -> str:
    """A value where an absent or empty directive means the default."""
    value = _arg0(root, *path)
    return value if value else default


def _on(root: Sequence[Directive], *path: str) -> bool:
    """SRS_CONF_PREFER_FALSE: on only if it says `on`."""
    return _arg0(root, *path) == "on"


def _daemon(root: Sequence[Directive]) -> bool:
    value = _arg0(root, "daemon")
    return True if not value else value != "off"


def _parse_endpoint(listen: str) -> tuple[str | None, int]:
    """srs_parse_endpoint: (ip or None for "any", port)."""
    pos = listen.rfind(":")
    if pos < 0:
        return None, _atoi(listen)
    ip = listen[:pos]
    if pos >= 1 and listen[0] == "[" and listen[pos - 1] == "]":
        ip = listen[1 : pos - 1]
    return ip, _atoi(listen[pos + 1 :])


def _ip_valid(ip: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, ip)
        except (OSError, ValueError):
            continue
        return True
    return False


def _vhost_enabled(vhost: Directive | None) -> bool:
    if vhost is None:
        return False
    value = _arg0(vhost.children or [], "enabled")
    return True if not value else value != "off"


def _vhost_is_edge(vhost: Directive | None) -> bool:
    return vhost is not None and _arg0(vhost.children or [], "cluster", "mode") == "remote"


def _same(a: Directive | None, b: Directive | None) -> bool:
    """srs_directive_equals: same name, args and children, positions aside."""
    if a is None or b is None:
        return a is b
    if a.name != b.name or a.args != b.args:
        return False
    ka, kb = a.children or [], b.children or []
    return len(ka) == len(kb) and all(_same(x, y) for x, y in zip(ka, kb, strict=True))


# ---------------------------------------------------------------------------
# check: SrsConfig::check_normal_config + check_number_connections + is_full
# ---------------------------------------------------------------------------


def check(config: Config) -> list[ConfigProblem]:
    """Everything SRS 6's `srs -t` rejects in this config, in the order SRS checks.

    SRS stops at the first problem; this reports all of them.
    """
    root = config.transformed()
    problems: list[ConfigProblem] = []

    def at(d: Directive | None, message: str) -> None:
        if d is None:
            problems.append(ConfigProblem(config.path, 1, 1, message))
        else:
            problems.append(ConfigProblem(d.file, d.line, d.col, message))

    if not root:
        at(None, "conf is empty")
        return problems
    _check_server_names(root, at)
    _check_server_values(root, at)
    _check_vhost_names(root, at)
    _check_vhost_values(root, at)
    _check_process(root, config.path, at)
    return problems


_Report = Callable[[Directive | None, str], None]


def _illegal(level: str, d: Directive, message: str) -> str:
    others = [v for v in known.versions_accepting(level, d.name) if v != known.CHECKED_VERSION]
    if others:
        message += " (accepted by SRS " + ", ".join(str(v) for v in others) + ")"
    return message


def _check_tree(level: str, kids: Iterable[Directive], report: _Report, suffix: str = "") -> None:
    """Check `kids` against `level`, then the children SRS checks below each legal one."""
    allowed = known.CHECKED[level]
    # SRS names http_server "http_stream" in this one message.
    label = "http_stream." if level == "http_server" else level + "."
    for d in kids:
        if d.name not in allowed:
            where = suffix if level != "vhost" else ""
            report(d, _illegal(level, d, f"illegal {label}{d.name}{where}"))
            continue
        below = f"{level}.{d.name}"
        if below in known.CHECKED:
            _check_tree(below, d.children or [], report, suffix)


def _check_server_names(root: list[Directive], report: _Report) -> None:
    for d in root:
        if d.name not in known.CHECKED[""]:
            report(d, _illegal("", d, f"illegal directive {d.name}"))
    # Of these blocks SRS checks the first only.
    for name in ("http_api", "http_server", "srt_server", "heartbeat", "stats", "rtc_server",
                 "exporter"):
        block = _walk(root, [name])
        if block is not None:
            _check_tree(name, block.children or [], report)


def _check_vhost_names(root: list[Directive], report: _Report) -> None:
    for caster in (d for d in root if d.name == "stream_caster"):
        _check_tree("stream_caster", caster.children or [], report)
    for vhost in (d for d in root if d.name == "vhost"):
        _check_tree("vhost", vhost.children or [], report, f" of {vhost.arg0}")


def _check_server_values(root: list[Directive], report: _Report) -> None:
    listen = _walk(root, ["listen"])
    if listen is None or not listen.args:
        report(listen, "listen requires params")
    else:
        for endpoint in listen.args:
            ip, port = _parse_endpoint(endpoint)
            if ip is not None and not _ip_valid(ip):
                report(listen, f"listen.ip={ip} is invalid")
            elif port <= 0:
                report(listen, f"listen.port={port} is invalid")

    interval = _walk(root, ["heartbeat", "interval"])
    if interval is not None and interval.arg0 and _atoi(interval.arg0) <= 0:
        report(interval, f"invalid heartbeat.interval={_atoi(interval.arg0) * 1_000_000}")
    network = _walk(root, ["stats", "network"])
    if network is not None and network.arg0 and _atoi(network.arg0) < 0:
        report(network, f"invalid stats.network={_atoi(network.arg0)}")

    _check_https(root, report)


_CHUNK_SIZE_RANGE = (128, 65536)


def _check_chunk_sizes(root: list[Directive], report: _Report) -> None:
    """SRS only warns about a chunk_size out of range, but 6.0.155 prints the global
    chunk size with %s, which crashes it (SIGSEGV) in `srs -t`, at start and on reload,
    unless that number is 0 (printed as "(null)"). Flag exactly the crashing cases."""
    low, high = _CHUNK_SIZE_RANGE
    suffix = f" should be in [{low}, {high}]; SRS 6 crashes on this"
    chunk = _walk(root, ["chunk_size"])
    size = _atoi(chunk.arg0) if chunk is not None and chunk.arg0 else 60000
    if size == 0:
        return
    if chunk is not None and not low <= size <= high:
        report(chunk, f"chunk_size={size}{suffix}")
    for vhost in (d for d in root if d.name == "vhost"):
        own = vhost.get("chunk_size")
        if own is not None and own.arg0 and not low <= _atoi(own.arg0) <= high:
            report(own, f"chunk_size={_atoi(own.arg0)} of {vhost.arg0}{suffix}")


def _check_process(root: list[Directive], path: str, report: _Report) -> None:
    _check_chunk_sizes(root, report)
    asprocess = _walk(root, ["asprocess"])
    if _on(root, "asprocess") and _daemon(root):
        report(asprocess, "daemon conflicts with asprocess")
    max_connections = _walk(root, ["max_connections"])
    if max_connections is not None and max_connections.arg0:
        count = _atoi(max_connections.arg0)
        if count <= 0:
            report(max_connections, f"max_connections={count} is invalid")
    if _on(root, "is_full"):
        report(_walk(root, ["is_full"]), f"never use full.conf({path})")


def _check_https(root: list[Directive], report: _Report) -> None:
    api = _text(root, ["http_api", "listen"], "1985")
    server = _text(root, ["http_server", "listen"], "8080")
    https_server = _walk(root, ["http_server", "https", "listen"])
    servers = "8088" if https_server is None else https_server.arg0
    https_api = _walk(root, ["http_api", "https", "listen"])
    apis = https_api.arg0 if https_api is not None else (servers if api == server else "1990")
    where = _walk(root, ["http_api"])
    if api == server and apis != servers:
        report(where, f"for same http, https api({apis}) != server({servers})")
    if apis == servers and api != server:
        report(where, f"for same https, http api({api}) != server({server})")
    if _on(root, "http_api", "https", "enabled") and not _on(root, "http_api", "enabled"):
        report(where, "https api depends on http")
    if _on(root, "http_server", "https", "enabled") and not _on(root, "http_server", "enabled"):
        report(_walk(root, ["http_server"]), "https stream depends on http")


def _check_vhost_values(root: list[Directive], report: _Report) -> None:
    vhosts = [d for d in root if d.name == "vhost"]
    for vhost in vhosts:
        hls_enabled = http_remux_ts = False
        remuxes = vhost.all("http_remux")
        for remux in remuxes:
            enabled = False
            for child in remux.children or []:
                if child.name == "enabled" and child.arg0 == "on":
                    enabled = True
                if enabled and child.name == "mount" and child.arg0.endswith(".ts"):
                    http_remux_ts = True
        for hls in vhost.all("hls"):
            if any(c.name == "enabled" and c.arg0 == "on" for c in hls.children or []):
                hls_enabled = True
        if len(remuxes) > 1:
            report(
                remuxes[1],
                f"vhost.http_remux only one but count={len(remuxes)} of {vhost.arg0}",
            )
        if hls_enabled and http_remux_ts:
            report(vhost, f"vhost.hls conflict with vhost.http-ts of {vhost.arg0}")
    for vhost in vhosts:
        kids = vhost.children or []
        kickoff = _arg0(kids, "publish", "kickoff_for_idle")
        if _on(kids, "forward", "enabled") and kickoff and int(_atof(kickoff) * 1_000_000):
            report(vhost, "vhost.forward conflicts with vhost.publish.kickoff_for_idle")
    for vhost in vhosts:
        seen: set[str] = set()
        for ingest in vhost.all("ingest"):
            if ingest.arg0 in seen:
                report(ingest, f"ingest id={ingest.arg0} exists for {vhost.arg0}")
            seen.add(ingest.arg0)


def validate_file(path: str, *, cwd: str | None = None, beside: bool = True
                  ) -> list[ConfigProblem]:
    """load + check; a syntax error is the one problem. A missing file raises ConfigError."""
    try:
        config = load(path, cwd=cwd, beside=beside)
    except ConfigSyntaxError as exc:
        return [exc.problem]
    return check(config)


# ---------------------------------------------------------------------------
# Reload: what a reload cannot apply (SrsConfig::reload_conf and what SRS reads once)
# ---------------------------------------------------------------------------

# Root directives SRS reads only at start: `daemon` (main), `pid` (pid file lock),
# `work_dir` (main), log tank/levels (SrsFileLog::initialize), inotify switches
# (SrsInotifyWorker::start), `threads`/`circuit_breaker` (thread pool set-up).
_READ_ONCE = (
    "pid",
    "work_dir",
    "srs_log_tank",
    "srs_log_level",
    "srs_log_level_v2",
    "inotify_auto_reload",
    "auto_reload_for_docker",
    "threads",
    "circuit_breaker",
)


def _servers(root: list[Directive]) -> dict[str, tuple[bool, str]]:
    """Listeners SrsServer::listen() opens once at start: name -> (enabled, endpoint)."""
    rtc_tcp = _walk(root, ["rtc_server", "tcp"])
    tcp_kids = [] if rtc_tcp is None else rtc_tcp.children or []
    return {
        "http_api": (_on(root, "http_api", "enabled"), _text(root, ["http_api", "listen"], "1985")),
        "http_api.https": (
            _on(root, "http_api", "https", "enabled"),
            _text(root, ["http_api", "https", "listen"], "1990"),
        ),
        "http_server": (
            _on(root, "http_server", "enabled"),
            _text(root, ["http_server", "listen"], "8080"),
        ),
        "http_server.https": (
            _on(root, "http_server", "https", "enabled"),
            _text(root, ["http_server", "https", "listen"], "8088"),
        ),
        "exporter": (_on(root, "exporter", "enabled"), _text(root, ["exporter", "listen"], "9972")),
        "rtc_server": (
            _on(root, "rtc_server", "enabled"),
            str(_atoi(_text(root, ["rtc_server", "listen"], "8000"))),
        ),
        "rtc_server.tcp": (
            _on(tcp_kids, "enabled"),
            str(_atoi(_text(tcp_kids, ["listen"], "8000"))),
        ),
        "srt_server": (
            _on(root, "srt_server", "enabled"),
            str(_atoi(_text(root, ["srt_server", "listen"], "10080"))),
        ),
    }


def unreloadable_changes(old: Config, new: Config) -> list[str]:
    """Changes from `old` to `new` that a reload does not apply (or that crash SRS 6).

    - "listen": a changed root listen makes SRS 6.0.155 re-listen and abort (exit 134).
    - "vhost NAME cluster.mode": an origin/edge switch fails the reload at its apply
      step ("reload fatal error state=30 ... vhost mode changed") and SRS exits.
    - "daemon", "pid", ... and "http_api.listen", "exporter.enabled", ...: read once
      at start, so the change waits for a restart; "stream_caster" likewise.
    """
    a, b = old.transformed(), new.transformed()
    changes: list[str] = []
    if not _same(_walk(a, ["listen"]), _walk(b, ["listen"])):
        changes.append("listen")
    if _daemon(a) != _daemon(b):
        changes.append("daemon")
    for name in _READ_ONCE:
        if not _same(_walk(a, [name]), _walk(b, [name])):
            changes.append(name)
    old_servers, new_servers = _servers(a), _servers(b)
    for name, (was_on, was_at) in old_servers.items():
        is_on, is_at = new_servers[name]
        if was_on != is_on:
            changes.append(f"{name}.enabled")
        elif is_on and was_at != is_at:
            changes.append(f"{name}.listen")
    old_casters = [d for d in a if d.name == "stream_caster"]
    new_casters = [d for d in b if d.name == "stream_caster"]
    if len(old_casters) != len(new_casters) or not all(
        _same(x, y) for x, y in zip(old_casters, new_casters, strict=True)
    ):
        changes.append("stream_caster")
    names = [v.arg0 for v in b if v.name == "vhost"]
    names += [v.arg0 for v in a if v.name == "vhost" and v.arg0 not in names]
    for name in dict.fromkeys(names):
        was = next((v for v in a if v.name == "vhost" and v.arg0 == name), None)
        now = next((v for v in b if v.name == "vhost" and v.arg0 == name), None)
        if _vhost_enabled(was) != _vhost_enabled(now):
            continue  # added or removed: SRS reloads that
        if _vhost_is_edge(was) != _vhost_is_edge(now):
            changes.append(f"vhost {name} cluster.mode")
    return changes


def client_ports(config: Config) -> list[int]:
    """Ports clients connect to: RTMP `listen`, and the HTTP server (and its HTTPS) if on."""
    root = config.transformed()
    listen = _walk(root, ["listen"])
    endpoints = [] if listen is None else list(listen.args)
    servers = _servers(root)
    for name in ("http_server", "http_server.https"):
        enabled, endpoint = servers[name]
        if enabled:
            endpoints.append(endpoint)
    ports: list[int] = []
    for endpoint in endpoints:
        _, port = _parse_endpoint(endpoint)
        if 0 < port <= 65535 and port not in ports:
            ports.append(port)
    return ports


# ---------------------------------------------------------------------------
# Editor: change one directive, keep every other byte
# ---------------------------------------------------------------------------

_NEEDS_QUOTES = re.compile(r"[ \t;{]")


def _is_plain(word: str) -> bool:
    return bool(word) and not _NEEDS_QUOTES.search(word) and word[0] not in "}#\"'"


def _quote(word: str) -> str:
    if not word or "\n" in word or "\r" in word:
        raise ConfigError(f"cannot write {word!r} into srs.conf: empty or multi-line")
    if _is_plain(word):
        return word
    for quote in ('"', "'"):
        if quote not in word:
            return quote + word + quote
    raise ConfigError(f"cannot write {word!r} into srs.conf: it holds both kinds of quote")


def _line_bounds(text: str, offset: int) -> tuple[int, int]:
    """(start of the line holding `offset`, offset of its line break or end of text)."""
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    ends = [i for i in (text.find("\n", offset), text.find("\r", offset)) if i >= 0]
    return start, min(ends) if ends else len(text)


def _indent_of(text: str, d: Directive) -> str | None:
    """The whitespace before `d` if `d` starts its line, else None."""
    start, _ = _line_bounds(text, d.start)
    lead = text[start : d.start]
    return lead if lead.strip(" \t") == "" else None


def _indent_unit(text: str, nodes: Sequence[Directive]) -> str:
    """How far this file indents a block's children (four spaces if it never shows)."""
    for parent in nodes:
        outer = _indent_of(text, parent)
        for child in parent.children or []:
            inner = _indent_of(text, child)
            if (
                outer is not None
                and inner is not None
                and len(inner) > len(outer)
                and inner.startswith(outer)
            ):
                return inner[len(outer) :]
        found = _indent_unit(text, parent.children or [])
        if found:
            return found
    return ""


def set_directive(
    text: str, path: Sequence[str], args: Sequence[str], *, vhost: str | None = None
) -> str:
    """Set the directive at `path` to `args` in one file's text; all else stays as it was.

    `path` names blocks down to the directive, e.g. ("vhost", "cluster", "origin");
    `vhost` picks the vhost by name (default: the first); like SRS, the first block or
    directive of a name is the one that counts. An existing directive keeps
    its place, spacing and comments; only its arguments change. A missing one is added
    after its last sibling, indented like it. Raises ConfigError if a block on the
    path does not exist, the target is a block, or a value cannot be written.
    """
    if not path:
        raise ConfigError("set_directive: empty path")
    if vhost is not None and path[0] != "vhost":
        raise ConfigError(f"set_directive: vhost={vhost!r} given but path starts with {path[0]!r}")
    where = "<text>"
    root = _parse_text(text, where, None)
    container: list[Directive] = root
    parent: Directive | None = None
    for depth, name in enumerate(path[:-1]):
        if depth == 0 and name == "vhost" and vhost is not None:
            found = next((d for d in container if d.name == "vhost" and d.arg0 == vhost), None)
            label = f"vhost {vhost}"
        else:
            found = next((d for d in container if d.name == name), None)
            label = ".".join(path[: depth + 1])
        if found is None:
            raise ConfigError(f"no block {label} in the config")
        if found.children is None:
            raise ConfigError(f"{label} is not a block")
        container, parent = found.children, found
    leaf = path[-1]
    if not _is_plain(leaf):
        raise ConfigError(f"set_directive: {leaf!r} is not a directive name")
    words = " ".join(_quote(a) for a in args)
    existing = next((d for d in container if d.name == leaf), None)
    if existing is not None:
        if existing.children is not None:
            raise ConfigError(f"{'.'.join(path)} is a block, not a directive with values")
        if existing.args == list(args):
            return text
        if existing.arg_spans:
            first, last = existing.arg_spans[0][0], existing.arg_spans[-1][1]
            if words:
                result = text[:first] + words + text[last:]
            else:
                result = text[: existing.name_end] + text[last:]
        else:
            added = " " + words if words else ""
            result = text[: existing.name_end] + added + text[existing.name_end :]
    else:
        result = _insert(text, root, container, parent, name=leaf, words=words)
    _verify(result, path, list(args), vhost)
    return result


def _insert(
    text: str,
    root: list[Directive],
    siblings: list[Directive],
    parent: Directive | None,
    *,
    name: str,
    words: str,
) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    statement = name + (" " + words if words else "") + ";"
    if siblings:
        last = siblings[-1]
        model = next((d for d in reversed(siblings) if _indent_of(text, d) is not None), None)
        _, line_end = _line_bounds(text, last.end)
        rest = text[last.end : line_end].strip(" \t")
        if model is not None and (not rest or rest.startswith("#")):
            indent = _indent_of(text, model) or ""
            if words:
                statement = _aligned(text, siblings, name, words)
            return text[:line_end] + newline + indent + statement + text[line_end:]
        return text[: last.end] + " " + statement + text[last.end :]
    if parent is None:
        lead = "" if not text or text.endswith(("\n", "\r")) else newline
        return text + lead + statement + newline
    ob, cb = parent.open_brace, parent.close_brace
    if "\n" not in text[ob:cb] and "\r" not in text[ob:cb]:
        return text[: ob + 1] + " " + statement + " " + text[cb:]
    outer = _indent_of(text, parent) or ""
    unit = _indent_unit(text, root) or "    "
    _, line_end = _line_bounds(text, ob)
    return text[:line_end] + newline + outer + unit + statement + text[line_end:]


def _aligned(text: str, siblings: list[Directive], name: str, words: str) -> str:
    """`name words;`, the value in the column of the nearest sibling value set with spaces."""
    for d in reversed(siblings):
        if d.children is None and d.arg_spans and _indent_of(text, d) is not None:
            gap = text[d.name_end : d.arg_spans[0][0]]
            if gap.strip(" ") == "":
                width = d.arg_spans[0][0] - d.start
                return name.ljust(width - 1) + " " + words + ";"
            break
    return f"{name} {words};"


def _verify(result: str, path: Sequence[str], args: list[str], vhost: str | None) -> None:
    """Re-read the edit: it must parse and say what was asked, or nothing is written."""
    try:
        root = _parse_text(result, "<edited>", None)
    except ConfigSyntaxError as exc:
        raise ConfigError(f"editing {'.'.join(path)} would break the config: {exc}") from None
    nodes: Sequence[Directive] = root
    if vhost is not None:
        nodes = [d for d in root if d.name == "vhost" and d.arg0 == vhost][:1]
        found = _walk(nodes[0].children or [], path[1:]) if nodes else None
    else:
        found = _walk(nodes, path)
    if found is None or found.args != args:
        raise ConfigError(f"editing {'.'.join(path)} did not give {args}")
