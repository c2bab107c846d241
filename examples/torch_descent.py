"""Train a two-layer ReLU network with torch.optim.SGD from a small initialisation, then set its loss
beside limitproc's flow and descent limits.

    python examples/torch_descent.py --out runs/ --lr 0.5 --lam 1e-20

Writes ``raw.npz`` (the inputs ``X``, labels ``y``, the initial weights ``W``, ``a`` and the loss
convention "mean" of ``nn.MSELoss``), ``run.csv`` (iteration, loss) and ``overlay.png``, and prints
the measured and predicted drop times (``limitproc overlay``). torch is needed here only: it is not a
dependency of limitproc.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from limitproc import Problem, solve


def orthogonal_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct coordinate vectors of ``R^d`` with random norms in [1/2, 2], and ±1 labels.

    Coordinate-aligned data keeps float arithmetic honest at a tiny λ: every gradient step leaves the
    dead directions exactly untouched. With dense orthogonal data (a rotated basis) the float rounding
    of each update, about ``eps·||w_j||``, leaks into the dead coordinates of a growing neuron; once it
    exceeds their size ``λ·|<g_j, x_i>|`` they revive, and the run leaves the limit of exactly
    orthogonal data (docs/descent.md).
    """
    if d < n:
        raise SystemExit("--d must be at least --n")
    rng = np.random.default_rng(seed)
    X = np.eye(d)[rng.permutation(d)[:n]] * rng.uniform(0.5, 2.0, n)[:, None]
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    y[0], y[1] = 1.0, -1.0  # both classes present
    return X.astype(np.float32), y.astype(np.float32)


def model(d: int, m: int, lam: float, seed: int) -> nn.Sequential:
    """``nn.Sequential(Linear(d, m), ReLU(), Linear(m, 1))`` without biases, balanced at scale ``lam``:
    ``w_j = lam·g_j/sqrt(d)`` and ``a_j = ±||w_j||`` (signs uniform)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d, m, bias=False), nn.ReLU(), nn.Linear(m, 1, bias=False))
    with torch.no_grad():
        W = lam * torch.randn(m, d) / math.sqrt(d)
        signs = torch.where(torch.rand(m) < 0.5, -1.0, 1.0)
        net[0].weight.copy_(W)
        net[2].weight.copy_((signs * W.norm(dim=1))[None, :])
    return net


def train(net: nn.Sequential, X: np.ndarray, y: np.ndarray, lr: float, steps: int) -> list[float]:
    """Full-batch SGD on ``nn.MSELoss`` (the "mean" convention, c = 1/n); the loss before each step and at the end."""
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    optimiser = torch.optim.SGD(net.parameters(), lr=lr)
    criterion = nn.MSELoss()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = criterion(net(inputs), targets)
        losses.append(loss.detach().item())
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        losses.append(float(criterion(net(inputs), targets)))
    return losses


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="torch_run", help="output directory (default torch_run)")
    parser.add_argument("--n", type=int, default=8, help="samples (default 8)")
    parser.add_argument("--d", type=int, default=16, help="input dimension (default 16)")
    parser.add_argument("--m", type=int, default=6, help="neurons (default 6)")
    parser.add_argument("--lr", default="0.5", help="SGD step η (default 0.5)")
    parser.add_argument("--lam", type=float, default=1e-20, help="initialisation scale λ (default 1e-20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights (default 0)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X, y = orthogonal_data(args.n, args.d, args.seed)
    net = model(args.d, args.m, args.lam, args.seed)
    W, a = net[0].weight.detach().numpy().copy(), net[2].weight.detach().numpy()[0].copy()
    np.savez(out / "raw.npz", X=X, y=y, W=W, a=a, loss=np.array("mean"))

    # run past the descent limit's last drop (τ log(1/λ) / η iterations), with room for the offsets
    limit = solve(Problem.from_file(out / "raw.npz"), lr=args.lr)
    last = float(limit.jumps[-1].tau) if limit.jumps else 1.0
    steps = math.ceil(1.3 * last * math.log(1 / args.lam) / float(args.lr)) + 100
    losses = train(net, X, y, float(args.lr), steps)
    (out / "run.csv").write_text("iteration,loss\n" + "".join(f"{k},{v!r}\n" for k, v in enumerate(losses)))

    command = [sys.executable, "-m", "limitproc", "overlay", str(out / "run.csv"), str(out / "raw.npz")]
    command += ["--lr", args.lr, "--lambda", repr(args.lam), "--x", "tau", "-o", str(out / "overlay.png")]
    print("$", " ".join(command[2:]))
    subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
