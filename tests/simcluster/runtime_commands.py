"""Commands available to simulated containers: coreutils-like tools, curl, wget, DNS lookups.

Each command is fn(ctx, argv) -> exit status, or a generator yielding simulated seconds (sleep, curl
timeouts). Messages and exit codes follow GNU coreutils for Debian/Ubuntu-based images and BusyBox
for busybox/alpine-based ones (ctx.host.profile.userland). Which image has which tool is decided by
the tool group given at registration ("core": every image with a userland; "curl", "wget", ... only
images whose profile lists them). Output goes to ctx.stdout/ctx.stderr, which the runtime keeps as the
container's log with simulated timestamps.
"""
from __future__ import annotations

import datetime
import ipaddress
import math
import posixpath
import re
import urllib.parse

from .runtime_shell import IO, printf_format
from . import runtime_tar


def _busybox(ctx):
    return ctx.host.profile.userland == "busybox"


def _gen(value):
    return value
    yield  # pylint: disable=unreachable


# ===================================================================================== files
def cmd_ls(ctx, argv):
    opts, paths = _split_opts(argv[1:])
    long_format = "l" in opts
    show_all = "a" in opts or "A" in opts
    as_dir = "d" in opts
    status = 0
    files, dirs = [], []
    for name in paths or ["."]:
        path = ctx.path(name)
        kind = ctx.fs.kind(path)
        if kind is None:
            if _busybox(ctx):
                ctx.err("ls: %s: No such file or directory\n" % name)
                status = 1
            else:
                ctx.err("ls: cannot access '%s': No such file or directory\n" % name)
                status = 2
            continue
        if kind == "dir" and not as_dir:
            dirs.append((name, path))
        else:
            files.append((name, path))
    for name, path in sorted(files):
        ctx.out(_ls_line(ctx, name, path, long_format))
    for index, (name, path) in enumerate(sorted(dirs)):
        if len(dirs) + len(files) > 1:
            ctx.out(("\n" if index or files else "") + "%s:\n" % name)
        entries = ctx.fs.listdir(path)
        if not show_all:
            entries = [e for e in entries if not e.startswith(".")]
        if long_format:
            ctx.out("total %d\n" % (len(entries) * 4))
        for entry in entries:
            ctx.out(_ls_line(ctx, entry, posixpath.join(path, entry), long_format))
    return status


def _ls_line(ctx, shown, path, long_format):
    if not long_format:
        return shown + "\n"
    entry = ctx.fs.entry(path)
    kind = ctx.fs.kind(path)
    stamp = datetime.datetime.fromtimestamp(ctx.now(), tz=datetime.timezone.utc).strftime("%b %d %H:%M")
    if kind == "chardev":
        return "crw-rw-rw- 1 root root %3d, %3d %s %s\n" % (entry.major, entry.minor, stamp, shown)
    if kind == "dir":
        return "drwxr-xr-x 2 root root %8d %s %s\n" % (4096, stamp, shown)
    size = len(ctx.fs.read(path) or "")
    return "-rw-r--r-- 1 root root %8d %s %s\n" % (size, stamp, shown)


def _split_opts(args):
    """Short options (-la) and operands; `--` ends options."""
    opts, rest = set(), []
    ended = False
    for arg in args:
        if not ended and arg == "--":
            ended = True
        elif not ended and arg.startswith("-") and len(arg) > 1 and not arg[1:].isdigit():
            opts.update(arg[1:])
        else:
            rest.append(arg)
    return opts, rest


def _read_inputs(ctx, names, cmd):
    """[(name, text or None)] for file operands (or stdin); prints the error for missing ones."""
    out = []
    for name in names or ["-"]:
        if name == "-":
            out.append((name, ctx.stdin or ""))
            continue
        path = ctx.path(name)
        kind = ctx.fs.kind(path)
        if kind == "dir":
            ctx.err("%s: %s: Is a directory\n" % (cmd, name) if not _busybox(ctx) else
                    "%s: read error: Is a directory\n" % cmd)
            out.append((name, None))
            continue
        text = ctx.fs.read(path)
        if text is None:
            if _busybox(ctx):
                ctx.err("%s: can't open '%s': No such file or directory\n" % (cmd, name))
            else:
                ctx.err("%s: %s: No such file or directory\n" % (cmd, name))
        out.append((name, text))
    return out


def cmd_cat(ctx, argv):
    names = _split_opts(argv[1:])[1]
    status = 0
    for _name, text in _read_inputs(ctx, names, "cat"):
        if text is None:
            status = 1
        else:
            ctx.out(text)
    return status


def cmd_head(ctx, argv):
    count, names, by_bytes = _count_opts(argv[1:], 10)
    status = 0
    inputs = _read_inputs(ctx, names, "head")
    for index, (name, text) in enumerate(inputs):
        if text is None:
            status = 1
            continue
        if len(inputs) > 1:
            ctx.out(("\n" if index else "") + "==> %s <==\n" % name)
        if by_bytes:
            ctx.out(text[:count])
        else:
            ctx.out("".join(text.splitlines(True)[:count]))
    return status


def cmd_tail(ctx, argv):
    args = argv[1:]
    follow = any(a in ("-f", "-F", "--follow") for a in args)
    args = [a for a in args if a not in ("-f", "-F", "--follow")]
    count, names, by_bytes = _count_opts(args, 10)
    status = 0
    for _name, text in _read_inputs(ctx, names, "tail"):
        if text is None:
            status = 1
            continue
        if by_bytes:
            ctx.out(text[-count:] if count else "")
        else:
            lines = text.splitlines(True)
            ctx.out("".join(lines[-count:]) if count else "")
    if follow and status == 0:
        yield math.inf
    return status


