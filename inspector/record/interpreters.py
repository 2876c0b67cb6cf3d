"""Which Python a process runs, read from its files without running its interpreter.

The executable's name (python3.11, python3.13t) or a libpython mapped into the process says
it is Python and which X.Y; the full version comes from the ELF that holds the interpreter
(libpython, or the executable of a static build): `Py_Version` (3.11+) from its symbol table,
else the PY_VERSION string in its .rodata. A free-threaded build is told by the `t` ABI
suffix of either name or by the "free-threading build" text of its sys.version; its version
is recorded with that suffix ("3.13.0t"), as CPython names such builds.
"""

from __future__ import annotations

import functools
import os
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from inspector.record import procfs
from inspector.record.procfs import Gone, Unreadable

_PY_EXE = re.compile(r"^python(\d+)\.(\d+)(t?)(?:-dbg)?$")
_PY_LIB = re.compile(r"(/\S*libpython(\d+)\.(\d+)(t?)[a-z]*\.so[.\d]*)")
_PY_GENERIC = re.compile(r"^(?:python|python\d)$")
_PY_VERSION_TEXT = re.compile(rb"(?<![0-9.])(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?\+?)\x00")
_FREE_THREADING_TEXT = b"free-threading build"  # in sys.version of 3.13t and later
_LEVELS = {0xA: "a", 0xB: "b", 0xC: "rc", 0xF: ""}
_MAX_SECTION_BYTES = 64 << 20  # larger is not an interpreter's


@dataclass(frozen=True)
class Interpreter:
    version: str | None  # "3.9.18", "3.13.0t"; "3.9" where only the name said it
    gil: str  # "enabled" or "disabled", as the process runs
    free_threaded: bool


def identify(pid: int, exe: str | None, cmdline: list[str]) -> Interpreter | None:
    """The interpreter a process runs, or None if it is not Python."""
    short: str | None = None
    free_threaded = False
    runtime: str | None = None  # the ELF file holding the interpreter
    is_python = False
    if exe:
        base = os.path.basename(exe)
        m = _PY_EXE.match(base)
        if m:
            is_python, short, free_threaded = True, f"{m[1]}.{m[2]}", bool(m[3])
            runtime = exe
        elif _PY_GENERIC.match(base):
            is_python, runtime = True, exe
    try:
        maps = procfs.read_text(f"/proc/{pid}/maps")
    except (Gone, Unreadable):
        maps = ""
    lib = _PY_LIB.search(maps)
    if lib:
        is_python = True
        short = short or f"{lib[2]}.{lib[3]}"
        free_threaded = free_threaded or bool(lib[4])
        runtime = lib[1]
    if not is_python:
        return None
    full, marked_free = elf_python_version(runtime) if runtime else (None, False)
    if full is not None and short is not None and not full.startswith(short + "."):
        full = None  # not this interpreter's file after all
    free_threaded = free_threaded or marked_free
    version = full or short
    if version is not None and free_threaded:
        version += "t"
    return Interpreter(version, _gil(pid, cmdline, free_threaded), free_threaded)


def _gil(pid: int, cmdline: list[str], free_threaded: bool) -> str:
    """A free-threaded build runs without the GIL unless -X gil=1 or PYTHON_GIL=1."""
    if not free_threaded:
        return "enabled"
    if "gil=1" in " ".join(cmdline):
        return "enabled"
    try:
        env = procfs.read_text(f"/proc/{pid}/environ").split("\x00")
    except (Gone, Unreadable):
        return "disabled"
    return "enabled" if "PYTHON_GIL=1" in env else "disabled"


def elf_python_version(path: str) -> tuple[str | None, bool]:
    """(full version, free-threaded) of the interpreter in an ELF file, read from the file."""
    try:
        st = os.stat(path)
    except OSError:
        return None, False
    return _elf_python_version(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _elf_python_version(path: str, size: int, mtime_ns: int) -> tuple[str | None, bool]:
    try:
        with open(path, "rb") as f:
            elf = _Elf(f)
            rodata = elf.section(".rodata") or b""
            value = elf.symbol_bytes("Py_Version", 4)
    except (OSError, ValueError, struct.error):
        return None, False
    free = _FREE_THREADING_TEXT in rodata
    if value is not None:  # 0xMMmmppLS: major, minor, micro, level, serial
        hexversion = int.from_bytes(value, "little")
        major, minor, micro = hexversion >> 24, hexversion >> 16 & 0xFF, hexversion >> 8 & 0xFF
        level, serial = _LEVELS.get(hexversion >> 4 & 0xF), hexversion & 0xF
        if major >= 3 and level is not None:
            return f"{major}.{minor}.{micro}" + (f"{level}{serial}" if level else ""), free
    # PY_VERSION, maybe the tail of a longer string (the linker merges "3.9.18" into
    # "/root/.pyenv/versions/3.9.18"): trusted only if it is the one such string
    found = {m.decode() for m in _PY_VERSION_TEXT.findall(rodata) if m.startswith(b"3.")}
    return (found.pop() if len(found) == 1 else None), free


class _Elf:
    """The little of a 64-bit little-endian ELF file needed here, read section by section
    (a libpython is 15-30 MB; its .rodata and .dynsym about 1 MB)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        head = self._read(0, 64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise ValueError("not a 64-bit little-endian ELF file")
        shoff, = struct.unpack_from("<Q", head, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
        table = self._read(shoff, shentsize * shnum)
        headers = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize)
                   for i in range(shnum)]
        names = self._read(headers[shstrndx][4], headers[shstrndx][5])
        # name -> (address, file offset, size)
        self.sections = {names[h[0]:names.index(b"\x00", h[0])].decode(errors="replace"):
                         (h[3], h[4], h[5]) for h in headers}

    def _read(self, offset: int, size: int) -> bytes:
        if size > _MAX_SECTION_BYTES:
            raise ValueError("section too large for an interpreter")
        self.f.seek(offset)
        data = self.f.read(size)
        if len(data) != size:
            raise ValueError("truncated ELF file")
        return data

    def section(self, name: str) -> bytes | None:
        found = self.sections.get(name)
        return None if found is None else self._read(found[1], found[2])

    def symbol_bytes(self, name: str, size: int) -> bytes | None:
        """The bytes a dynamic symbol's address holds in the file."""
        dynsym, strings = self.section(".dynsym"), self.section(".dynstr")
        if dynsym is None or strings is None:
            return None
        want = name.encode() + b"\x00"
        for at in range(0, len(dynsym) - 23, 24):
            st_name, _info, _other, _shndx, st_value, _size = struct.unpack_from(
                "<IBBHQQ", dynsym, at)
            if strings[st_name:st_name + len(want)] != want:
                continue
            for address, offset, length in self.sections.values():
                if address and address <= st_value < address + length:
                    return self._read(offset + st_value - address, size)
            return None
        return None
