"""A small POSIX shell for simulated containers: what `sh -c '...'` in a probe pod does.

It covers what probe and test scripts use: lists (`;`, `&&`, `||`, `&`), pipelines, `!`, groups and
subshells, if/elif/else, for, while/until, case, functions, redirections to files and /dev/null
(`>`, `>>`, `<`, `2>&1`, `&>`), parameter expansion (`$VAR`, `${VAR:-x}`, `${#VAR}`, `${VAR%pat}`, ...),
`$(...)` and backticks, `$((...))`, `$?`, field splitting, globbing against the container's
simulated filesystem, and quoting.

Execution is a generator: every command yields the simulated seconds it sleeps, so a script that runs
`echo a; sleep 5; echo b` prints `b` five simulated seconds after `a`, and an endless loop with a sleep
costs nothing while nobody looks. Commands other than the shell builtins come from the runtime's
command table (`runtime_commands`); what is available depends on the image, and a missing one fails
with the wording of the image's shell (dash: `sh: 1: foo: not found`, busybox ash: `sh: foo: not found`,
bash: `bash: line 1: foo: command not found`), exit 127.
"""
from __future__ import annotations

import fnmatch
import re

WAIT_FOREVER = float("inf")
_OPERATORS = ("&&", "||", ";;", ">>", "<<-", "<<", ">&", "<&", "&>", "|", "&", ";", "<", ">", "(", ")")
_REDIRECTIONS = ("<", ">", ">>", ">&", "<&", "&>", "<<", "<<-")
_RESERVED = {"if", "then", "elif", "else", "fi", "for", "in", "do", "done", "while", "until", "case", "esac",
             "{", "}", "!"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
_BUSY_LIMIT = 200000


class ShellSyntaxError(Exception):
    """A script the shell cannot parse; reported like dash reports it (exit 2)."""

    def __init__(self, line, message):
        super().__init__(message)
        self.line = line
        self.message = message


class ShellExit(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


class _LoopControl(Exception):
    def __init__(self, kind, levels):
        super().__init__(kind)
        self.kind = kind
        self.levels = levels


class _Return(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


# ===================================================================================== lexer
class Token(object):
    __slots__ = ("kind", "text", "line", "io_number", "heredoc")

    def __init__(self, kind, text, line, io_number=None):
        self.kind = kind          # "word", "op", "newline", "eof"
        self.text = text
        self.line = line
        self.io_number = io_number
        self.heredoc = None       # for "<<": (body, expand)

    def __repr__(self):
        return "Token(%s, %r)" % (self.kind, self.text)


def _scan_balanced(src, i, opener, closer):
    """Index just past the `closer` matching the `opener` before src[i], skipping quotes."""
    depth = 1
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'" and opener != "{":
            j = src.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if ch == '"':
            i = _scan_double(src, i + 1)
            continue
        if ch == "`":
            j = src.find("`", i + 1)
            i = n if j < 0 else j + 1
            continue
        if src.startswith("$(", i) or src.startswith("${", i):
            inner_open, inner_close = ("(", ")") if src[i + 1] == "(" else ("{", "}")
            i = _scan_balanced(src, i + 2, inner_open, inner_close)
            continue
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ShellSyntaxError(None, "Syntax error: end of file unexpected (expecting \"%s\")" % closer)


def _scan_double(src, i):
    """Index just past the closing double quote (i is just after the opening one)."""
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        if src.startswith("$(", i) or src.startswith("${", i):
            inner_open, inner_close = ("(", ")") if src[i + 1] == "(" else ("{", "}")
            i = _scan_balanced(src, i + 2, inner_open, inner_close)
            continue
        if ch == "`":
            j = src.find("`", i + 1)
            i = n if j < 0 else j + 1
            continue
        i += 1
    raise ShellSyntaxError(None, "Syntax error: Unterminated quoted string")


def _read_heredocs(src, i, pending):
    """Fill the bodies of the here-documents opened on the line that ends at src[i-1]."""
    for op_token, delimiter in pending:
        strip_tabs = op_token.text == "<<-"
        expand = not any(q in delimiter for q in "'\"\\")
        delimiter = delimiter.replace("'", "").replace('"', "").replace("\\", "")
        lines = []
        while i < len(src):
            end = src.find("\n", i)
            end = len(src) if end < 0 else end
            text = src[i:end]
            i = end + 1
            if strip_tabs:
                text = text.lstrip("\t")
            if text == delimiter:
                break
            lines.append(text + "\n")
        op_token.heredoc = ("".join(lines), expand)
    del pending[:]
    return i


def tokenize(src):
    tokens = []
    pending = []
    i, n, line = 0, len(src), 1
    while i < n:
        ch = src[i]
        if ch in " \t":
            i += 1
            continue
        if ch == "\\" and i + 1 < n and src[i + 1] == "\n":
            i += 2
            line += 1
            continue
        if ch == "#":
            while i < n and src[i] != "\n":
                i += 1
            continue
        if ch == "\n":
            tokens.append(Token("newline", "\n", line))
            line += 1
            i += 1
            if pending:
                start = i
                i = _read_heredocs(src, i, pending)
                line += src[start:i].count("\n")
            continue
        op = next((o for o in _OPERATORS if src.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, line))
            i += len(op)
            continue
        start = i
        try:
            while i < n:
                ch = src[i]
                if ch in " \t\n" or any(src.startswith(o, i) for o in _OPERATORS):
                    break
                if ch == "\\":
                    i += 2
                elif ch == "'":
                    j = src.find("'", i + 1)
                    if j < 0:
                        raise ShellSyntaxError(line, "Syntax error: Unterminated quoted string")
                    i = j + 1
                elif ch == '"':
                    i = _scan_double(src, i + 1)
                elif ch == "`":
                    j = src.find("`", i + 1)
                    if j < 0:
                        raise ShellSyntaxError(line, "Syntax error: EOF in backquote substitution")
                    i = j + 1
                elif src.startswith("$((", i):
                    i = _scan_balanced(src, i + 3, "(", ")")
                    if i < n and src[i] == ")":
                        i += 1
                elif src.startswith("$(", i):
                    i = _scan_balanced(src, i + 2, "(", ")")
                elif src.startswith("${", i):
                    i = _scan_balanced(src, i + 2, "{", "}")
                else:
                    i += 1
        except ShellSyntaxError as exc:
            raise ShellSyntaxError(line, exc.message)
        text = src[start:i]
        line += text.count("\n")
        if text.isdigit() and i < n and src[i] in "<>":
            op = next(o for o in _OPERATORS if src.startswith(o, i))
            tokens.append(Token("op", op, line, io_number=int(text)))
            i += len(op)
            continue
        if tokens and tokens[-1].kind == "op" and tokens[-1].text in ("<<", "<<-") and tokens[-1].heredoc is None:
            pending.append((tokens[-1], text))
            tokens[-1].heredoc = ("", True)
        tokens.append(Token("word", text, line))
    if pending:
        _read_heredocs(src, n, pending)
    tokens.append(Token("eof", "", line))
    return tokens


# ===================================================================================== parser
class Node(object):
    """AST node: `kind` plus fields."""

    def __init__(self, kind, **fields):
        self.kind = kind
        self.__dict__.update(fields)

    def __repr__(self):
        return "Node(%s)" % self.kind


class Parser(object):
    def __init__(self, src):
        self.tokens = tokenize(src)
        self.pos = 0

    def parse(self):
        self._linebreak()
        node = self._list(stop=())
        tok = self._peek()
        if tok.kind != "eof":
            raise ShellSyntaxError(tok.line, 'Syntax error: "%s" unexpected' % tok.text)
        return node

    # -- token helpers
    def _peek(self):
        return self.tokens[self.pos]

    def _next(self):
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def _is_op(self, text):
        tok = self._peek()
        return tok.kind == "op" and tok.text == text and tok.io_number is None

    def _is_word(self, text):
        tok = self._peek()
        return tok.kind == "word" and tok.text == text

    def _expect_word(self, text):
        tok = self._next()
        if tok.kind != "word" or tok.text != text:
            shown = "end of file" if tok.kind == "eof" else (
                "newline" if tok.kind == "newline" else '"%s"' % tok.text)
            raise ShellSyntaxError(tok.line, 'Syntax error: %s unexpected (expecting "%s")' % (shown, text))

    def _linebreak(self):
        while self._peek().kind == "newline":
            self.pos += 1

    # -- grammar
    def _list(self, stop):
        items = []
        while True:
            self._linebreak()
            tok = self._peek()
            if tok.kind == "eof" or (tok.kind == "word" and tok.text in stop) or \
                    (tok.kind == "op" and tok.text in (")", ";;") and tok.io_number is None):
                break
            node = self._and_or()
            background = False
            if self._is_op("&"):
                self._next()
                background = True
            elif self._is_op(";"):
                self._next()
            elif self._peek().kind == "newline":
                self._next()
            items.append((node, background))
        return Node("list", items=items)

    def _and_or(self):
        first = self._pipeline()
        rest = []
        while self._is_op("&&") or self._is_op("||"):
            op = self._next().text
            self._linebreak()
            rest.append((op, self._pipeline()))
        return Node("andor", first=first, rest=rest)

    def _pipeline(self):
        negate = False
        if self._is_word("!"):
            self._next()
            negate = True
        commands = [self._command()]
        while self._is_op("|"):
            self._next()
            self._linebreak()
            commands.append(self._command())
        return Node("pipe", negate=negate, commands=commands)

    def _command(self):
        tok = self._peek()
        if tok.kind == "op" and tok.text == "(" and tok.io_number is None:
            self._next()
            body = self._list(stop=())
            if not self._is_op(")"):
                raise ShellSyntaxError(self._peek().line, 'Syntax error: end of file unexpected (expecting ")")')
            self._next()
            return Node("subshell", body=body, redirs=self._redirects())
        if tok.kind == "word":
            handler = {"{": self._group, "if": self._if, "for": self._for, "while": self._while,
                       "until": self._while, "case": self._case}.get(tok.text)
            if handler is not None:
                node = handler()
                node.redirs = self._redirects()
                return node
            if tok.text in ("then", "elif", "else", "fi", "do", "done", "esac", "}", "in"):
                raise ShellSyntaxError(tok.line, 'Syntax error: "%s" unexpected' % tok.text)
            nxt = self.tokens[self.pos + 1]
            if _NAME.match(tok.text) and nxt.kind == "op" and nxt.text == "(":
                after = self.tokens[self.pos + 2]
                if after.kind == "op" and after.text == ")":
                    self.pos += 3
                    self._linebreak()
                    body = self._command()
                    return Node("func", name=tok.text, body=body)
        return self._simple()

    def _group(self):
        self._next()
        body = self._list(stop=("}",))
        self._expect_word("}")
        return Node("group", body=body)

    def _if(self):
        self._next()
        branches = []
        cond = self._list(stop=("then",))
        self._expect_word("then")
        branches.append((cond, self._list(stop=("elif", "else", "fi"))))
        otherwise = None
        while True:
            tok = self._next()
            if tok.kind == "word" and tok.text == "elif":
                cond = self._list(stop=("then",))
                self._expect_word("then")
                branches.append((cond, self._list(stop=("elif", "else", "fi"))))
            elif tok.kind == "word" and tok.text == "else":
                otherwise = self._list(stop=("fi",))
                self._expect_word("fi")
                break
            elif tok.kind == "word" and tok.text == "fi":
                break
            else:
                raise ShellSyntaxError(tok.line, 'Syntax error: end of file unexpected (expecting "fi")')
        return Node("if", branches=branches, otherwise=otherwise)

    def _for(self):
        self._next()
        name_tok = self._next()
        if name_tok.kind != "word" or not _NAME.match(name_tok.text):
            raise ShellSyntaxError(name_tok.line, "Syntax error: Bad for loop variable")
        words = None
        self._linebreak()
        if self._is_word("in"):
            self._next()
            words = []
            while self._peek().kind == "word":
                words.append(self._next().text)
        if self._is_op(";"):
            self._next()
        self._linebreak()
        self._expect_word("do")
        body = self._list(stop=("done",))
        self._expect_word("done")
        return Node("for", name=name_tok.text, words=words, body=body)

    def _while(self):
        until = self._next().text == "until"
        cond = self._list(stop=("do",))
        self._expect_word("do")
        body = self._list(stop=("done",))
        self._expect_word("done")
        return Node("while", cond=cond, body=body, until=until)

    def _case(self):
        self._next()
        word = self._next().text
        self._linebreak()
        self._expect_word("in")
        arms = []
        while True:
            self._linebreak()
            if self._is_word("esac"):
                self._next()
                break
            if self._is_op("("):
                self._next()
            patterns = [self._next().text]
            while self._is_op("|"):
                self._next()
                patterns.append(self._next().text)
            if not self._is_op(")"):
                raise ShellSyntaxError(self._peek().line, 'Syntax error: "%s" unexpected (expecting ")")'
                                       % self._peek().text)
            self._next()
            body = self._list(stop=("esac",))
            arms.append((patterns, body))
            if self._is_op(";;"):
                self._next()
        return Node("case", word=word, arms=arms)

    def _redirects(self):
        redirs = []
        while self._peek().kind == "op" and self._peek().text in _REDIRECTIONS:
            op = self._next()
            target = self._next()
            if target.kind != "word":
                raise ShellSyntaxError(op.line, "Syntax error: redirection unexpected")
            fd = op.io_number if op.io_number is not None else (0 if op.text in ("<", "<&", "<<", "<<-") else 1)
            if op.text in ("<<", "<<-"):
                redirs.append((fd, "<<", op.heredoc))
            else:
                redirs.append((fd, op.text, target.text))
        return redirs

    def _simple(self):
        assigns, words, redirs = [], [], []
        line = self._peek().line
        while True:
            tok = self._peek()
            if tok.kind == "op" and tok.text in _REDIRECTIONS:
                redirs.extend(self._redirects())
                continue
            if tok.kind != "word":
                break
            if not words and _ASSIGN.match(tok.text):
                name, _eq, value = tok.text.partition("=")
                assigns.append((name, value))
            else:
                words.append(tok.text)
            self._next()
        if not assigns and not words and not redirs:
            tok = self._peek()
            shown = "end of file" if tok.kind == "eof" else (
                "newline" if tok.kind == "newline" else '"%s"' % tok.text)
            raise ShellSyntaxError(tok.line, "Syntax error: %s unexpected" % shown)
        return Node("simple", assigns=assigns, words=words, redirs=redirs, line=line)


def parse(src):
    return Parser(src).parse()


# ===================================================================================== I/O
class Output(object):
    """A stream a command writes to; `sink(text)` receives every write."""

    def __init__(self, sink):
        self.sink = sink

    def write(self, text):
        if text:
            self.sink(text)


class Capture(Output):
    def __init__(self):
        self.parts = []
        super().__init__(self.parts.append)

    def text(self):
        return "".join(self.parts)


class IO(object):
    __slots__ = ("stdin", "stdout", "stderr")

    def __init__(self, stdin, stdout, stderr):
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr


# ===================================================================================== expansion
class _Field(object):
    """A word being expanded: characters with a flag "may glob / split" (unquoted)."""

    def __init__(self):
        self.chars = []        # list of (text, active)
        self.has_quoted = False

    def add(self, text, active):
        if text:
            self.chars.append((text, active))

    def text(self):
        return "".join(t for t, _active in self.chars)

    def glob_pattern(self):
        """The word as an fnmatch pattern (quoted glob characters escaped), or None if no glob."""
        if not any(active and any(c in t for c in "*?[") for t, active in self.chars):
            return None
        out = []
        for text, active in self.chars:
            out.append(text if active else "".join("[%s]" % c if c in "*?[" else c for c in text))
        return "".join(out)

    def empty(self):
        return not self.chars and not self.has_quoted


def shell_quote(text):
    if text and re.match(r"^[A-Za-z0-9_./=:,+-]+$", text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


# ===================================================================================== interpreter
class Shell(object):
    """One shell process. `run_script(src)` is a generator (yields sleeps) returning the exit status.

    `host` provides the environment of the container:
      host.fs                      the simulated filesystem (see runtime.SimFS)
      host.find_command(name)      -> callable(ctx, argv) or None (None: not found in this image)
      host.unknown_ok              True when the image is not one we model: unknown commands succeed
      host.now()                   simulated time
    """

    def __init__(self, host, flavor="dash", argv0="sh", args=(), env=None, cwd="/", io=None):
        self.host = host
        self.flavor = flavor
        self.argv0 = argv0
        self.args = list(args)
        self.vars = dict(env or {})
        self.exported = set(self.vars)
        self.functions = {}
        self.cwd = cwd
        self.status = 0
        self.io = io
        self.options = set()
        self.line = 1
        self.busy = 0
        self.pid = 1
        self.last_bg = None
        self.jobs = []
        self._splitting = True

    # ------------------------------------------------------------------------- entry points
    def run_script(self, src):
        try:
            tree = parse(src)
        except ShellSyntaxError as exc:
            self.io.stderr.write(self._prefix(exc.line or 1) + exc.message + "\n")
            return 2
        try:
            status = yield from self._run(tree, self.io)
        except ShellExit as done:
            status = done.code
        except _Return as ret:
            status = ret.code
        except _LoopControl:
            status = self.status
        return status

    def environ(self):
        return {k: v for k, v in self.vars.items() if k in self.exported}

    # ------------------------------------------------------------------------- messages
    def _prefix(self, line=None):
        line = self.line if line is None else line
        if self.flavor == "bash":
            return "%s: line %d: " % (self.argv0, line)
        if self.flavor == "ash":
            return "%s: " % self.argv0
        return "%s: %d: " % (self.argv0, line)

    def not_found(self, name, io):
        if self.flavor == "bash":
            io.stderr.write("%s%s: command not found\n" % (self._prefix(), name))
        else:
            io.stderr.write("%s%s: not found\n" % (self._prefix(), name))
        return 127

    def error(self, io, message):
        io.stderr.write(self._prefix() + message + "\n")

    # ------------------------------------------------------------------------- node execution
    def _run(self, node, io):
        method = getattr(self, "_run_" + node.kind)
        if getattr(node, "redirs", None) and node.kind != "simple":
            io = yield from self._redirect(node.redirs, io)
            if io is None:
                return 1
        status = yield from method(node, io)
        self.status = status
        return status

    def _run_list(self, node, io):
        status = 0
        for item, background in node.items:
            if background:
                job = self.host.spawn(self._background(item, IO("", io.stdout, io.stderr)))
                self.jobs.append(job)
                self.last_bg = job.pid
                status = 0
            else:
                status = yield from self._run(item, io)
            self.status = status
        return status

    def _background(self, node, io):
        """A `cmd &` job: a copy of this shell running concurrently in the same container."""
        sub = Shell(self.host, self.flavor, self.argv0, self.args, None, self.cwd, io)
        sub.vars = dict(self.vars)
        sub.exported = set(self.exported)
        sub.functions = dict(self.functions)
        try:
            return (yield from sub._run(node, io))  # pylint: disable=protected-access
        except (ShellExit, _Return) as done:
            return done.code
        except _LoopControl:
            return sub.status

    def _run_andor(self, node, io):
        status = yield from self._run(node.first, io)
        ran_last = not node.rest
        for index, (op, pipe) in enumerate(node.rest):
            if (op == "&&" and status == 0) or (op == "||" and status != 0):
                status = yield from self._run(pipe, io)
                ran_last = index == len(node.rest) - 1
            else:
                ran_last = False
        last = node.rest[-1][1] if node.rest else node.first
        if status and "e" in self.options and ran_last and not last.negate:
            raise ShellExit(status)
        return status

    def _run_pipe(self, node, io):
        data = io.stdin
        status = 0
        failed = 0
        for index, cmd in enumerate(node.commands):
            last = index == len(node.commands) - 1
            out = io.stdout if last else Capture()
            status = yield from self._run(cmd, IO(data, out, io.stderr) if len(node.commands) > 1 else io)
            failed = status or failed
            if not last:
                data = out.text()
        if "P" in self.options and failed and not status:
            status = failed
        if node.negate:
            return 0 if status else 1
        return status

    def _run_group(self, node, io):
        return (yield from self._run(node.body, io))

    def _run_subshell(self, node, io):
        saved = (dict(self.vars), set(self.exported), self.cwd, dict(self.functions), set(self.options))
        try:
            status = yield from self._run(node.body, io)
        except ShellExit as done:
            status = done.code
        finally:
            self.vars, self.exported, self.cwd, self.functions, self.options = saved
        return status

    def _condition(self, node, io):
        saved = set(self.options)
        self.options.discard("e")
        try:
            return (yield from self._run(node, io))
        finally:
            self.options = saved

    def _run_if(self, node, io):
        for cond, body in node.branches:
            status = yield from self._condition(cond, io)
            if status == 0:
                return (yield from self._run(body, io))
        if node.otherwise is not None:
            return (yield from self._run(node.otherwise, io))
        return 0

    def _run_for(self, node, io):
        if node.words is None:
            items = list(self.args)
        else:
            items = []
            for word in node.words:
                items.extend((yield from self.expand(word, io)))
        status = 0
        for item in items:
            self.vars[node.name] = item
            try:
                status = yield from self._run(node.body, io)
            except _LoopControl as ctl:
                if ctl.levels > 1:
                    ctl.levels -= 1
                    raise
                if ctl.kind == "break":
                    break
            yield from self._tick()
        return status

    def _run_while(self, node, io):
        status = 0
        while True:
            cond = yield from self._condition(node.cond, io)
            if (cond == 0) == node.until:
                break
            try:
                status = yield from self._run(node.body, io)
            except _LoopControl as ctl:
                if ctl.levels > 1:
                    ctl.levels -= 1
                    raise
                if ctl.kind == "break":
                    break
            yield from self._tick()
        return status

    def _run_case(self, node, io):
        value = "".join((yield from self.expand(node.word, io, split=False)))
        for patterns, body in node.arms:
            for pattern in patterns:
                pat = "".join((yield from self.expand(pattern, io, split=False, pattern=True)))
                if fnmatch.fnmatchcase(value, pat):
                    return (yield from self._run(body, io))
        return 0

    def _run_func(self, node, io):
        self.functions[node.name] = node.body
        return 0
        yield  # pylint: disable=unreachable

    def _tick(self):
        """Count work done without simulated time passing; a loop that never sleeps spins forever."""
        self.busy += 1
        if self.busy > _BUSY_LIMIT:
            yield WAIT_FOREVER

    # ------------------------------------------------------------------------- simple commands
    def _run_simple(self, node, io):
        self.line = node.line
        yield from self._tick()
        argv = []
        for word in node.words:
            argv.extend((yield from self.expand(word, io)))
        values = []
        for name, raw in node.assigns:
            values.append((name, "".join((yield from self.expand(raw, io, split=False, glob=False)))))
        if "x" in self.options and (argv or values):
            shown = ["%s=%s" % (n, shell_quote(v)) for n, v in values] + [shell_quote(a) for a in argv]
            io.stderr.write("+ " + " ".join(shown) + "\n")
        redirected = yield from self._redirect(node.redirs, io)
        if redirected is None:
            return 1
        io = redirected
        if not argv:
            for name, value in values:
                self.vars[name] = value
            return self.status if node.words else 0
        if values:
            saved = {n: self.vars.get(n) for n, _value in values}
            saved_exported = set(self.exported)
            for name, value in values:
                self.vars[name] = value
                self.exported.add(name)
            try:
                return (yield from self.execute(argv, io))
            finally:
                for name, value in saved.items():
                    if value is None:
                        self.vars.pop(name, None)
                    else:
                        self.vars[name] = value
                self.exported = saved_exported
        return (yield from self.execute(argv, io))

    def execute(self, argv, io):
        """Run a command by name: function, builtin, or the image's command table."""
        name = argv[0]
        if name in self.functions:
            saved = self.args
            self.args = argv[1:]
            try:
                return (yield from self._run(self.functions[name], io))
            except _Return as ret:
                return ret.code
            finally:
                self.args = saved
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            return (yield from builtin(self, argv, io))
        if "/" in name and not self.host.fs.exists(self.resolve(name)) and self.host.find_command(name) is None:
            if not self.host.unknown_ok:
                self.error(io, "%s: not found" % name if self.flavor != "bash" else
                           "%s: No such file or directory" % name)
                return 127
        command = self.host.find_command(name)
        if command is None:
            if self.host.unknown_ok:
                return 0
            return self.not_found(name, io)
        ctx = CommandContext(self, io)
        result = command(ctx, argv)
        if hasattr(result, "send"):
            result = yield from result
        return int(result or 0)

    def resolve(self, path):
        if path.startswith("/"):
            return path
        return (self.cwd.rstrip("/") + "/" + path) if self.cwd != "/" else "/" + path

    # ------------------------------------------------------------------------- redirections
    def _redirect(self, redirs, io):
        stdin, stdout, stderr = io.stdin, io.stdout, io.stderr
        for fd, op, raw in redirs:
            if op == "<<":
                body, expand = raw
                if expand:
                    field = [_Field()]
                    yield from self._expand_into(body, field, io, quoted=True, pattern=False)
                    body = field[0].text()
                stdin = body
                continue
            target = "".join((yield from self.expand(raw, io, split=False)))
            if op in (">&", "<&"):
                if target == "1":
                    stream = stdout
                elif target == "2":
                    stream = stderr
                elif target == "-":
                    stream = Output(lambda text: None)
                else:
                    self.error(io, "%s: Bad file descriptor" % target)
                    return None
                if fd == 2:
                    stderr = stream
                elif fd == 1:
                    stdout = stream
                continue
            path = self.resolve(target)
            if op == "<":
                content = self.host.fs.read(path)
                if content is None:
                    self.error(io, "cannot open %s: No such file" % target)
                    return None
                stdin = content
                continue
            stream = self._file_output(path, append=op == ">>", io=io)
            if stream is None:
                return None
            if op == "&>":
                stdout = stderr = stream
            elif fd == 2:
                stderr = stream
            else:
                stdout = stream
        return IO(stdin, stdout, stderr)

    def _file_output(self, path, append, io):
        fs = self.host.fs
        if path == "/dev/null":
            return Output(lambda text: None)
        if path in ("/dev/stdout", "/proc/self/fd/1"):
            return io.stdout
        if path in ("/dev/stderr", "/proc/self/fd/2"):
            return io.stderr
        error = fs.writable(path)
        if error:
            self.error(io, "cannot create %s: %s" % (path, error))
            return None
        if not append:
            fs.write(path, "")
        return Output(lambda text: fs.write(path, text, append=True))

    # ------------------------------------------------------------------------- expansion
    def expand(self, word, io, split=True, glob=True, pattern=False):
        """Expand one word into fields (generator: command substitutions may sleep)."""
        fields = [_Field()]
        saved, self._splitting = self._splitting, split
        try:
            yield from self._expand_into(word, fields, io, quoted=False, pattern=pattern)
        finally:
            self._splitting = saved
        out = []
        for field in fields:
            if field.empty():
                continue
            if not split:
                out.append(field.text())
                continue
            pat = field.glob_pattern() if glob and "f" not in self.options else None
            if pat is not None:
                matches = self.host.fs.glob(pat, self.cwd)
                if matches:
                    out.extend(matches)
                    continue
            out.append(field.text())
        if not split:
            return ["".join(out)] if out else [""]
        return out

    def _expand_into(self, word, fields, io, quoted, pattern):
        i, n = 0, len(word)
        if not quoted and word.startswith("~") and (len(word) == 1 or word[1] == "/"):
            fields[-1].add(self.vars.get("HOME", "/root"), False)
            i = 1
        while i < n:
            ch = word[i]
            if ch == "\\":
                if quoted:
                    nxt = word[i + 1] if i + 1 < n else ""
                    if nxt in '$`"\\\n':
                        fields[-1].add(nxt, False)
                    else:
                        fields[-1].add("\\" + nxt, False)
                else:
                    fields[-1].add(word[i + 1:i + 2], False)
                i += 2
                continue
            if ch == "'" and not quoted:
                j = word.index("'", i + 1)
                fields[-1].add(word[i + 1:j], False)
                fields[-1].has_quoted = True
                i = j + 1
                continue
            if ch == '"' and not quoted:
                j = _scan_double(word, i + 1)
                fields[-1].has_quoted = True
                yield from self._expand_into(word[i + 1:j - 1], fields, io, quoted=True, pattern=pattern)
                i = j
                continue
            if ch == "`":
                j = word.index("`", i + 1)
                text = yield from self._command_subst(word[i + 1:j].replace("\\`", "`"), io)
                self._add_expansion(fields, text, quoted)
                i = j + 1
                continue
            if ch == "$" and i + 1 < n:
                i = yield from self._dollar(word, i, fields, io, quoted)
                continue
            fields[-1].add(ch, not quoted)
            i += 1

    def _add_expansion(self, fields, text, quoted):
        if quoted or not self._splitting:
            fields[-1].add(text, not quoted)
            fields[-1].has_quoted = fields[-1].has_quoted or quoted
            return
        ifs = self.vars.get("IFS", " \t\n")
        if not ifs:
            fields[-1].add(text, True)
            return
        parts = re.split("[%s]+" % re.escape(ifs), text)
        if parts and parts[0] == "" and len(parts) > 1 and not fields[-1].chars:
            parts = parts[1:]
        if parts and parts[-1] == "" and len(parts) > 1:
            parts = parts[:-1]
            trailing = True
        else:
            trailing = False
        for index, part in enumerate(parts):
            if index:
                fields.append(_Field())
            fields[-1].add(part, True)
        if trailing:
            fields.append(_Field())

    def _dollar(self, word, i, fields, io, quoted):
        nxt = word[i + 1]
        if word.startswith("$((", i):
            end = _scan_balanced(word, i + 3, "(", ")")
            expr = word[i + 3:end - 1]
            if end < len(word) and word[end] == ")":
                end += 1
            expr = "".join((yield from self.expand(expr, IO("", io.stdout, io.stderr), split=False, glob=False)))
            self._add_expansion(fields, str(arith(expr, self.vars)), quoted)
            return end
        if nxt == "(":
            end = _scan_balanced(word, i + 2, "(", ")")
            text = yield from self._command_subst(word[i + 2:end - 1], io)
            self._add_expansion(fields, text, quoted)
            return end
        if nxt == "{":
            end = _scan_balanced(word, i + 2, "{", "}")
            value = yield from self._braced(word[i + 2:end - 1], io)
            if value is None:
                value = ""
            self._add_expansion(fields, value, quoted)
            return end
        if nxt == "@" or nxt == "*":
            if quoted and nxt == "@":
                for index, arg in enumerate(self.args):
                    if index:
                        fields.append(_Field())
                    fields[-1].add(arg, False)
                    fields[-1].has_quoted = True
            else:
                self._add_expansion(fields, " ".join(self.args), quoted)
            return i + 2
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*|[0-9?#$!\-]", word[i + 1:])
        if not match:
            fields[-1].add("$", not quoted)
            return i + 1
        self._add_expansion(fields, self._param(match.group(0)) or "", quoted)
        return i + 1 + len(match.group(0))

    def _param(self, name):
        if name == "?":
            return str(self.status)
        if name == "#":
            return str(len(self.args))
        if name == "$":
            return str(self.pid)
        if name == "!":
            return str(self.last_bg) if self.last_bg else ""
        if name == "-":
            return "".join(sorted(o for o in self.options if o.islower()))
        if name == "0":
            return self.argv0
        if name.isdigit():
            index = int(name)
            return self.args[index - 1] if index <= len(self.args) else None
        return self.vars.get(name)

    def _braced(self, body, io):
        if body.startswith("#") and len(body) > 1:
            value = self._param(body[1:])
            return str(len(value or ""))
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[?#$!@*])(.*)$", body, re.S)
        if not match:
            self.error(io, "${%s}: Bad substitution" % body)
            raise ShellExit(2)
        name, rest = match.groups()
        value = " ".join(self.args) if name in "@*" else self._param(name)
        if not rest:
            return value
        for op in (":-", ":=", ":+", ":?", "-", "=", "+", "?"):
            if rest.startswith(op):
                arg = "".join((yield from self.expand(rest[len(op):], io, split=False, glob=False)))
                unset = value is None or (op.startswith(":") and value == "")
                base = op[-1]
                if base == "-":
                    return arg if unset else value
                if base == "=":
                    if unset:
                        self.vars[name] = arg
                        return arg
                    return value
                if base == "+":
                    return "" if unset else arg
                if unset:
                    self.error(io, "%s: %s" % (name, arg or "parameter not set"))
                    raise ShellExit(2)
                return value
        for op in ("##", "%%", "#", "%"):
            if rest.startswith(op):
                pat = "".join((yield from self.expand(rest[len(op):], io, split=False, glob=False, pattern=True)))
                return _trim(value or "", pat, op)
        if rest.startswith("/"):
            pat, _sep, rep = rest[1:].partition("/")
            every = pat.startswith("/")
            pat = pat[1:] if every else pat
            regex = fnmatch.translate(pat)[:-2].replace("(?s:", "(?:")
            return re.sub(regex, rep.replace("\\", "\\\\"), value or "", count=0 if every else 1)
        self.error(io, "${%s}: Bad substitution" % body)
        raise ShellExit(2)

    def _command_subst(self, src, io):
        capture = Capture()
        sub = Shell(self.host, self.flavor, self.argv0, self.args, None, self.cwd, IO("", capture, io.stderr))
        sub.vars = dict(self.vars)
        sub.exported = set(self.exported)
        sub.functions = dict(self.functions)
        sub.options = set(self.options) - {"e"}
        sub.busy = self.busy
        status = yield from sub.run_script(src)
        self.busy = sub.busy
        self.status = status
        return capture.text().rstrip("\n")


def _trim(value, pattern, op):
    if op in ("#", "##"):
        indexes = range(len(value) + 1) if op == "#" else range(len(value), -1, -1)
        for index in indexes:
            if fnmatch.fnmatchcase(value[:index], pattern):
                return value[index:]
        return value
    indexes = range(len(value), -1, -1) if op == "%" else range(len(value) + 1)
    for index in indexes:
        if fnmatch.fnmatchcase(value[index:], pattern):
            return value[:index]
    return value


# ===================================================================================== arithmetic
_ARITH_TOKEN = re.compile(r"\s*(0x[0-9a-fA-F]+|\d+|[A-Za-z_][A-Za-z0-9_]*|\*\*|<=|>=|==|!=|&&|\|\||<<|>>|[-+*/%()<>!?:~&|^])")


def arith(expr, variables):
    """Evaluate a shell arithmetic expression (integers, C operators, variables)."""
    tokens = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        match = _ARITH_TOKEN.match(expr, pos)
        if not match:
            raise ShellExit(2)
        tokens.append(match.group(1))
        pos = match.end()
    tokens.append(None)
    state = {"i": 0}

    def peek():
        return tokens[state["i"]]

    def take():
        tok = tokens[state["i"]]
        state["i"] += 1
        return tok

    def value_of(tok):
        if tok.isdigit():
            return int(tok)
        if tok.startswith("0x"):
            return int(tok, 16)
        raw = variables.get(tok, "0") or "0"
        try:
            return int(raw)
        except ValueError:
            return arith(raw, variables)

    def primary():
        tok = take()
        if tok == "(":
            val = ternary()
            take()
            return val
        if tok == "-":
            return -primary()
        if tok == "+":
            return primary()
        if tok == "!":
            return int(not primary())
        if tok == "~":
            return ~primary()
        if tok is None:
            raise ShellExit(2)
        return value_of(tok)

    binary = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="), ("<<", ">>"),
              ("+", "-"), ("*", "/", "%")]

    def level(index):
        if index == len(binary):
            return primary()
        left = level(index + 1)
        while peek() in binary[index]:
            op = take()
            right = level(index + 1)
            left = _apply(op, left, right)
        return left

    def ternary():
        cond = level(0)
        if peek() == "?":
            take()
            yes = ternary()
            take()
            no = ternary()
            return yes if cond else no
        return cond

    if tokens == [None]:
        return 0
    return ternary()


def _apply(op, left, right):
    if op in ("/", "%") and right == 0:
        raise ShellExit(2)
    ops = {"||": lambda: int(bool(left or right)), "&&": lambda: int(bool(left and right)),
           "|": lambda: left | right, "^": lambda: left ^ right, "&": lambda: left & right,
           "==": lambda: int(left == right), "!=": lambda: int(left != right), "<": lambda: int(left < right),
           ">": lambda: int(left > right), "<=": lambda: int(left <= right), ">=": lambda: int(left >= right),
           "<<": lambda: left << right, ">>": lambda: left >> right, "+": lambda: left + right,
           "-": lambda: left - right, "*": lambda: left * right,
           "/": lambda: int(left / right), "%": lambda: left - right * int(left / right)}
    return ops[op]()


# ===================================================================================== builtins
class CommandContext(object):
    """What a command sees: arguments come separately; this holds I/O, env, cwd, fs and the host."""

    def __init__(self, shell, io):
        self.shell = shell
        self.io = io
        self.stdin = io.stdin
        self.stdout = io.stdout
        self.stderr = io.stderr
        self.env = shell.environ()
        self.cwd = shell.cwd
        self.host = shell.host
        self.fs = shell.host.fs
        self.flavor = shell.flavor

    def out(self, text):
        self.stdout.write(text)

    def err(self, text):
        self.stderr.write(text)

    def path(self, name):
        return self.shell.resolve(name)

    def now(self):
        return self.host.now()

    def not_found(self, name):
        """Report `name` as missing the way this image's shell does; returns 127."""
        return self.shell.not_found(name, self.io)

    def run_shell(self, argv):
        """Run `sh -c ...`-style argv in a nested shell (generator)."""
        return self.host.run_shell(self, argv)


def _gen(value):
    return value
    yield  # pylint: disable=unreachable


def _b_true(shell, argv, io):
    return (yield from _gen(0))


def _b_false(shell, argv, io):
    return (yield from _gen(1))


def _b_exit(shell, argv, io):
    code = shell.status
    if len(argv) > 1:
        try:
            code = int(argv[1]) & 0xff
        except ValueError:
            shell.error(io, "exit: Illegal number: %s" % argv[1])
            code = 2
    raise ShellExit(code)
    yield  # pylint: disable=unreachable


def _b_return(shell, argv, io):
    raise _Return(int(argv[1]) if len(argv) > 1 else shell.status)
    yield  # pylint: disable=unreachable


def _b_loop(shell, argv, io):
    raise _LoopControl(argv[0], int(argv[1]) if len(argv) > 1 else 1)
    yield  # pylint: disable=unreachable


def _b_export(shell, argv, io):
    for arg in argv[1:]:
        if arg == "-p":
            continue
        name, eq, value = arg.partition("=")
        if eq:
            shell.vars[name] = value
        shell.exported.add(name)
    return (yield from _gen(0))


def _b_unset(shell, argv, io):
    for name in argv[1:]:
        if name in ("-v", "-f"):
            continue
        shell.vars.pop(name, None)
        shell.functions.pop(name, None)
        shell.exported.discard(name)
    return (yield from _gen(0))


def _b_local(shell, argv, io):
    for arg in argv[1:]:
        name, eq, value = arg.partition("=")
        shell.vars[name] = value if eq else shell.vars.get(name, "")
    return (yield from _gen(0))


def _b_set(shell, argv, io):
    args = argv[1:]
    while args and args[0][:1] in "-+" and args[0] != "--":
        flag = args.pop(0)
        on = flag[0] == "-"
        letters = flag[1:]
        if letters == "o" and args:
            opt = args.pop(0)
            letters = {"errexit": "e", "xtrace": "x", "nounset": "u", "pipefail": "P", "noglob": "f"}.get(opt, "")
        for letter in letters:
            if on:
                shell.options.add(letter)
            else:
                shell.options.discard(letter)
    if args and args[0] == "--":
        args.pop(0)
    if args or (len(argv) > 1 and argv[-1] == "--"):
        shell.args = args
    return (yield from _gen(0))


def _b_shift(shell, argv, io):
    count = int(argv[1]) if len(argv) > 1 else 1
    if count > len(shell.args):
        shell.error(io, "shift: can't shift that many")
        return 2
    shell.args = shell.args[count:]
    return (yield from _gen(0))


def _b_cd(shell, argv, io):
    target = argv[1] if len(argv) > 1 else shell.vars.get("HOME", "/")
    path = shell.resolve(target).rstrip("/") or "/"
    if not shell.host.fs.isdir(path):
        shell.error(io, "cd: can't cd to %s" % target)
        return 2
    shell.cwd = path
    shell.vars["PWD"] = path
    return (yield from _gen(0))


def _b_pwd(shell, argv, io):
    io.stdout.write(shell.cwd + "\n")
    return (yield from _gen(0))


def _b_read(shell, argv, io):
    names = [a for a in argv[1:] if not a.startswith("-")]
    data = io.stdin or ""
    if not data:
        return 1
    line, _newline, rest = data.partition("\n")
    io.stdin = rest
    parts = line.split(None, max(len(names) - 1, 0)) if names else [line]
    for index, name in enumerate(names or ["REPLY"]):
        shell.vars[name] = parts[index] if index < len(parts) else ""
    return (yield from _gen(0))


def _b_echo(shell, argv, io):
    """dash's echo takes only -n and always interprets escapes; bash and busybox take -n/-e/-E."""
    args = argv[1:]
    newline = True
    escapes = shell.flavor == "dash"
    if shell.flavor == "dash":
        if args and args[0] == "-n":
            newline = False
            args = args[1:]
    else:
        while args and re.match(r"^-[neE]+$", args[0]):
            for letter in args.pop(0)[1:]:
                if letter == "n":
                    newline = False
                else:
                    escapes = letter == "e"
    text = " ".join(args)
    if escapes:
        text, stop = _unescape(text)
        if stop:
            newline = False
    io.stdout.write(text + ("\n" if newline else ""))
    return (yield from _gen(0))


def _unescape(text):
    """Backslash escapes of echo/printf; returns (text, stop) where \\c stops output."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "c":
            return "".join(out), True
        mapping = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                   "e": "\x1b"}
        if nxt in mapping:
            out.append(mapping[nxt])
            i += 2
        elif nxt == "0":
            digits = re.match(r"[0-7]{0,3}", text[i + 2:]).group(0)
            out.append(chr(int(digits or "0", 8)))
            i += 2 + len(digits)
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out), False


def _b_printf(shell, argv, io):
    if len(argv) < 2:
        io.stderr.write("printf: usage: printf format [arguments]\n")
        return 2
    io.stdout.write(printf_format(argv[1], argv[2:]))
    return (yield from _gen(0))


def printf_format(fmt, args):
    args = list(args)
    out = []
    spec = re.compile(r"%([-+ #0]*)(\d+|\*)?(?:\.(\d+))?([sdiuxXofeEgGcb%])")
    first = True
    while first or args:
        first = False
        consumed = False
        pos = 0
        for match in spec.finditer(fmt):
            out.append(_unescape(fmt[pos:match.start()])[0])
            pos = match.end()
            flags, width, prec, conv = match.groups()
            if conv == "%":
                out.append("%")
                continue
            arg = args.pop(0) if args else ""
            consumed = True
            pyfmt = "%" + (flags or "") + (width or "") + ("." + prec if prec else "")
            if conv in "diuxXo":
                try:
                    number = int(arg, 0) if arg else 0
                except ValueError:
                    number = 0
                out.append((pyfmt + ("d" if conv in "iu" else conv)) % number)
            elif conv in "feEgG":
                try:
                    out.append((pyfmt + conv) % float(arg or 0))
                except ValueError:
                    out.append((pyfmt + conv) % 0.0)
            elif conv == "c":
                out.append(arg[:1])
            elif conv == "b":
                out.append(_unescape(arg)[0])
            else:
                out.append((pyfmt + "s") % arg)
        out.append(_unescape(fmt[pos:])[0])
        if not consumed:
            break
    return "".join(out)


def _b_test(shell, argv, io):
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            shell.error(io, "[: missing ]")
            return 2
        args = args[:-1]
    try:
        result = _test_expr(shell, args)
    except ValueError as exc:
        shell.error(io, "%s: %s" % (argv[0], exc))
        return 2
    return (yield from _gen(0 if result else 1))


def _b_dbracket(shell, argv, io):
    """bash's [[ ... ]] for single expressions: test(1) plus glob `==` and regex `=~`."""
    args = argv[1:]
    if not args or args[-1] != "]]":
        shell.error(io, "syntax error in conditional expression")
        return 2
    args = args[:-1]
    negate = bool(args) and args[0] == "!"
    if negate:
        args = args[1:]
    if len(args) == 3 and args[1] in ("==", "=", "!="):
        result = fnmatch.fnmatchcase(args[0], args[2]) == (args[1] != "!=")
    elif len(args) == 3 and args[1] == "=~":
        result = re.search(args[2], args[0]) is not None
    else:
        try:
            result = _test_expr(shell, args)
        except ValueError as exc:
            shell.error(io, "[[: %s" % exc)
            return 2
    return (yield from _gen(0 if result != negate else 1))


def _test_expr(shell, args):
    """test(1) with -a/-o/!/parentheses over unary and binary primaries."""
    if not args:
        return False
    if "-o" in args:
        index = args.index("-o")
        return _test_expr(shell, args[:index]) or _test_expr(shell, args[index + 1:])
    if "-a" in args[1:]:
        index = args.index("-a", 1)
        return _test_expr(shell, args[:index]) and _test_expr(shell, args[index + 1:])
    if args[0] == "!":
        return not _test_expr(shell, args[1:])
    if args[0] == "(" and args[-1] == ")":
        return _test_expr(shell, args[1:-1])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        return _test_unary(shell, args[0], args[1])
    if len(args) == 3:
        return _test_binary(args[0], args[1], args[2])
    raise ValueError("too many arguments")


def _test_unary(shell, op, arg):
    fs = shell.host.fs
    path = shell.resolve(arg)
    checks = {"-z": lambda: arg == "", "-n": lambda: arg != "", "-e": lambda: fs.exists(path),
              "-f": lambda: fs.kind(path) == "file", "-d": lambda: fs.isdir(path),
              "-c": lambda: fs.kind(path) == "chardev", "-s": lambda: bool(fs.read(path)),
              "-r": lambda: fs.exists(path), "-w": lambda: fs.exists(path), "-x": lambda: fs.exists(path),
              "-L": lambda: False, "-h": lambda: False, "-b": lambda: False, "-p": lambda: False,
              "-S": lambda: fs.kind(path) == "socket", "-t": lambda: False}
    if op not in checks:
        raise ValueError("%s: unexpected operator" % op)
    return checks[op]()


def _test_binary(left, op, right):
    if op in ("=", "=="):
        return left == right
    if op == "!=":
        return left != right
    if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
        try:
            a, b = int(left), int(right)
        except ValueError:
            raise ValueError("Illegal number: %s" % (left if not _is_int(left) else right))
        return {"-eq": a == b, "-ne": a != b, "-lt": a < b, "-le": a <= b, "-gt": a > b, "-ge": a >= b}[op]
    if op in ("<", ">"):
        return left < right if op == "<" else left > right
    raise ValueError("%s: unexpected operator" % op)


def _is_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def _b_command(shell, argv, io):
    args = argv[1:]
    if args and args[0] in ("-v", "-V"):
        found = 0
        for name in args[1:]:
            if name in _BUILTINS or name in shell.functions:
                io.stdout.write(name + "\n")
            elif shell.host.find_command(name) is not None:
                io.stdout.write(shell.host.command_path(name) + "\n")
            else:
                found = 1
        return found
    if not args:
        return 0
    return (yield from shell.execute(args, io))


def _b_type(shell, argv, io):
    status = 0
    for name in argv[1:]:
        if name in _BUILTINS:
            io.stdout.write("%s is a shell builtin\n" % name)
        elif name in shell.functions:
            io.stdout.write("%s is a function\n" % name)
        elif shell.host.find_command(name) is not None:
            io.stdout.write("%s is %s\n" % (name, shell.host.command_path(name)))
        else:
            io.stdout.write("%s: not found\n" % name)
            status = 1
    return (yield from _gen(status))


def _b_eval(shell, argv, io):
    sub = " ".join(argv[1:])
    tree = parse(sub)
    return (yield from shell._run(tree, io))  # pylint: disable=protected-access


def _b_source(shell, argv, io):
    if len(argv) < 2:
        return 2
    content = shell.host.fs.read(shell.resolve(argv[1]))
    if content is None:
        shell.error(io, "%s: cannot open %s: No such file" % (argv[0], argv[1]))
        return 2
    return (yield from shell._run(parse(content), io))  # pylint: disable=protected-access


def _b_exec(shell, argv, io):
    if len(argv) == 1:
        return 0
    status = yield from shell.execute(argv[1:], io)
    raise ShellExit(status)


def _b_wait(shell, argv, io):
    """Wait for background jobs (all, or the given pids); polls on the simulated clock."""
    wanted = [j for j in shell.jobs if len(argv) == 1 or str(j.pid) in argv[1:]]
    while any(not j.done for j in wanted):
        yield 0.5
    return wanted[-1].status if wanted else 0


def _b_ignore(shell, argv, io):
    return (yield from _gen(0))


_BUILTINS = {
    ":": _b_true, "true": _b_true, "false": _b_false, "exit": _b_exit, "return": _b_return,
    "break": _b_loop, "continue": _b_loop, "export": _b_export, "readonly": _b_export, "unset": _b_unset,
    "local": _b_local, "set": _b_set, "shift": _b_shift, "cd": _b_cd, "pwd": _b_pwd, "read": _b_read,
    "echo": _b_echo, "printf": _b_printf, "test": _b_test, "[": _b_test, "[[": _b_dbracket,
    "command": _b_command,
    "type": _b_type, "eval": _b_eval, ".": _b_source, "source": _b_source, "exec": _b_exec, "wait": _b_wait,
    "trap": _b_ignore, "ulimit": _b_ignore, "umask": _b_ignore, "alias": _b_ignore, "hash": _b_ignore,
}


def is_builtin(name):
    return name in _BUILTINS
