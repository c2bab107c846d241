import math

import numpy as np
import pytest

from limitproc import InputError, Problem, solve
from limitproc.errors import Error, IntegrationError
from limitproc.flow.integrator import Integrator, PerSampleFlow
from limitproc.flow.simulate import extrapolate, simulate

EX1 = dict(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)])
EX2 = dict(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])


def test_single_neuron_is_the_logistic_flow():
    # n = 1, y = 1, q = 1, c = 1/2, balanced a = u: p = a u obeys dp/dt = 2p(1 - p), loss (p - 1)^2 / 2.
    # The loss crosses 1/4 (midpoint of the plateaus 1/2 and 0) when p = 1 - 1/sqrt(2).
    mag, lam = 0.7, 1e-12
    p = Problem(labels=[1], signs=[1], active=[[0]], magnitudes=[[mag]])
    sim = simulate(p, lam)
    p0, p1 = (lam * mag) ** 2, 1 - 1 / math.sqrt(2)
    expected = 0.5 * math.log((1 / p0 - 1) / (1 / p1 - 1))
    assert sim.drop_times[0] == pytest.approx(expected, rel=1e-7)
    assert sim.final_sq_norm == pytest.approx(2.0, rel=1e-7)  # a^2 + u^2 with a u = 1, a = u


def test_drop_time_converges_with_rtol_at_order_five():
    # the logistic flow above: the drop time's relative error stays below rtol, and against the number
    # of steps it falls like steps^-5 (Dormand–Prince 5(4) with local extrapolation is of order 5)
    mag, lam = 0.7, 1e-12
    p = Problem(labels=[1], signs=[1], active=[[0]], magnitudes=[[mag]])
    p0, p1 = (lam * mag) ** 2, 1 - 1 / math.sqrt(2)
    expected = 0.5 * math.log((1 / p0 - 1) / (1 / p1 - 1))
    rtols = 10.0 ** -np.arange(4, 12)
    runs = [simulate(p, lam, rtol=rtol) for rtol in rtols]
    errors = np.array([abs(run.drop_times[0] / expected - 1) for run in runs])
    assert np.all(errors <= rtols)
    slope = np.polyfit(np.log([run.steps for run in runs]), np.log(errors), 1)[0]
    assert -6.5 < slope < -4


def test_offsets_bounded_and_tau_error_shrinks_like_one_over_log():
    p = Problem(**EX2)
    r = solve(p)
    taus = np.array([float(j.tau) for j in r.jumps])
    sims = [simulate(p, lam, result=r) for lam in (1e-16, 1e-32, 1e-64)]
    offsets = np.array([s.drop_offsets(taus) for s in sims])
    assert np.ptp(offsets, axis=0).max() < 1e-2  # δ_k does not depend on λ
    assert np.abs(offsets).max() < 10
    errors = np.array([s.drop_taus - taus for s in sims])
    # error(λ) * log(1/λ) = δ_k: halving 1/log(1/λ) halves the τ error
    assert errors[1] / errors[0] == pytest.approx(np.full(3, 0.5), abs=1e-3)
    ext = extrapolate(sims)
    assert ext.tau == pytest.approx(taus, abs=1e-4)
    assert ext.delta == pytest.approx(offsets[-1], abs=1e-2)


def test_direct_and_log_scale_coordinates_agree():
    p = Problem(**EX1)
    r = solve(p)
    a = simulate(p, 1e-20, result=r, coordinates="direct")
    b = simulate(p, 1e-20, result=r, coordinates="log-scale")
    assert a.drop_times == pytest.approx(b.drop_times, rel=1e-7)
    assert a.final_sq_norm == pytest.approx(b.final_sq_norm, rel=1e-7)


@pytest.mark.slow
def test_log_scale_reaches_below_float_range_with_the_same_offsets():
    p = Problem(**EX1)
    r = solve(p)
    taus = [float(j.tau) for j in r.jumps]
    ref = simulate(p, 1e-30, result=r).drop_offsets(taus)
    tiny = simulate(p, "1e-400", result=r)
    assert tiny.coordinates == "log-scale"
    assert tiny.drop_offsets(taus) == pytest.approx(ref, abs=1e-3)
    assert tiny.final_sq_norm == pytest.approx(float(r.sq_norm), rel=1e-6)


