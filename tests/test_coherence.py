"""The coherence study: nearly orthogonal inputs against the orthogonal run and the limit."""

import json
import subprocess
import sys

import numpy as np
import pytest

from limitproc.errors import InputError
from limitproc.flow.coherence import coherence_study, gaussian_inputs, perturbed_inputs, raw_with_inputs
from limitproc.flow.general import coherence_of
from limitproc.problem import generate


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deviation_is_first_order_in_eps(seed):
    # While the activation pattern is kept (ε well below λ: a dead pair revives once the cross
    # term ε·|w_j| outgrows its start λ·magnitude), the flow is a smooth function of the Gram
    # matrix, whose off-diagonal entries are linear in ε: plateau losses and drop times move by
    # O(ε). The band [0.8, 1.2] leaves room for the O(ε²) term and the integrator's noise (about 2e-8
    # in t at rtol 1e-8 when a hold changes the step sequence; the deviations here are 1e-7 and more).
    study = coherence_study(generate(6, 3, seed=seed), eps=(0.0, 1e-8, 3e-8, 1e-7), lambdas=("1e-6",))
    assert all(r.same_order for r in study.rows)
    assert study.first_order_change is None
    for key in ("plateau_dev", "drop_dev"):
        devs = [getattr(r, key) for r in study.rows if r.eps > 0]
        if max(devs) < 1e-14:  # this plateau does not feel the perturbation at all
            continue
        c, p = study.fits[key]
        assert 0.8 <= p <= 1.2, (key, p)
    zero = study.rows[0]
    assert zero.plateau_dev == 0 and zero.drop_dev == 0  # the reference is the ε = 0 run itself


def test_constructions_keep_norms_pattern_and_coherence():
    p = generate(10, 4, norms="uniform", seed=3)
    q = np.array([float(x) for x in p.sq_norms])
    for X in (perturbed_inputs(p, 1e-3, d=40, seed=1), gaussian_inputs(p, 400, seed=1)):
        np.testing.assert_allclose((X**2).sum(axis=1), q, rtol=1e-12)
        data = raw_with_inputs(p, X)
        assert np.array_equal(data.preactivations > 0, p.active_matrix())
        assert np.array_equal(np.sign(data.a), p.signs)
    assert coherence_of(perturbed_inputs(p, 0.0, seed=1)) < 1e-14
    eps_small, eps_big = (coherence_of(perturbed_inputs(p, e, seed=1)) for e in (1e-4, 1e-2))
    assert 50 < eps_big / eps_small < 200  # coherence linear in ε


def test_eps_outside_unit_interval():
    p = generate(4, 2, seed=0)
    for bad in (-0.1, 1.0):
        with pytest.raises(InputError) as exc:
            coherence_study(p, eps=(bad,))
        assert exc.value.field == "eps"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "limitproc", *args], capture_output=True, text=True)


def test_cli_coherence(tmp_path):
    path = tmp_path / "p.json"
    generate(5, 2, seed=2).to_file(path)
    out = run_cli("coherence", str(path), "--eps", "0,1e-9,1e-8", "--lambdas", "1e-6", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    assert [r["eps"] for r in rows] == [0.0, 1e-9, 1e-8]
    bad = run_cli("coherence", str(path), "--eps", "0,1.5")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--eps" in bad.stderr and "Traceback" not in bad.stderr
