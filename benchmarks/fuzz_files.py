"""Fuzz the problem loaders with generated files (issue 12): count clean errors, successes, crashes, hangs.

    python benchmarks/fuzz_files.py --count 10000 --seed 0 [--solve 500]

Each file (malformed JSON, wrong types, odd encodings, extreme numbers, raw data, corrupt or
hostile .npz) goes through ``Problem.from_file`` in a child process with a 20 s limit; with
``--solve K`` the first K also go through ``limitproc solve``. Reports the counts and the worst
time per input byte.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HANG = 20.0
CHILD = r"""
import sys, time
from limitproc import Problem
from limitproc.errors import InputError
for path in sys.argv[1:]:
    t = time.perf_counter()
    try:
        Problem.from_file(path); kind = "ok"
    except InputError as exc:
        kind = "clean" if "\n" not in str(exc) else "multiline"
    except BaseException as exc:
        kind = "crash:" + type(exc).__name__
    print(kind, time.perf_counter() - t, flush=True)
"""
EXTREME = [
    "1e400",
    "1e-400",
    "5e-324",
    "1e99999",
    "1e-40000",
    '"1e-4000"',
    '"1e400000"',
    "1" * 4301,
    '"' + "9" * 2500 + '"',
    "-0",
    "0",
    "true",
    "null",
    '"3/0"',
    '"x"',
    "[]",
    "{}",
    "1.5",
    "-1",
]


def number(rng):
    if rng.random() < 0.8:  # mostly ordinary values, so that many files are valid
        return rng.choice([str(rng.choice([-3, -1, 1, 2, 5])), f'"{rng.randint(1, 9)}/{rng.randint(1, 9)}"', "0.5"])
    return rng.choice(EXTREME)


def json_problem(rng) -> bytes:
    n, m = rng.randint(0, 4), rng.randint(0, 3)
    fields = {
        "labels": "[" + ",".join(number(rng) for _ in range(n)) + "]",
        "signs": "[" + ",".join(rng.choice(["1", "-1", "0", "2", "true", '"1"', "1.0"]) for _ in range(m)) + "]",
        "active": "["
        + ",".join(
            "[" + ",".join(rng.choice(["0", "1", "2", "-1", "1e99999", "1.0"]) for _ in range(rng.randint(0, 2))) + "]" for _ in range(m)
        )
        + "]",
        "sq_norms": "[" + ",".join(number(rng) for _ in range(n)) + "]",
        "loss": rng.choice(['"mean"', '"half-sum"', '["mean"]', "1", '"x"']),
        "magnitudes": rng.choice(["[[1, 2]]", '{"a": 1}', "[[1e400]]", "[[5e-324, 1]]", "1", "[[1, [2]]]"]),
        "a\nb": "1",
    }
    keys = ["labels", "signs", "active"] + rng.sample(sorted(fields)[:0] + ["sq_norms", "loss", "magnitudes", "a\nb"], rng.randint(0, 2))
    if rng.random() < 0.1:
        keys.remove(rng.choice(keys))
    text = "{" + ",".join(f"{json.dumps(k)}: {fields[k]}" for k in keys) + "}"
    return mutate(rng, text.encode())


def raw_problem(rng) -> bytes:
    d = rng.randint(1, 3)
    rows = lambda k: "[" + ",".join("[" + ",".join(number(rng) for _ in range(d)) + "]" for _ in range(k)) + "]"  # noqa: E731
    text = f'{{"inputs": {rows(rng.randint(0, 3))}, "init": {{"W": {rows(rng.randint(0, 2))}, "a": [{number(rng)}]}}, "labels": [{number(rng)}, 1]}}'
    return mutate(rng, text.encode())


def mutate(rng, data: bytes) -> bytes:
    how = rng.random()
    if how < 0.5:
        return data
    if how < 0.6:
        return b"\xff" + data
    if how < 0.15:
        return b"[" * rng.randint(100, 5000)
    if how < 0.25 and data:
        i = rng.randrange(len(data))
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    if how < 0.3:
        return data[: rng.randrange(len(data) + 1)]
    if how < 0.33:
        return data.decode("utf-8", "replace").encode("utf-16")
    return data


def npz_problem(rng) -> bytes:
    n, m = rng.randint(1, 4), rng.randint(1, 3)
    arrays = {
        "labels_num": np.array([rng.choice([1, -1, 0, 2**62]) for _ in range(n)]),
        "labels_den": np.array([rng.choice([1, 2, 0, -1]) for _ in range(n)]),
        "sq_norms_num": np.ones(n, np.int64),
        "sq_norms_den": np.ones(n, np.int64),
        "signs": np.array([rng.choice([1, -1]) for _ in range(m)], np.int8),
        "active": np.packbits(np.array([[rng.random() < 0.5 for _ in range(n)] for _ in range(m)]), axis=1),
        "loss": np.array("half-mean"),
    }
    odd = rng.random()
    if odd < 0.1:
        arrays["signs"] = np.array([1, "x"], dtype=object)
    elif odd < 0.2:
        arrays["signs"] = np.array([1 + 0j] * m)
    elif odd < 0.3:
        arrays["signs"] = np.array(1)
    elif odd < 0.4:
        arrays["magnitudes"] = np.array([["a"] * n] * m)
    elif odd < 0.5:
        arrays["magnitudes"] = np.full((m, n), rng.choice([np.inf, 5e-324, -1.0, 1.0]))
    elif odd < 0.55:
        del arrays[rng.choice(sorted(arrays))]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = bytearray(buf.getvalue())
    corrupt = rng.random()
    if corrupt < 0.3:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    elif corrupt < 0.5:
        data = data[: rng.randrange(len(data))]
    return bytes(data)


def generate(rng) -> tuple[str, bytes]:
    kind = rng.random()
    if kind < 0.45:
        return ".json", json_problem(rng)
    if kind < 0.7:
        return ".json", raw_problem(rng)
    return ".npz", npz_problem(rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solve", type=int, default=0, help="also run `limitproc solve` on the first K files")
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts: dict[str, int] = {}
    worst = (0.0, 0, None)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.count):
            suffix, data = generate(rng)
            path = Path(tmp) / f"f{i}{suffix}"
            path.write_bytes(data)
            paths.append(path)
        for start in range(0, len(paths), args.batch):
            batch = paths[start : start + args.batch]
            done = 0
            while done < len(batch):
                rest = batch[done:]
                try:
                    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, rest)], capture_output=True, timeout=HANG * len(rest))
                    out, failed = proc.stdout, proc.returncode != 0
                except subprocess.TimeoutExpired as exc:
                    out, failed = exc.stdout or b"", True
                for line in out.decode().splitlines():
                    kind, seconds = line.split()[0], float(line.split()[1])
                    kind = "hang" if seconds > HANG else kind
                    counts[kind] = counts.get(kind, 0) + 1
                    size = batch[done].stat().st_size
                    if seconds / max(size, 1) > worst[0]:
                        worst = (seconds / max(size, 1), size, batch[done].read_bytes()[:120])
                    done += 1
                if failed and done < len(batch):  # the next file hung or killed the process
                    counts["hang_or_killed"] = counts.get("hang_or_killed", 0) + 1
                    done += 1
        solved: dict[str, int] = {}
        for path in paths[: args.solve]:
            try:
                proc = subprocess.run([sys.executable, "-m", "limitproc", "solve", str(path)], capture_output=True, text=True, timeout=HANG)
                err = proc.stderr
                kind = {0: "ok", 2: "clean"}.get(proc.returncode, f"exit{proc.returncode}")
                if "Traceback" in err or (proc.returncode == 2 and err.count("\n") != 1):
                    kind = "crash_or_multiline"
            except subprocess.TimeoutExpired:
                kind = "hang"
            solved[kind] = solved.get(kind, 0) + 1
    print(
        json.dumps(
            {
                "files": args.count,
                "loader": counts,
                "solve": solved,
                "worst_seconds_per_byte": worst[0],
                "worst_size": worst[1],
                "worst_head": repr(worst[2]),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
