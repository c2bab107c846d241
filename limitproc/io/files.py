"""Reading JSON exactly and writing files atomically."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from ..limits import check_number_text

__all__ = [
    "FloatLiteral",
    "Terminated",
    "atomic_write",
    "check_keys",
    "field_name",
    "json_type",
    "parse_json",
    "read_json",
    "read_npz_members",
]


class FloatLiteral(Fraction):
    """A JSON number written with a fraction or exponent, read as exactly the decimal written.

    Raw-data inputs remember that it was a float, to check orthogonality with a tolerance.
    """


def read_json(path, field: str = "input"):
    """Parse a JSON file; decimal literals become exact :class:`FloatLiteral` values."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(field, f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return parse_json(text, field)


def parse_json(text: str, field: str = "input"):
    """Parse JSON text; every number is checked against the limits on digits and exponent
    (:mod:`limitproc.limits`) before it is built."""
    try:
        return json.loads(text, parse_float=_float_literal, parse_int=_int_literal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(field, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(field, "JSON nested too deeply") from None
    except InputError as exc:
        raise InputError(field, exc.problem) from None
    except ValueError as exc:
        raise InputError(field, str(exc)) from None


def _int_literal(text: str) -> int:
    check_number_text(text, "number")
    return int(text)


def _float_literal(text: str) -> FloatLiteral:
    check_number_text(text, "number")
    return FloatLiteral(text)


def _reject_constant(name):
    raise ValueError(f"{name} is not a number")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during :func:`atomic_write`: raised so the temp file is removed."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def _signals_raise():
    """SIGTERM and SIGHUP raise :class:`Terminated` (as SIGINT raises KeyboardInterrupt) while a write runs.

    Only in the main thread and only where no handler of the application is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _remove_stale(path: Path) -> None:
    """Remove the temp files a killed writer left beside ``path``: its process is gone."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split("-", 1)[0]
        try:
            if pid.isdigit():
                os.kill(int(pid), 0)  # raises if that writer no longer runs
                continue
            if tmp.stat().st_mtime >= _STARTED:
                continue
            tmp.unlink()
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                tmp.unlink()
        except OSError:
            pass


_STARTED = time.time()


def atomic_write(path, data, mode: str = "w") -> None:
    """Write ``data`` (str or bytes, or a callable taking a file object) to ``path`` atomically.

    The file appears complete or not at all: it is written beside the target and renamed, and the
    temp file is removed on any error or handled signal (SIGINT, SIGTERM, SIGHUP); temp files a
    killed run left (``.NAME.PID-*.tmp``) are removed by the next write to the same target. A
    symlink is written through (its target is replaced); a device or FIFO is written directly.
    """
    if not str(path):
        raise InputError("output", "empty file name")
    path = Path(os.path.realpath(path))
    binary = not (isinstance(data, str) or callable(data))
    file_mode = "wb" if binary else mode
    if path.exists() and not path.is_file():  # a device or a FIFO: nothing to rename over
        with open(path, file_mode) as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
        return
    _remove_stale(path)
    with _signals_raise():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
            with os.fdopen(fd, file_mode) as fh:
                if callable(data):
                    data(fh)
                else:
                    fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def json_type(value) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def field_name(key) -> str:
    """A key of a file as an error's field: escaped, so a message stays one line, and cut short."""
    text = key if isinstance(key, str) and key.isprintable() else repr(key)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def check_keys(data: dict, known) -> None:
    for key in data:
        if key not in known:
            raise InputError(field_name(key), f"unknown field (expected {', '.join(sorted(known))})")


def read_npz_members(path, known) -> dict:
    """Every member of a ``.npz`` file, read in full: ``np.load`` reads members lazily, so a corrupt
    member would only fail when first used; here each is read inside the one ``try``, and no pickle
    is ever loaded. A member not in ``known`` is refused."""
    import numpy as np

    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                if key not in known:
                    raise InputError(field_name(key), f"unknown member of the .npz file (expected {', '.join(known)})")
                arrays[key] = np.asarray(npz[key])
    except InputError:
        raise
    except OSError as exc:
        raise InputError("problem", f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError (pickled objects), ...
        raise InputError("problem", f"{path} is not a valid .npz file ({type(exc).__name__}: {str(exc)[:100]})") from None
    return arrays