def test_alignment_kills_misaligned_coordinates_and_conserves_balance():
    p = Problem(**EX2)
    sim = simulate(p, 1e-20)
    assert np.array_equal(sim.pattern_after_alignment, p.aligned_matrix())
    # deaths during alignment are exactly the misaligned active coordinates (later, a tiny coordinate
    # whose sample another neuron fitted may die too, when that sample's residual overshoots)
    killed = {(int(j), int(i)) for t, j, i in sim.deaths if t < sim.alignment_time}
    assert killed == set(map(tuple, np.argwhere(p.active_matrix() & ~p.aligned_matrix()).tolist()))
    assert np.abs(sim.balance).max() < 1e-6  # balanced start: a_j^2 - ||w_j||^2 stays 0


def test_loss_convention_rescales_time():
    # c = 1/n ("mean") doubles every rate relative to c = 1/(2n): drop times halve
    base = simulate(Problem(**EX1), 1e-20)
    fast = simulate(Problem(**EX1, loss="mean"), 1e-20)
    assert fast.drop_times == pytest.approx(base.drop_times / 2, rel=1e-6)


def test_extrapolate_recovers_a_line():
    class Run:
        def __init__(self, L):
            self.log_inv_lambda, self.drop_times = L, np.array([2.0 * L - 0.5, 3.0 * L + 1.5])

    ext = extrapolate([Run(L) for L in (10.0, 20.0, 40.0)])
    assert ext.tau == pytest.approx([2.0, 3.0]) and ext.delta == pytest.approx([-0.5, 1.5])
    assert np.all(ext.tau_stderr < 1e-9)


@pytest.mark.parametrize(
    "kwargs", [dict(lam=2.0), dict(lam="x"), dict(lam=1e-200, coordinates="direct"), dict(lam=1e-5, coordinates="polar")]
)
def test_bad_input(kwargs):
    with pytest.raises(InputError):
        simulate(Problem(**EX1), **kwargs)


# -- the integrator ---------------------------------------------------------------------------
def _logistic():
    # one neuron on y = 1, q = 1, c = 1/2 from a = u = 1e-3: p = a u obeys dp/dt = 2p(1 - p) and the
    # loss (p - 1)^2 / 2 crosses 1/8 when p = 1/2, at t = log(1/p(0) - 1) / 2
    flow = PerSampleFlow(np.array([1.0]), np.array([1.0]), 0.5, 1)
    return flow, Integrator(flow, np.array([1e-3, 1e-3]), rtol=1e-10, first_step=1e-3)


def test_events_are_located_and_filtered_by_direction():
    flow, integ = _logistic()
    down, up, both = (lambda t, y: flow.loss(y) - 1 / 8), (lambda t, y: flow.loss(y) - 1 / 8), (lambda t, y: flow.loss(y) - 1 / 8)
    down.direction, up.direction = -1, 1
    status = integ.run(30.0, events=[down, up, both])
    assert status.status == 0 and status.success and status.t == pytest.approx(30.0, rel=1e-14) and integ.t == status.t
    crossing = math.log(1e6 - 1) / 2
    assert status.t_events[0] == (pytest.approx(crossing, rel=1e-9),)
    assert status.t_events[1] == ()  # the loss only decreases
    assert status.t_events[2] == status.t_events[0]


def test_a_terminal_event_stops_after_its_step():
    flow, integ = _logistic()

    def fitted(t, y):
        return flow.loss(y) - 1e-4

    fitted.terminal, fitted.direction = True, -1
    status = integ.run(1e3, events=[fitted])
    assert status.status == 1 and status.t == integ.t < 1e3
    # p = 1 - sqrt(2e-4) at the event; the run stops at the end of that step, past it
    p_event = 1 - math.sqrt(2e-4)
    t_event = 0.5 * math.log((1e6 - 1) / (1 / p_event - 1))
    assert status.t_events[0][0] == pytest.approx(t_event, rel=1e-8) and status.t_events[0][0] <= status.t
    assert flow.loss(integ.state) <= 1e-4