def _count_opts(args, default):
    count, names, by_bytes = default, [], False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-n", "-c") and index + 1 < len(args):
            by_bytes = arg == "-c"
            count = int(args[index + 1].lstrip("+-") or 0)
            index += 2
            continue
        if re.match(r"^-[nc]\d+$", arg):
            by_bytes = arg[1] == "c"
            count = int(arg[2:])
        elif re.match(r"^-\d+$", arg):
            count = int(arg[1:])
        elif arg.startswith("--lines="):
            count = int(arg.split("=", 1)[1])
        else:
            names.append(arg)
        index += 1
    return count, names, by_bytes


def cmd_wc(ctx, argv):
    opts, names = _split_opts(argv[1:])
    wanted = [o for o in "lwmc" if o in opts] or ["l", "w", "c"]
    status = 0
    rows = []
    for name, text in _read_inputs(ctx, names, "wc"):
        if text is None:
            status = 1
            continue
        counts = {"l": text.count("\n"), "w": len(text.split()), "c": len(text.encode("utf-8", "surrogateescape")), "m": len(text)}
        rows.append(([counts[w] for w in wanted], None if name == "-" else name))
    for values, name in rows:
        if len(values) == 1 and name is None:
            ctx.out("%d\n" % values[0])
        elif _busybox(ctx) or len(values) > 1:
            ctx.out(" ".join("%7d" % v for v in values) + (" %s" % name if name else "") + "\n")
        else:
            ctx.out("%d %s\n" % (values[0], name))
    return status


