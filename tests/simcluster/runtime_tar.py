"""`tar` for simulated containers: what `kubectl cp` runs through exec (`tar cf - PATH` to copy out,
`tar -xmf - -C DIR` to copy in), built on Python's tarfile.

File contents in the simulated filesystem are text; bytes that are not UTF-8 survive a round trip as
surrogate escapes, so binary files copy in and out unchanged. Archives are POSIX ustar/GNU as GNU tar and
busybox write them; members are regular files and directories (links and devices are skipped).
"""
from __future__ import annotations

import io
import posixpath
import tarfile

ENCODING = ("utf-8", "surrogateescape")


def to_bytes(text):
    return (text or "").encode(*ENCODING)


def to_text(data):
    return data.decode(*ENCODING)


def _parse(argv):
    """(mode, archive, directory, members, verbose) or an error string."""
    args = list(argv[1:])
    mode, archive, directory, verbose = None, None, None, False
    members = []
    if args and not args[0].startswith("-"):
        args[0] = "-" + args[0]            # old-style bundled flags: `tar cf - x`
    while args:
        arg = args.pop(0)
        if arg == "--":
            members.extend(args)
            break
        if arg.startswith("--"):
            name, _unused, value = arg[2:].partition("=")
            if name == "directory":
                directory = value or (args.pop(0) if args else None)
            elif name == "file":
                archive = value or (args.pop(0) if args else None)
            elif name in ("extract", "get"):
                mode = "x"
            elif name == "create":
                mode = "c"
            elif name == "list":
                mode = "t"
            continue
        if arg.startswith("-") and len(arg) > 1:
            for flag in arg[1:]:
                if flag in "cxt":
                    mode = flag
                elif flag == "f":
                    if not args:
                        return "option requires an argument -- 'f'"
                    archive = args.pop(0)
                elif flag == "C":
                    if not args:
                        return "option requires an argument -- 'C'"
                    directory = args.pop(0)
                elif flag == "v":
                    verbose = True
            continue
        members.append(arg)
    if mode is None:
        return "You must specify one of the '-Acdtrux', '--delete' or '--test-label' options"
    return mode, archive, directory, members, verbose


def cmd_tar(ctx, argv):
    parsed = _parse(argv)
    busybox = ctx.host.profile.userland == "busybox"
    if isinstance(parsed, str):
        ctx.err("tar: %s\nTry 'tar --help' or 'tar --usage' for more information.\n" % parsed)
        return 2
    mode, archive, directory, members, verbose = parsed
    base = ctx.path(directory) if directory else ctx.cwd
    if directory and not ctx.fs.isdir(base):
        ctx.err("tar: %s: Cannot open: No such file or directory\n" % directory if not busybox else
                "tar: can't change directory to '%s': No such file or directory\n" % directory)
        return 2
    if mode == "c":
        return _create(ctx, archive, base, members, verbose, busybox)
    return _extract(ctx, archive, base, members, mode == "t" or verbose, mode == "t", busybox)


def _create(ctx, archive, base, members, verbose, busybox):
    if not members:
        ctx.err("tar: Cowardly refusing to create an empty archive\n" if not busybox else "tar: empty archive\n")
        return 2
    buf = io.BytesIO()
    status = 0
    warned = False
    mtime = int(ctx.now())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            path = member if member.startswith("/") else posixpath.join(base, member)
            path = posixpath.normpath(path)
            if not ctx.fs.exists(path):
                ctx.err("tar: %s: Cannot stat: No such file or directory\n" % member if not busybox else
                        "tar: %s: No such file or directory\n" % member)
                status = 2
                continue
            name = member
            if name.startswith("/"):
                name = name.lstrip("/")
                if not warned:
                    ctx.err("tar: Removing leading `/' from member names\n" if not busybox else
                            "tar: removing leading '/' from member names\n")
                    warned = True
            for item_path, item_name in _walk(ctx.fs, path, posixpath.normpath(name) if name else "."):
                info = tarfile.TarInfo(item_name)
                info.mtime = mtime
                if ctx.fs.isdir(item_path):
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                else:
                    data = to_bytes(ctx.fs.read(item_path))
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
                if verbose:
                    ctx.err(item_name + "\n")
    data = buf.getvalue()
    if archive in (None, "-"):
        ctx.out(to_text(data))
    else:
        ctx.fs.write(ctx.path(archive), to_text(data))
    return status


def _walk(fs, path, name):
    yield path, name
    if fs.isdir(path):
        for child in fs.listdir(path):
            yield from _walk(fs, posixpath.join(path, child), posixpath.join(name, child))


def _extract(ctx, archive, base, wanted, verbose, list_only, busybox):
    if archive in (None, "-"):
        data = to_bytes(ctx.stdin)
    else:
        text = ctx.fs.read(ctx.path(archive))
        if text is None:
            ctx.err("tar: %s: Cannot open: No such file or directory\n" % archive)
            return 2
        data = to_bytes(text)
    if not data:
        ctx.err("tar: This does not look like a tar archive\n" if not busybox else "tar: short read\n")
        return 2
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
        items = tar.getmembers()
    except (tarfile.TarError, EOFError):
        ctx.err("tar: This does not look like a tar archive\ntar: Exiting with failure status due to previous "
                "errors\n" if not busybox else "tar: invalid tar magic\n")
        return 2
    status = 0
    for info in items:
        name = posixpath.normpath(info.name.lstrip("/"))
        if wanted and not any(name == w.strip("/") or name.startswith(w.strip("/") + "/") for w in wanted):
            continue
        if name == ".." or name.startswith("../"):
            ctx.err("tar: %s: Member name contains '..'\n" % info.name)
            status = 2
            continue
        if verbose:
            ctx.out(info.name + "\n")
        if list_only:
            continue
        dest = posixpath.normpath(posixpath.join(base, name))
        if info.isdir():
            ctx.fs.mkdir(dest)
            continue
        if not info.isfile():
            continue
        problem = ctx.fs.writable(dest)
        if problem == "Directory nonexistent":
            ctx.fs.mkdir(posixpath.dirname(dest))
            problem = ctx.fs.writable(dest)
        if problem:
            ctx.err("tar: %s: Cannot open: %s\n" % (info.name, problem))
            status = 2
            continue
        ctx.fs.write(dest, to_text(tar.extractfile(info).read()))
    return status


def register(runtime):
    runtime.register_command("tar", cmd_tar, tool="core")