def test_a_coordinate_dies_at_exactly_zero_in_both_coordinates():
    # one neuron on a misaligned sample (s = +1, y = -1, q = 1, c = 1/2), tiny: r = 1 + a u ≈ 1, so
    # a' = -u, u' = -a; from (2e, e), a + u = 3e e^{-t} and a - u = e e^{t}: u reaches 0 at
    # t = log(3)/2 with a = sqrt(3) e, and stays 0 (sigma'(0) = 0), so a stays sqrt(3) e
    eps = 1e-8
    for renormalise in (False, True):
        flow = PerSampleFlow(np.array([-1.0]), np.array([1.0]), 0.5, 1)
        integ = Integrator(flow, np.array([2 * eps, eps]), rtol=1e-10, first_step=1e-3, renormalise=renormalise)
        assert integ.run(5.0).status == 0
        assert len(integ.deaths) == 1 and integ.deaths[0][1:] == (0, 0)
        assert integ.deaths[0][0] == pytest.approx(math.log(3) / 2, rel=1e-8)
        a, u = flow.split(integ.state)
        assert u[0, 0] == 0.0
        assert math.exp(flow.log_scales[0]) * a[0] == pytest.approx(math.sqrt(3) * eps, rel=1e-8)
        assert (flow.log_scales[0] != 0) == renormalise  # log-scale: the neuron is held at size 1


def test_a_death_is_located_within_rtol():
    # the death above, located on the dense output of the step that crosses 0 (not by redoing it):
    # its time and the surviving a = sqrt(3) e are within rtol at every tolerance
    eps = 1e-8
    for rtol in 10.0 ** -np.arange(3, 12):
        flow = PerSampleFlow(np.array([-1.0]), np.array([1.0]), 0.5, 1)
        integ = Integrator(flow, np.array([2 * eps, eps]), rtol=rtol, first_step=1e-3)
        assert integ.run(5.0).status == 0 and len(integ.deaths) == 1
        assert integ.deaths[0][0] == pytest.approx(math.log(3) / 2, rel=rtol)
        assert flow.split(integ.state)[0][0] == pytest.approx(math.sqrt(3) * eps, rel=rtol)


def test_step_size_underflow_is_a_status_and_an_integration_error():
    # a u overflows float64: no step can be accepted
    flow = PerSampleFlow(np.array([1.0]), np.array([1.0]), 0.5, 1)
    integ = Integrator(flow, np.array([1e200, 1e200]), rtol=1e-8, first_step=1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        status = integ.run(1.0)
    assert status.status == -1 and not status.success and "step size underflow" in status.message
    assert integ.t == 0.0 and integ.steps == 0
    with pytest.raises(IntegrationError, match="step size underflow") as failure:
        status.raise_if_failed()
    assert isinstance(failure.value, Error) and isinstance(failure.value, FloatingPointError)


def test_labels_past_float64_are_refused_in_one_line(tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "big.json"
    path.write_text(json.dumps({"labels": ["1" + "0" * 400, -1], "signs": [1, -1], "active": [[0], [1]]}))
    proc = subprocess.run([sys.executable, "-m", "limitproc", "simulate", str(path), "--lambdas", "1e-10"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "limitproc simulate: error: labels: outside the range of float64: the simulator cannot run this problem (the exact engine can)"
    ]


def test_labels_and_norms_below_float64_are_refused():
    """A label of 10^-400 is not 0 (labels never are) but is 0.0 in float64: refused, naming the field."""
    from limitproc.flow.simulate import float_labels, float_sq_norms

    tiny = Problem(labels=["1e-400", 1], signs=[1, 1], active=[[1, 0], [0, 1]])
    with pytest.raises(InputError, match="outside the range of float64") as failure:
        float_labels(tiny)
    assert failure.value.field == "labels"
    far = Problem(labels=[1, -1], signs=[1, -1], active=[[1, 0], [0, 1]], sq_norms=["1e400", 1])
    with pytest.raises(InputError) as failure:
        float_sq_norms(far)
    assert failure.value.field == "sq_norms"
    assert float_sq_norms(Problem(labels=[1, -1], signs=[1, -1], active=[[1, 0], [0, 1]], sq_norms=["1/3", 2])).tolist() == [1 / 3, 2.0]


def test_a_repeated_lambda_is_refused():
    """Two runs at one λ give the drop-time fit a rank-1 matrix (lstsq then printed a 'τ extrapolated' that
    meant nothing): extrapolate refuses them, and so does the command line, however λ is written."""
    one = Problem(labels=[1], signs=[1], active=[[0]])
    run = simulate(one, "1e-20")
    with pytest.raises(InputError, match="^lambdas: extrapolation needs runs at two or more distinct λ"):
        extrapolate([run, run])
    from limitproc.clitools import lambdas

    with pytest.raises(Exception, match="λ 0.00000000000000000001 repeats 1e-20"):
        lambdas("1e-20,0.00000000000000000001")
    assert lambdas("1e-20, 1e-40") == ("1e-20", "1e-40")
