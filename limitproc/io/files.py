"""Reading JSON exactly and writing files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from ..limits import check_number_text

__all__ = ["FloatLiteral", "atomic_write", "parse_json", "read_json"]


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


def atomic_write(path, data, mode: str = "w") -> None:
    """Write ``data`` (str or bytes, or a callable taking a file object) to ``path`` atomically.

    The file appears complete or not at all: it is written beside the target and renamed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        with os.fdopen(fd, mode if isinstance(data, str) or callable(data) else "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