def _bre_to_re(pattern):
    """POSIX basic regular expression -> Python re."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "(){}|+?" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + ch if ch in "(){}|+?" else ch)
        i += 1
    return "".join(out)


def cmd_grep(ctx, argv):
    args = list(argv[1:])
    extended = argv[0] == "egrep"
    fixed = argv[0] == "fgrep"
    opts = set()
    patterns = []
    names = []
    while args:
        arg = args.pop(0)
        if arg == "--":
            names.extend(args)
            break
        if arg in ("-e", "--regexp") and args:
            patterns.append(args.pop(0))
        elif arg.startswith("--"):
            opts.add({"--quiet": "q", "--silent": "q", "--count": "c", "--invert-match": "v",
                      "--ignore-case": "i", "--extended-regexp": "E", "--fixed-strings": "F",
                      "--only-matching": "o", "--line-number": "n", "--word-regexp": "w",
                      "--line-regexp": "x"}.get(arg, ""))
        elif arg.startswith("-") and len(arg) > 1:
            opts.update(arg[1:])
        elif not patterns and "e" not in opts:
            patterns.append(arg)
        else:
            names.append(arg)
    if not patterns:
        ctx.err("Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        return 2
    extended = extended or "E" in opts
    fixed = fixed or "F" in opts
    flags = re.IGNORECASE if "i" in opts else 0
    regexes = []
    for pattern in patterns:
        source = re.escape(pattern) if fixed else (pattern if extended else _bre_to_re(pattern))
        if "w" in opts:
            source = r"\b(?:%s)\b" % source
        if "x" in opts:
            source = r"^(?:%s)$" % source
        try:
            regexes.append(re.compile(source, flags))
        except re.error:
            ctx.err("grep: Invalid regular expression\n")
            return 2
    matched_any = False
    status_missing = False
    inputs = _read_inputs(ctx, names, "grep")
    for name, text in inputs:
        if text is None:
            status_missing = True
            continue
        count = 0
        for number, line in enumerate(text.splitlines(), 1):
            hits = [m for r in regexes for m in r.finditer(line)]
            if bool(hits) == ("v" in opts):
                continue
            count += 1
            matched_any = True
            if "q" in opts or "c" in opts or "l" in opts:
                continue
            prefix = ("%s:" % name if len(inputs) > 1 else "") + ("%d:" % number if "n" in opts else "")
            if "o" in opts and "v" not in opts:
                for hit in hits:
                    ctx.out(prefix + hit.group(0) + "\n")
            else:
                ctx.out(prefix + line + "\n")
        if "c" in opts:
            ctx.out(("%s:" % name if len(inputs) > 1 else "") + "%d\n" % count)
        if "l" in opts and count:
            ctx.out(name + "\n")
        if "q" in opts and matched_any:
            return 0
    if status_missing and not ("q" in opts and matched_any):
        return 2
    return 0 if matched_any else 1


def cmd_sort(ctx, argv):
    opts, names = _split_opts(argv[1:])
    lines = []
    for _name, text in _read_inputs(ctx, names, "sort"):
        if text:
            lines.extend(text.splitlines())
    if "n" in opts:
        def key(line):
            match = re.match(r"^\s*(-?\d+(?:\.\d+)?)", line)
            return (float(match.group(1)) if match else 0.0, line)
        lines.sort(key=key)
    else:
        lines.sort()
    if "r" in opts:
        lines.reverse()
    if "u" in opts:
        seen, unique = set(), []
        for line in lines:
            if line not in seen:
                seen.add(line)
                unique.append(line)
        lines = unique
    ctx.out("".join(line + "\n" for line in lines))
    return 0


def cmd_uniq(ctx, argv):
    opts, names = _split_opts(argv[1:])
    text = _read_inputs(ctx, names[:1], "uniq")[0][1] or ""
    groups = []
    for line in text.splitlines():
        if groups and groups[-1][0] == line:
            groups[-1][1] += 1
        else:
            groups.append([line, 1])
    for line, count in groups:
        if "d" in opts and count < 2 or "u" in opts and count > 1:
            continue
        ctx.out(("%7d %s\n" % (count, line)) if "c" in opts else line + "\n")
    return 0


def cmd_cut(ctx, argv):
    args = argv[1:]
    delim, fields, chars, names = "\t", None, None, []
    while args:
        arg = args.pop(0)
        if arg.startswith("-d"):
            delim = arg[2:] if len(arg) > 2 else args.pop(0)
        elif arg.startswith("-f"):
            fields = _ranges(arg[2:] if len(arg) > 2 else args.pop(0))
        elif arg.startswith("-c"):
            chars = _ranges(arg[2:] if len(arg) > 2 else args.pop(0))
        else:
            names.append(arg)
    for _name, text in _read_inputs(ctx, names, "cut"):
        for line in (text or "").splitlines():
            if chars is not None:
                ctx.out("".join(c for i, c in enumerate(line, 1) if chars(i)) + "\n")
            elif delim not in line:
                ctx.out(line + "\n")
            else:
                parts = line.split(delim)
                ctx.out(delim.join(p for i, p in enumerate(parts, 1) if fields(i)) + "\n")
    return 0


def _ranges(spec):
    parts = []
    for item in spec.split(","):
        lo, dash, hi = item.partition("-")
        lo_v = int(lo) if lo else 1
        hi_v = int(hi) if hi else (10 ** 9 if dash else lo_v)
        parts.append((lo_v, hi_v))
    return lambda i: any(lo <= i <= hi for lo, hi in parts)


def cmd_tr(ctx, argv):
    opts, sets = _split_opts(argv[1:])
    text = ctx.stdin or ""
    first = _expand_set(sets[0]) if sets else ""
    if "d" in opts:
        ctx.out("".join(c for c in text if c not in first))
        return 0
    second = _expand_set(sets[1]) if len(sets) > 1 else ""
    if second:
        second = second + second[-1] * max(0, len(first) - len(second))
        table = {ord(a): b for a, b in zip(first, second)}
        text = text.translate(table)
    if "s" in opts:
        squeeze = second or first
        text = re.sub("([%s])\\1+" % re.escape(squeeze), r"\1", text) if squeeze else text
    ctx.out(text)
    return 0


def _expand_set(spec):
    classes = {"[:upper:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "[:lower:]": "abcdefghijklmnopqrstuvwxyz",
               "[:digit:]": "0123456789", "[:space:]": " \t\n\r\f\v", "[:alpha:]":
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}
    for name, chars in classes.items():
        spec = spec.replace(name, chars)
    spec = spec.replace("\\n", "\n").replace("\\t", "\t")
    out = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def cmd_sed(ctx, argv):
    args = argv[1:]
    quiet = False
    scripts, names = [], []
    while args:
        arg = args.pop(0)
        if arg == "-n":
            quiet = True
        elif arg == "-e" and args:
            scripts.append(args.pop(0))
        elif arg in ("-E", "-r"):
            continue
        elif not scripts:
            scripts.append(arg)
        else:
            names.append(arg)
    commands = []
    for script in scripts:
        for part in re.split(r";\s*(?=[0-9/$sdpq])", script):
            parsed = _sed_command(part.strip())
            if parsed is None:
                ctx.err("sed: unsupported command in the simulated shell: %s\n" % part)
                return 1
            commands.append(parsed)
    for _name, text in _read_inputs(ctx, names, "sed"):
        lines = (text or "").splitlines()
        for number, line in enumerate(lines, 1):
            deleted = False
            for address, op, arg in commands:
                if not address(number, line, len(lines)):
                    continue
                if op == "s":
                    regex, repl, count = arg
                    line = regex.sub(repl, line, count=count)
                elif op == "d":
                    deleted = True
                    break
                elif op == "p":
                    ctx.out(line + "\n")
                elif op == "q":
                    ctx.out(line + "\n")
                    return 0
            if not deleted and not quiet:
                ctx.out(line + "\n")
    return 0


def _sed_address(addr, regex_addr):
    """A predicate (line number, line, total lines) -> bool for a sed address."""
    if addr is None:
        return lambda number, line, total: True
    if addr == "$":
        return lambda number, line, total: number == total
    if regex_addr is not None:
        compiled = re.compile(regex_addr.replace("\\/", "/"))
        return lambda number, line, total: bool(compiled.search(line))
    wanted = int(addr)
    return lambda number, line, total: number == wanted


def _sed_command(text):
    match = re.match(r"^(\d+|\$|/((?:\\/|[^/])*)/)?\s*(.*)$", text, re.S)
    addr, regex_addr, rest = match.group(1), match.group(2), match.group(3)
    address = _sed_address(addr, regex_addr)
    if rest in ("d", "p", "q"):
        return address, rest, None
    match = re.match(r"^s(.)(.*?)(?<!\\)\1(.*?)(?<!\\)\1([gI0-9]*)$", rest, re.S)
    if not match:
        return None
    pattern, repl, flags = match.groups()[1:]
    regex = re.compile(_bre_to_re(pattern), re.IGNORECASE if "I" in flags else 0)
    repl = re.sub(r"\\(\d)", r"\\g<\1>", repl).replace("&", r"\g<0>")
    return address, "s", (regex, repl, 0 if "g" in flags else 1)


_AWK_RULE = re.compile(r"\s*(BEGIN|END|/[^/]*/|NR\s*==\s*\d+|\$\d+\s*==\s*\"[^\"]*\")?\s*\{([^}]*)\}")


def cmd_awk(ctx, argv):
    """A small awk: [-F sep] '[/re/|NR==n|$N=="x"] {print ...}' and 'END {print NR}'."""
    args = argv[1:]
    sep = None
    while args and args[0].startswith("-F"):
        flag = args.pop(0)
        sep = flag[2:] if len(flag) > 2 else args.pop(0)
    if not args:
        ctx.err("usage: awk [-F fs] 'prog' [file ...]\n")
        return 2
    program, names = args[0], args[1:]
    rules = _AWK_RULE.findall(program)
    if not rules or _AWK_RULE.sub("", program).strip():
        ctx.err("awk: unsupported program in the simulated shell: %s\n" % program)
        return 2
    records = 0
    for _name, text in _read_inputs(ctx, names, "awk"):
        for line in (text or "").splitlines():
            records += 1
            fields = line.split(sep) if sep else line.split()
            for cond, body in rules:
                if cond in ("BEGIN", "END") or not _awk_match(cond, line, records, fields):
                    continue
                _awk_print(ctx, body, fields, line, records)
    for cond, body in rules:
        if cond == "END":
            _awk_print(ctx, body, [], "", records)
    return 0


def _awk_match(cond, line, number, fields):
    if not cond:
        return True
    if cond.startswith("/"):
        return re.search(cond[1:-1], line) is not None
    match = re.match(r"NR\s*==\s*(\d+)", cond)
    if match:
        return number == int(match.group(1))
    match = re.match(r"\$(\d+)\s*==\s*\"([^\"]*)\"", cond)
    index = int(match.group(1))
    value = fields[index - 1] if 0 < index <= len(fields) else ""
    return value == match.group(2)


def _awk_print(ctx, body, fields, line, number):
    for statement in body.split(";"):
        statement = statement.strip()
        if not statement.startswith("print"):
            continue
        items = [i.strip() for i in re.findall(r'"[^"]*"|[^,]+', statement[5:]) if i.strip()]
        out = []
        for item in items or ["$0"]:
            if item.startswith('"'):
                out.append(item[1:-1])
            elif item == "$0":
                out.append(line)
            elif item == "NR":
                out.append(str(number))
            elif item == "NF":
                out.append(str(len(fields)))
            elif item.startswith("$") and item[1:].isdigit():
                index = int(item[1:])
                out.append(fields[index - 1] if 0 < index <= len(fields) else "")
            elif item == "$NF":
                out.append(fields[-1] if fields else "")
            else:
                out.append(item)
        ctx.out(" ".join(out) + "\n")


def cmd_tee(ctx, argv):
    opts, names = _split_opts(argv[1:])
    data = ctx.stdin or ""
    for name in names:
        ctx.fs.write(ctx.path(name), data, append="a" in opts)
    ctx.out(data)
    return 0


def cmd_touch(ctx, argv):
    names = _split_opts(argv[1:])[1]
    for name in names:
        path = ctx.path(name)
        error = ctx.fs.writable(path)
        if error and not ctx.fs.exists(path):
            ctx.err("touch: cannot touch '%s': No such file or directory\n" % name)
            return 1
        if not ctx.fs.exists(path):
            ctx.fs.add(path, "")
    return 0


def cmd_mkdir(ctx, argv):
    opts, names = _split_opts(argv[1:])
    status = 0
    for name in names:
        path = ctx.path(name)
        if ctx.fs.exists(path) and "p" not in opts:
            ctx.err("mkdir: cannot create directory '%s': File exists\n" % name)
            status = 1
        elif not ctx.fs.isdir(posixpath.dirname(path)) and "p" not in opts:
            ctx.err("mkdir: cannot create directory '%s': No such file or directory\n" % name)
            status = 1
        else:
            ctx.fs.mkdir(path)
    return status


def cmd_rm(ctx, argv):
    opts, names = _split_opts(argv[1:])
    status = 0
    for name in names:
        path = ctx.path(name)
        if ctx.fs.isdir(path) and "r" not in opts and "R" not in opts:
            ctx.err("rm: cannot remove '%s': Is a directory\n" % name)
            status = 1
        elif not ctx.fs.remove(path) and "f" not in opts:
            ctx.err("rm: cannot remove '%s': No such file or directory\n" % name)
            status = 1
    return status


def cmd_cp(ctx, argv):
    names = _split_opts(argv[1:])[1]
    if len(names) < 2:
        ctx.err("cp: missing file operand\n")
        return 1
    source, target = names[0], names[-1]
    content = ctx.fs.read(ctx.path(source))
    if content is None:
        ctx.err("cp: cannot stat '%s': No such file or directory\n" % source)
        return 1
    dest = ctx.path(target)
    if ctx.fs.isdir(dest):
        dest = posixpath.join(dest, posixpath.basename(source))
    ctx.fs.add(dest, content)
    return 0


def cmd_basename(ctx, argv):
    if len(argv) < 2:
        ctx.err("basename: missing operand\n")
        return 1
    name = posixpath.basename(argv[1].rstrip("/")) or "/"
    if len(argv) > 2 and name.endswith(argv[2]) and name != argv[2]:
        name = name[:-len(argv[2])]
    ctx.out(name + "\n")
    return 0


def cmd_dirname(ctx, argv):
    if len(argv) < 2:
        ctx.err("dirname: missing operand\n")
        return 1
    ctx.out((posixpath.dirname(argv[1].rstrip("/")) or ".") + "\n")
    return 0


# ===================================================================================== system
def cmd_sleep(ctx, argv):
    total = 0.0
    if len(argv) < 2:
        ctx.err("sleep: missing operand\n")
        return 1
    for arg in argv[1:]:
        if arg in ("infinity", "inf"):
            total = math.inf
            continue
        match = re.match(r"^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$", arg)
        if not match:
            ctx.err("sleep: invalid time interval '%s'\n" % arg if not _busybox(ctx) else
                    "sleep: invalid number '%s'\n" % arg)
            return 1
        total += float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    yield total
    return 0


def cmd_env(ctx, argv):
    args = argv[1:]
    env = dict(ctx.env)
    if args and args[0] in ("-i", "-"):
        env = {}
        args = args[1:]
    while args and "=" in args[0] and not args[0].startswith("="):
        name, _eq, value = args.pop(0).partition("=")
        env[name] = value
    if not args:
        ctx.out("".join("%s=%s\n" % item for item in env.items()))
        return 0
    shell = ctx.shell
    saved_vars, saved_exported = dict(shell.vars), set(shell.exported)
    shell.vars.update(env)
    shell.exported = set(env)
    try:
        return (yield from shell.execute(args, ctx.io))
    finally:
        shell.vars, shell.exported = saved_vars, saved_exported


def cmd_printenv(ctx, argv):
    if len(argv) == 1:
        ctx.out("".join("%s=%s\n" % item for item in ctx.env.items()))
        return 0
    status = 0
    for name in argv[1:]:
        if name in ctx.env:
            ctx.out(ctx.env[name] + "\n")
        else:
            status = 1
    return status


def cmd_hostname(ctx, argv):
    host = ctx.host
    if "-i" in argv or "-I" in argv:
        ctx.out(host.pod_ip + ("\n" if "-i" in argv else " \n"))
    elif "-f" in argv:
        spec = host.pod.get("spec") or {}
        if spec.get("subdomain"):
            ctx.out("%s.%s.%s.svc.cluster.local\n" % (host.hostname, spec["subdomain"],
                                                      host.pod["metadata"]["namespace"]))
        else:
            ctx.out(host.hostname + "\n")
    else:
        ctx.out((ctx.fs.read("/etc/hostname") or host.hostname + "\n"))
    return 0


def cmd_date(ctx, argv):
    when = datetime.datetime.fromtimestamp(ctx.now(), tz=datetime.timezone.utc)
    fmt = None
    for arg in argv[1:]:
        if arg.startswith("+"):
            fmt = arg[1:]
        elif arg.startswith("-I") or arg.startswith("--iso-8601"):
            fmt = "%Y-%m-%dT%H:%M:%S+00:00" if "seconds" in arg else "%Y-%m-%d"
        elif arg in ("-R", "--rfc-email"):
            fmt = "%a, %d %b %Y %H:%M:%S +0000"
    if fmt is None:
        ctx.out(when.strftime("%a %b %e %H:%M:%S UTC %Y") + "\n")
    else:
        ctx.out(when.strftime(fmt.replace("%N", "%f000").replace("%s", str(int(ctx.now())))) + "\n")
    return 0


def cmd_uname(ctx, argv):
    values = {"s": "Linux", "n": ctx.host.hostname, "r": "5.15.0-119-generic",
              "v": "#129-Ubuntu SMP Fri Aug 2 19:25:20 UTC 2024", "m": "x86_64", "o": "GNU/Linux"}
    opts = _split_opts(argv[1:])[0]
    if "a" in opts:
        order = "snrvmo"
    else:
        order = [o for o in "snrvmo" if o in opts] or ["s"]
    ctx.out(" ".join(values[o] for o in order) + "\n")
    return 0


def _uid(ctx):
    security = ctx.host.container.get("securityContext") or {}
    pod_security = (ctx.host.pod.get("spec") or {}).get("securityContext") or {}
    return int(security.get("runAsUser", pod_security.get("runAsUser", 0)) or 0)


def cmd_id(ctx, argv):
    uid = _uid(ctx)
    name = "root" if uid == 0 else None
    if "-u" in argv:
        ctx.out("%d\n" % uid)
    elif "-un" in argv or ("-u" in argv and "-n" in argv):
        ctx.out((name or str(uid)) + "\n")
    else:
        shown = "%d(%s)" % (uid, name) if name else "%d" % uid
        ctx.out("uid=%s gid=%s groups=%s\n" % (shown, shown, shown))
    return 0


def cmd_whoami(ctx, argv):
    uid = _uid(ctx)
    if uid == 0:
        ctx.out("root\n")
        return 0
    ctx.err("whoami: cannot find name for user ID %d\n" % uid if not _busybox(ctx) else
            "whoami: unknown uid %d\n" % uid)
    return 1


def cmd_nproc(ctx, argv):
    text = ctx.fs.read("/proc/cpuinfo") or ""
    ctx.out("%d\n" % max(1, text.count("processor\t:")))
    return 0


def cmd_seq(ctx, argv):
    nums = [a for a in argv[1:] if not a.startswith("-s")]
    try:
        values = [int(n) for n in nums]
    except ValueError:
        ctx.err("seq: invalid floating point argument: '%s'\n" % nums[0])
        return 1
    if len(values) == 1:
        first, step, last = 1, 1, values[0]
    elif len(values) == 2:
        first, step, last = values[0], 1, values[1]
    elif len(values) == 3:
        first, step, last = values
    else:
        ctx.err("seq: missing operand\n")
        return 1
    if step == 0:
        return 1
    ctx.out("".join("%d\n" % v for v in range(first, last + (1 if step > 0 else -1), step)))
    return 0


def cmd_timeout(ctx, argv):
    """timeout DURATION COMMAND...: stops the command after DURATION (exit 124)."""
    args = argv[1:]
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-s", "-k") and args:
            args.pop(0)
    if len(args) < 2:
        ctx.err("timeout: missing operand\n")
        return 125
    match = re.match(r"^(\d+(?:\.\d*)?)([smhd]?)$", args[0])
    if not match:
        ctx.err("timeout: invalid time interval '%s'\n" % args[0])
        return 125
    limit = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    gen = ctx.shell.execute(args[1:], ctx.io)
    elapsed = 0.0
    try:
        delay = next(gen)
        while True:
            delay = float(delay or 0)
            if elapsed + delay >= limit:
                yield limit - elapsed
                gen.close()
                return 124
            elapsed += delay
            yield delay
            delay = gen.send(None)
    except StopIteration as stop:
        return stop.value or 0


def cmd_shell(ctx, argv):
    return (yield from ctx.run_shell(argv))


def cmd_xargs(ctx, argv):
    args = argv[1:] or ["echo"]
    items = (ctx.stdin or "").split()
    return (yield from ctx.shell.execute(args + items, IO("", ctx.stdout, ctx.stderr)))


def cmd_which(ctx, argv):
    status = 0
    for name in argv[1:]:
        if ctx.host.find_command(name) is not None:
            ctx.out(ctx.host.command_path(name) + "\n")
        else:
            status = 1
    return status


def cmd_df(ctx, argv):
    ctx.out("Filesystem     1K-blocks     Used Available Use% Mounted on\n"
            "overlay        101430960 23456788  77957788  24% /\n"
            "tmpfs              65536        0     65536   0% /dev\n"
            "shm                65536        0     65536   0% /dev/shm\n")
    return 0


def cmd_ps(ctx, argv):
    command = " ".join(ctx.host.argv) or "/pause"
    ctx.out("PID   USER     TIME  COMMAND\n    1 root      0:00 %s\n" % command)
    return 0


def cmd_ip(ctx, argv):
    """`ip addr`/`ip -o link`/`ip route`: the pod's lo and eth0, then the interfaces a network driver moved into
    the pod (runtime.interfaces_for, e.g. DRANET's RDMA NICs)."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    oneline = "-o" in argv
    what = args[0] if args else "addr"
    ip = ctx.host.pod_ip or "10.128.0.2"
    extra = ctx.host.runtime.interfaces_for(ctx.host)
    if what.startswith("r"):
        ctx.out("default via %s dev eth0\n%s/24 dev eth0 proto kernel scope link src %s\n" % (
            ".".join(ip.split(".")[:3] + ["1"]), ".".join(ip.split(".")[:3] + ["0"]), ip))
        for iface in extra:
            for cidr in iface.get("addresses") or ():
                ctx.out("%s dev %s proto kernel scope link src %s\n" % (
                    ipaddress.ip_interface(cidr).network, iface["name"], cidr.split("/", 1)[0]))
        return 0
    lines = [("1", "lo", "<LOOPBACK,UP,LOWER_UP>", "65536", "127.0.0.1/8"),
             ("2", "eth0@if7", "<BROADCAST,MULTICAST,UP,LOWER_UP>", "1500", ip + "/24")]
    for index, name, flags, mtu, addr in lines:
        if oneline and what.startswith("l"):
            ctx.out("%s: %s: %s mtu %s qdisc noqueue state UP mode DEFAULT group default \\    link/ether "
                    "0a:58:0a:80:00:02 brd ff:ff:ff:ff:ff:ff\n" % (index, name, flags, mtu))
        elif oneline:
            ctx.out("%s: %s    inet %s scope global %s\\       valid_lft forever preferred_lft forever\n" % (
                index, name.split("@", 1)[0], addr, name.split("@", 1)[0]))
        else:
            ctx.out("%s: %s: %s mtu %s qdisc noqueue state UP group default\n" % (index, name, flags, mtu))
            if not what.startswith("l"):
                ctx.out("    inet %s scope global %s\n" % (addr, name.split("@", 1)[0]))
    for offset, iface in enumerate(extra):
        index, name, mtu, mac = len(lines) + 1 + offset, iface["name"], iface.get("mtu", 1500), iface.get("mac", "")
        if what.startswith("l"):
            ctx.out(("%d: %s: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu %s qdisc mq state UP mode DEFAULT group default "
                     "qlen 1000%slink/ether %s brd ff:ff:ff:ff:ff:ff\n") % (
                         index, name, mtu, "\\    " if oneline else "\n    ", mac))
        elif oneline:
            for cidr in iface.get("addresses") or ():
                ctx.out("%d: %s    inet %s scope global %s\\       valid_lft forever preferred_lft forever\n" % (
                    index, name, cidr, name))
        else:
            ctx.out("%d: %s: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu %s qdisc mq state UP group default qlen 1000\n"
                    % (index, name, mtu))
            for cidr in iface.get("addresses") or ():
                ctx.out("    inet %s scope global %s\n" % (cidr, name))
    return 0


# ===================================================================================== DNS
def cmd_nslookup(ctx, argv):
    names = [a for a in argv[1:] if not a.startswith("-")]
    if not names:
        return 1
    name = names[0]
    namespace = ctx.host.pod["metadata"]["namespace"]
    ip = ctx.host.runtime.dns_lookup(name, namespace)
    fqdn = _fqdn(ctx, name, namespace)
    ctx.out("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n" if _busybox(ctx) else
            "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n")
    if ip is None:
        ctx.out("** server can't find %s: NXDOMAIN\n\n" % name)
        return 1
    ctx.out("Name:\t%s\nAddress: %s\n\n" % (fqdn, ip))
    return 0


def _fqdn(ctx, name, namespace):
    if name.endswith(".cluster.local") or re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        return name
    parts = name.split(".")
    if len(parts) == 1:
        return "%s.%s.svc.cluster.local" % (name, namespace)
    if len(parts) == 2:
        return "%s.svc.cluster.local" % name
    return name + ".cluster.local" if parts[-1] == "svc" else name


def cmd_getent(ctx, argv):
    if len(argv) < 3 or argv[1] not in ("hosts", "ahosts"):
        return 1
    namespace = ctx.host.pod["metadata"]["namespace"]
    ip = ctx.host.runtime.dns_lookup(argv[2], namespace)
    if ip is None:
        return 2
    ctx.out("%-15s %s\n" % (ip, _fqdn(ctx, argv[2], namespace)))
    return 0


# ===================================================================================== HTTP clients
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def _parse_url(url):
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme or "http"
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = None
    return scheme, parts.hostname or "", port, parts.path or "/", parts.query


_CURL_FLAGS = {"-s": "silent", "--silent": "silent", "-S": "show_error", "--show-error": "show_error",
               "-f": "fail", "--fail": "fail", "--fail-with-body": "fail_body", "-i": "include",
               "--include": "include", "-I": "head", "--head": "head", "-L": "location", "--location": "location",
               "-k": "insecure", "--insecure": "insecure", "-v": "verbose", "--verbose": "verbose",
               "--retry-connrefused": "retry_refused", "-N": "", "--no-buffer": "", "--compressed": "",
               "-g": "", "--globoff": "", "-4": "", "-6": "", "--http1.1": "", "-#": "", "--no-progress-meter": ""}
_CURL_VALUES = {"-o": "output", "--output": "output", "-w": "write_out", "--write-out": "write_out",
                "-H": "header", "--header": "header", "-X": "method", "--request": "method", "-d": "data",
                "--data": "data", "--data-raw": "data", "--data-binary": "data", "--json": "json",
                "-m": "max_time", "--max-time": "max_time", "--connect-timeout": "connect_timeout",
                "--retry": "retry", "--retry-delay": "retry_delay", "--retry-max-time": "", "-A": "agent",
                "--user-agent": "agent", "--cacert": "cacert", "-u": "user", "--user": "user", "-e": "",
                "--resolve": "", "--cert": "", "--key": "", "--unix-socket": "", "-x": "", "--proxy": ""}


def _curl_args(args):
    opts = {"header": [], "data": []}
    urls = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg in _CURL_FLAGS:
            if _CURL_FLAGS[arg]:
                opts[_CURL_FLAGS[arg]] = True
            continue
        name, eq, inline = arg.partition("=")
        if name in _CURL_VALUES and name.startswith("--") and eq:
            value = inline
        elif arg in _CURL_VALUES:
            if index >= len(args):
                return None, "option %s: requires parameter" % arg
            value = args[index]
            index += 1
            name = arg
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            letters = arg[1:]
            for pos, letter in enumerate(letters):
                flag = "-" + letter
                if flag in _CURL_FLAGS:
                    if _CURL_FLAGS[flag]:
                        opts[_CURL_FLAGS[flag]] = True
                elif flag in _CURL_VALUES:
                    rest = letters[pos + 1:]
                    if rest:
                        value = rest
                    elif index < len(args):
                        value = args[index]
                        index += 1
                    else:
                        return None, "option %s: requires parameter" % flag
                    _curl_set(opts, _CURL_VALUES[flag], value)
                    break
                else:
                    return None, "option %s: is unknown" % arg
            continue
        elif arg.startswith("-"):
            return None, "option %s: is unknown" % arg
        else:
            urls.append(arg)
            continue
        _curl_set(opts, _CURL_VALUES[name], value)
    return (opts, urls), None


def _curl_set(opts, key, value):
    if not key:
        return
    if key in ("header", "data"):
        opts[key].append(value)
    else:
        opts[key] = value


def cmd_curl(ctx, argv):
    parsed, error = _curl_args(argv[1:])
    if error:
        ctx.err("curl: %s\ncurl: try 'curl --help' or 'curl --manual' for more information\n" % error)
        return 2
    opts, urls = parsed
    if not urls:
        ctx.err("curl: no URL specified\ncurl: try 'curl --help' or 'curl --manual' for more information\n")
        return 2
    status = 0
    for url in urls:
        attempts = int(opts.get("retry") or 0) + 1
        for attempt in range(attempts):
            status = yield from _curl_one(ctx, opts, url, last=attempt == attempts - 1)
            if status in (0, 22) or status == 6:
                break
            if status == 7 and not opts.get("retry_refused"):
                break
            yield float(opts.get("retry_delay") or min(2 ** attempt, 600))
    return status


def _curl_error(ctx, opts, code, message):
    if not opts.get("silent") or opts.get("show_error"):
        ctx.err("curl: (%d) %s\n" % (code, message))
    return code


def _curl_one(ctx, opts, url, last):
    scheme, host, port, path, query = _parse_url(url)
    if port is None or not host:
        return _curl_error(ctx, opts, 3, "URL rejected: Malformed input to a URL function")
    if scheme not in ("http", "https"):
        return _curl_error(ctx, opts, 1, 'Protocol "%s" not supported' % scheme)
    headers = {}
    for header in opts["header"]:
        name, _colon, value = header.partition(":")
        headers[name.strip()] = value.strip()
    data = "&".join(_curl_data(ctx, d) for d in opts["data"])
    if opts.get("json"):
        data = opts["json"]
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Accept", "application/json")
    elif data:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    method = opts.get("method") or ("HEAD" if opts.get("head") else ("POST" if data else "GET"))
    headers.setdefault("User-Agent", opts.get("agent") or "curl/8.11.0")
    headers.setdefault("Accept", "*/*")
    headers.setdefault("Host", host if port in (80, 443) else "%s:%d" % (host, port))
    result = ctx.host.runtime.request(ctx.host, method, host, port, path, query, headers, data.encode())
    limit = float(opts.get("max_time") or opts.get("connect_timeout") or 0)
    if result[0] == "resolve":
        return _curl_error(ctx, opts, 6, "Could not resolve host: %s" % host)
    if result[0] == "refused":
        return _curl_error(ctx, opts, 7, "Failed to connect to %s port %d after 0 ms: Couldn't connect to server"
                           % (host, port))
    if result[0] == "timeout":
        if limit:
            yield limit
            return _curl_error(ctx, opts, 28, "Connection timed out after %d milliseconds" % int(limit * 1000))
        yield 130.0
        return _curl_error(ctx, opts, 28, "Failed to connect to %s port %d after 130000 ms: Couldn't connect to "
                           "server" % (host, port))
    status, out_headers, body = result[1:]
    if scheme == "https" and not opts.get("insecure") and not opts.get("cacert"):
        return _curl_error(ctx, opts, 60, "SSL certificate problem: unable to get local issuer certificate")
    if opts.get("fail") and status >= 400 and not opts.get("fail_body"):
        code = _curl_error(ctx, opts, 22, "The requested URL returned error: %d" % status)
        _curl_write_out(ctx, opts, status, body, url, out_headers)
        return code
    text = body.decode("utf-8", "replace")
    shown = ""
    if opts.get("include") or opts.get("head"):
        shown += "HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, ""))
        shown += "".join("%s: %s\r\n" % item for item in out_headers.items())
        shown += "content-length: %d\r\n\r\n" % len(body) if "Content-Length" not in out_headers else "\r\n"
    if not opts.get("head"):
        shown += text
    if opts.get("output") and opts["output"] != "-":
        if opts["output"] != "/dev/null":
            ctx.fs.write(ctx.path(opts["output"]), shown)
    else:
        ctx.out(shown)
    _curl_write_out(ctx, opts, status, body, url, out_headers)
    if opts.get("fail_body") and status >= 400:
        return _curl_error(ctx, opts, 22, "The requested URL returned error: %d" % status)
    return 0


def _curl_data(ctx, value):
    if value.startswith("@"):
        return ctx.fs.read(ctx.path(value[1:])) or ""
    return value


def _curl_write_out(ctx, opts, status, body, url, headers=None):
    fmt = opts.get("write_out")
    if not fmt:
        return
    received = {str(k).lower(): v for k, v in (headers or {}).items()}
    fmt = re.sub(r"%header\{([^}]+)\}", lambda m: received.get(m.group(1).lower(), ""), fmt)   # curl 7.84+
    values = {"http_code": "%03d" % status, "response_code": "%d" % status, "size_download": str(len(body)),
              "time_total": "0.001234", "time_connect": "0.000321", "url_effective": url,
              "content_type": "text/plain", "http_version": "1.1", "exitcode": "0"}
    text = re.sub(r"%\{(\w+)\}", lambda m: values.get(m.group(1), ""), fmt)
    text = text.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")
    ctx.out(text)


def cmd_wget(ctx, argv):
    """BusyBox wget: -q, -O FILE (- for stdout), -T SEC, --spider, -S."""
    args = argv[1:]
    quiet, output, spider, timeout, url = False, None, False, 0.0, None
    while args:
        arg = args.pop(0)
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-O", "--output-document") and args:
            output = args.pop(0)
        elif arg.startswith("-O") and len(arg) > 2:
            output = arg[2:]
        elif arg == "-qO-":
            quiet, output = True, "-"
        elif arg in ("-T", "--timeout") and args:
            timeout = float(args.pop(0))
        elif arg == "--spider":
            spider = True
        elif arg.startswith("-"):
            if "q" in arg:
                quiet = True
            if arg.endswith("O-"):
                output = "-"
        else:
            url = arg
    if url is None:
        ctx.err("BusyBox v1.36.1 (2023-05-18 22:34:17 UTC) multi-call binary.\n\nUsage: wget [-cqS] [--spider] "
                "[-O FILE] [-o LOGFILE] [--header STR]\n")
        return 1
    scheme, host, port, path, query = _parse_url(url)
    result = ctx.host.runtime.request(ctx.host, "HEAD" if spider else "GET", host, port, path, query,
                                      {"User-Agent": "Wget", "Host": host}, b"")
    if result[0] == "resolve":
        ctx.err("wget: bad address '%s'\n" % host)
        return 1
    if not quiet:
        ctx.err("Connecting to %s (%s:%d)\n" % (host, host, port))
    if result[0] in ("refused", "timeout"):
        if result[0] == "timeout":
            yield timeout or 130.0
            ctx.err("wget: download timed out\n")
            return 1
        ctx.err("wget: can't connect to remote host (%s): Connection refused\n" % result[1])
        return 1
    status, body = result[1], result[3]
    if scheme == "https":
        pass
    if status >= 400:
        ctx.err("wget: server returned error: HTTP/1.1 %d %s\n" % (status, _REASONS.get(status, "")))
        return 1
    if spider:
        if not quiet:
            ctx.err("remote file exists\n")
        return 0
    text = body.decode("utf-8", "replace")
    target = output or posixpath.basename(path) or "index.html"
    if target == "-":
        if not quiet:
            ctx.err("writing to stdout\n")
        ctx.out(text)
    else:
        ctx.fs.write(ctx.path(target), text)
        if not quiet:
            ctx.err("saving to '%s'\n%s 100%% |********************************| %d  0:00:00 ETA\n'%s' saved\n"
                    % (target, target, len(body), target))
    return 0


# ===================================================================================== registry
CORE = {
    "ls": cmd_ls, "cat": cmd_cat, "head": cmd_head, "tail": cmd_tail, "wc": cmd_wc, "grep": cmd_grep,
    "egrep": cmd_grep, "fgrep": cmd_grep, "sort": cmd_sort, "uniq": cmd_uniq, "cut": cmd_cut, "tr": cmd_tr,
    "sed": cmd_sed, "awk": cmd_awk, "tee": cmd_tee, "touch": cmd_touch, "mkdir": cmd_mkdir, "rm": cmd_rm,
    "cp": cmd_cp, "basename": cmd_basename, "dirname": cmd_dirname, "sleep": cmd_sleep, "env": cmd_env,
    "printenv": cmd_printenv, "hostname": cmd_hostname, "date": cmd_date, "uname": cmd_uname, "id": cmd_id,
    "whoami": cmd_whoami, "nproc": cmd_nproc, "seq": cmd_seq, "timeout": cmd_timeout, "xargs": cmd_xargs,
    "which": cmd_which, "df": cmd_df, "sh": cmd_shell, "bash": cmd_shell, "ash": cmd_shell, "dash": cmd_shell,
}
TOOLS = {"curl": ("curl", cmd_curl), "wget": ("wget", cmd_wget), "nslookup": ("nslookup", cmd_nslookup),
         "getent": ("getent", cmd_getent), "ip": ("ip", cmd_ip), "ps": ("core", cmd_ps)}


def _printf(ctx, argv):
    if len(argv) < 2:
        ctx.err("printf: missing operand\n")
        return 1
    ctx.out(printf_format(argv[1], argv[2:]))
    return 0


def _echo(ctx, argv):
    gen = ctx.shell.execute(["echo"] + argv[1:], ctx.io)
    return (yield from gen)


def register_all(runtime):
    """Register the commands every simulated image family may ship."""
    for name, fn in CORE.items():
        runtime.register_command(name, fn, tool="core")
    for name, (tool, fn) in TOOLS.items():
        runtime.register_command(name, fn, tool=tool)
    runtime.register_command("printf", _printf, tool="core")
    runtime.register_command("echo", _echo, tool="core")
    runtime.register_command("true", lambda ctx, argv: 0, tool="core")
    runtime.register_command("false", lambda ctx, argv: 1, tool="core")
    runtime.register_command("test", lambda ctx, argv: ctx.shell.execute(argv, ctx.io), tool="core")
    runtime_tar.register(runtime)
