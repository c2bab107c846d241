"""Write the hostile-input corpus of issue 12 (run from this directory; the files are checked in).

Each file is a minimal reproducer of one class of input that once crashed, hung or printed more
than one line; tests/test_fuzz.py asserts the one-line error each must now give.
"""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
GOOD = {"labels": [1, -1], "signs": [1, -1], "active": [[0], [1]]}


def good_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf,
        labels_num=np.array([1, -1]),
        labels_den=np.array([1, 1]),
        sq_norms_num=np.array([1, 1]),
        sq_norms_den=np.array([1, 1]),
        signs=np.array([1, -1], np.int8),
        active=np.packbits(np.array([[1, 0], [0, 1]], bool), axis=1),
        loss=np.array("half-mean"),
    )
    return buf.getvalue()


def npz_with(**changes) -> bytes:
    buf = io.BytesIO()
    with np.load(io.BytesIO(good_npz())) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(buf, **arrays)
    return buf.getvalue()


def main() -> None:
    files = {
        "nonutf8.json": b"\xff{}",
        "deep.json": b"[" * 2000,
        "digits_label.json": json.dumps(GOOD | {"labels": ["1" * 4301, -1]}).encode(),
        "digits_number.json": b'{"labels": [' + b"1" * 4301 + b', -1], "signs": [1, -1], "active": [[0], [1]]}',
        "loss_list.json": json.dumps(GOOD | {"loss": ["mean"]}).encode(),
        "sq_norms_number.json": json.dumps(GOOD | {"sq_norms": 1}).encode(),
        "magnitudes_object.json": json.dumps(GOOD | {"magnitudes": {"a": 1}}).encode(),
        "magnitudes_1e400.json": json.dumps(GOOD).encode()[:-1] + b', "magnitudes": [[1e400, 1], [1, 1]]}',
        "magnitudes_denormal.json": json.dumps(GOOD | {"magnitudes": [[5e-324, 1], [1, 1]]}).encode(),
        "index_1e99999.json": b'{"labels": [1], "signs": [1], "active": [[1e99999]]}',
        "key_newline.json": json.dumps(GOOD | {"a\nb": 1}).encode(),
        "sq_norms_1e99999.json": b'{"labels": [1, 1], "signs": [1], "active": [[0]], "sq_norms": [1e99999, 1]}',
        "label_1e-40000.json": json.dumps(GOOD | {"labels": ["1e-40000", -1]}).encode(),
        "label_1e400000.json": b'{"labels": [1e400000, -1], "signs": [1, -1], "active": [[0], [1]]}',
        "raw_1e400.json": b'{"inputs": [[1e400, 0], [0, 1]], "init": {"W": [[1, 1]], "a": [2]}, "labels": [1, -1]}',
        "truncated.npz": good_npz()[:200],
        "bitflip.npz": bytes(b ^ 0xFF if 60 <= i < 90 else b for i, b in enumerate(good_npz())),
        "object_array.npz": npz_with(signs=np.array([1, "x"], dtype=object)),
        "complex_signs.npz": npz_with(signs=np.array([1 + 0j, -1])),
        "scalar_signs.npz": npz_with(signs=np.array(1)),
        "string_magnitudes.npz": npz_with(magnitudes=np.array([["a", "b"], ["c", "d"]])),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("signs.npy", b"\x93NUMPY not really")
    files["bad_member.npz"] = buf.getvalue()
    for name, data in files.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
