"""Saddles (spec §5): exact gradient and the Hessian block of a zero neuron, by hand and against sympy."""

import copy
import dataclasses

import numpy as np
import pytest
import sympy
from helpers import EXAMPLE_1, same_number
from hypothesis import given, settings
from test_process_properties import problems

from limitproc import InputError, solve
from limitproc.saddles import hessian_block, loss_gradient


def test_critical_point_check_can_fail():
    """The exact gradient at a perturbed saddle is non-zero, with the hand-derived value."""
    result = solve(EXAMPLE_1)
    network = result.saddles[1].network(EXAMPLE_1)
    a, u = network[1]
    grad_a, grad_u = loss_gradient(EXAMPLE_1, {1: (2 * a, u)})
    # residual y_i on the block, so dL/da = 2c sum y_i u_i = (1/5) * 3 / a with a = -3^(1/4)
    assert sympy.simplify(grad_a[1] - sympy.Rational(3, 5) / a) == 0
    assert all(sympy.simplify(grad_u[1, i] - sympy.Rational(1, 5) * y * 2 * a) == 0 for i, y in zip((2, 3, 4), (-1, -1, -1)))
    assert loss_gradient(EXAMPLE_1, network) == ({1: 0}, {(1, 2): 0, (1, 3): 0, (1, 4): 0})


def test_hessian_block_of_example_1_by_hand():
    # c = 1/10, neuron 1 (s = -1) aligned with samples 2, 3, 4 (y = -1, unit norms): b = (-1, -1, -1),
    # the block is -(1/5) [[0, b^T], [b, 0]], mu_1 = sqrt(3)/5, escape direction (-1, 1/sqrt(3), ...)
    origin = solve(EXAMPLE_1).saddles[0]
    block = hessian_block(EXAMPLE_1, origin, 1)
    fifth = sympy.Rational(1, 5)
    assert block.samples.tolist() == [2, 3, 4]
    assert block.matrix == sympy.Matrix([[0, fifth, fifth, fifth], [fifth, 0, 0, 0], [fifth, 0, 0, 0], [fifth, 0, 0, 0]])
    assert block.rate == sympy.sqrt(3) / 5
    assert block.eigenvalues() == {sympy.sqrt(3) / 5: 1, -sympy.sqrt(3) / 5: 1, 0: 2} == block.matrix.eigenvals()
    direction = block.escape_direction()
    assert direction.a == -1 and all(same_number(v, "1/sqrt(3)") for v in direction.v().values())


def test_hessian_block_refuses_an_escaped_neuron():
    result = solve(EXAMPLE_1)
    with pytest.raises(InputError, match="neuron"):
        hessian_block(EXAMPLE_1, result.saddles[1], 1)
    with pytest.raises(InputError, match="neuron"):
        hessian_block(EXAMPLE_1, result.saddles[0], 2)


@settings(max_examples=40, deadline=None)
@given(problems(max_n=5, max_m=3))
def test_hessian_block_is_the_hessian_and_its_escape_direction_the_jumps(problem):
    """At every saddle and zero neuron: the block is sympy's Hessian of L in (a_j, v_i), its characteristic
    polynomial is x^(k-1) (x^2 - mu_j^2) with the engine's mu_j, and the eigenvector of -mu_j is the jump's
    escape direction."""
    result = solve(problem)
    c, y, q = problem.loss_factor, problem.labels, problem.sq_norms
    x = sympy.Symbol("x")
    for k, saddle in enumerate(result.saddles):
        for j in sorted(set(range(problem.m)) - set(saddle.escaped)):
            block = hessian_block(problem, saddle, j)
            # samples outside F keep residual -y_i; on the positive side relu is the identity
            a, v = sympy.Symbol("a"), sympy.symbols(f"v:{block.samples.size}")
            loss = sympy.Add(
                *(
                    sympy.Rational(c) * (a * sympy.sqrt(sympy.Rational(q[i])) * v[t] - sympy.Rational(y[i])) ** 2
                    for t, i in enumerate(block.samples.tolist())
                )
            )
            hessian = sympy.hessian(loss, (a, *v)).subs({s: 0 for s in (a, *v)})
            assert (block.matrix - hessian).applyfunc(sympy.simplify) == sympy.zeros(*hessian.shape)
            mu = block.rate
            expected = sympy.expand(x ** (block.samples.size - 1) * (x**2 - mu**2)) if block.samples.size else x
            assert sympy.expand(block.matrix.charpoly(x).as_expr() - expected) == 0
            assert (j in saddle.unstable) == bool(block.samples.size)
            if not block.samples.size:
                continue
            assert same_number(saddle.unstable[j].exact(), mu)
            direction = block.escape_direction()
            d = sympy.Matrix([direction.a, *(sympy.sqrt(sympy.Rational(r)) for r in direction.radicands)])
            assert all(s > 0 for s in d[1:]) and (block.matrix * d + mu * d).applyfunc(sympy.radsimp) == sympy.zeros(len(d), 1)
            if k < len(result.jumps) and j in result.jumps[k].neurons:
                jump = result.jumps[k]
                assert np.array_equal(jump.blocks[j], block.samples)
                assert direction.to_dict() == jump.escape_direction(j).to_dict()


def test_a_copied_saddle_builds_its_lazy_fields_and_replace_can_give_them():
    """Example 1 (c = 1/10, unit norms): neuron 1 fits samples 2, 3, 4 first, so saddle 1 has
    N = 2 sqrt(3) and neuron 0 (samples 0, 1) unstable at mu_0 = sqrt(2)/5; read first from a copy."""
    saddle = solve(EXAMPLE_1).saddles[1]
    copied = copy.copy(saddle)
    for s in (copied, saddle):
        assert same_number(s.sq_norm.exact(), 2 * sympy.sqrt(3))
        assert list(s.unstable) == [0] and same_number(s.unstable[0].exact(), sympy.sqrt(2) / 5)
        assert same_number(s.min_eigenvalue.exact(), -sympy.sqrt(2) / 5)
        assert s.fitted.tolist() == [2, 3, 4]
    given = dataclasses.replace(saddle, sq_norm=None)
    assert given.sq_norm is None and given.min_eigenvalue is saddle.min_eigenvalue
    with pytest.raises(dataclasses.FrozenInstanceError):
        saddle.sq_norm = None
