"""Hold app/requirements.txt to what the tests run.

Run where the current generation of the app's dependencies is installed
(app/tests/run.sh runs it in the Debian trixie test image). It fails when
  - a line is not an exact `name==version` pin, or a name is pinned twice;
  - requirements.in, or anything it needs on the Dockerfile's default base
    (Linux x86_64, Python 3.12), is not pinned, or a pin is not needed;
  - a pinned version differs from the version installed here, i.e. from
    the version the tests ran with;
  - some pins carry hashes and others do not (pip would refuse the file).
"""
import importlib.metadata as md
import os
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The platform the PyPI build installs for: the Dockerfile's default base,
# python:3.12-slim on amd64.
TARGET = {
    "python_version": "3.12", "python_full_version": "3.12.0", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
    "os_name": "posix", "platform_machine": "x86_64", "extra": "",
}
# PyPI names whose installed distribution here has another name: Debian
# builds psycopg2 from source, PyPI's prebuilt wheel is psycopg2-binary.
INSTALLED_AS = {"psycopg2-binary": "psycopg2"}


def read_pins(path):
    """{canonical name: (version, hash count)} from a pip requirements file."""
    pins, errors, current = {}, [], None
    for n, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line:
            continue
        if line.startswith("--hash="):
            if current is None:
                errors.append(f"{path}:{n}: a hash before any requirement")
            else:
                pins[current] = (pins[current][0], pins[current][1] + 1)
            continue
        hashes = len(re.findall(r"--hash=", line))
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(\s+--hash=\S+)*", line)
        if not m:
            errors.append(f"{path}:{n}: {line!r} is not an exact pin (want name==version)")
            current = None
            continue
        current = canonicalize_name(m.group(1))
        if current in pins:
            errors.append(f"{path}:{n}: {m.group(1)} is pinned twice")
        pins[current] = (m.group(2), hashes)
    return pins, errors


def read_names(path):
    names = []
    for raw in open(path, encoding="utf-8"):
        line = raw.split("#", 1)[0].strip()
        if line:
            names.append(canonicalize_name(Requirement(line).name))
    return names


def installed(name):
    return md.distribution(INSTALLED_AS.get(name, name))


def closure(roots):
    """Every distribution the roots need on TARGET: {name: needed by}."""
    needed, todo = {}, [(r, "requirements.in") for r in roots]
    while todo:
        name, by = todo.pop()
        if name in needed:
            continue
        needed[name] = by
        try:
            dist = installed(name)
        except md.PackageNotFoundError:
            continue  # reported by the version check
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate(TARGET):
                todo.append((canonicalize_name(req.name), name))
    return needed


def release(v):
    """A version without the .devN or +local tag a distribution's own build
    may add (Debian builds alembic 1.13.2 and Mako 1.3.9 as .dev0);
    pre- and post-releases still count."""
    v = Version(v)
    return v.epoch, v.release, v.pre, v.post


def main():
    notes = []
    pins, errors = read_pins(os.path.join(APP_DIR, "requirements.txt"))
    needed = closure(read_names(os.path.join(APP_DIR, "requirements.in")))
    for name, by in sorted(needed.items()):
        if name not in pins:
            errors.append(f"{name} is needed by {by} but not pinned in requirements.txt")
    for name, (version, _) in sorted(pins.items()):
        if name not in needed:
            errors.append(f"{name}=={version} is pinned but nothing in requirements.in needs it: remove it")
            continue
        try:
            tested = installed(name).version
        except md.PackageNotFoundError:
            errors.append(f"{name} is pinned at {version} but not installed here, so it is not tested")
            continue
        if release(tested) != release(version):
            errors.append(f"{name} is pinned at {version} but the tests run {tested}: pin {name}=={tested}")
        elif Version(tested) != Version(version):
            notes.append(f"{name} {tested} is Debian's build of the {version} sources")
    hashed = sorted(n for n, (_, h) in pins.items() if h)
    if hashed and len(hashed) != len(pins):
        errors.append(f"only {len(hashed)} of {len(pins)} pins carry hashes; pip needs them on every line")
    if errors:
        print("app/requirements.txt:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    for note in notes:
        print("  " + note)
    print(f"app/requirements.txt: {len(pins)} pins, the closure of requirements.in on Linux x86_64 Python 3.12, "
          f"each the version tested here (Python {sys.version.split()[0]}); "
          f"{'with hashes' if hashed else 'no hashes yet (PyPI unreachable when made)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
