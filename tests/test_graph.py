"""Saddle-transition graphs: the spec §10 examples by hand, exact critical points, ties, exports, ensembles."""

import json
import math
import re
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import sympy

from limitproc import InputError, Problem, generate, solve
from limitproc.cli import main
from limitproc.graph import (
    _base_problem,
    ensemble_graph,
    enumerated_initialisations,
    pattern_count,
    sampled_initialisations,
    transition_graph,
    wilson_interval,
)
from limitproc.io.graphs import graph_text, read_graph, write_graph


def same(text, expected) -> bool:
    """An exported exact string equals the hand-derived value (exactly, via sympy)."""
    return text is not None and sympy.simplify(sympy.sympify(text) - sympy.sympify(expected)) == 0


EX1 = Problem(labels=[1, 1, -1, -1, -1], signs=[1, -1], active=[range(5), range(5)])
EX2 = Problem(labels=[1, 2, -1, 3, -2, 1], signs=[1, -1, 1, -1], active=[[0, 1, 2], [2, 4, 5], [1, 3, 5], [0, 4]])
EX3 = Problem(labels=["1/2", 3, -1], sq_norms=[4, "1/4", 1], signs=[1, 1, -1], active=[[0, 1], [0, 2], [0, 1, 2]])


def test_example_1_nodes_and_edges():
    G = transition_graph(solve(EX1))
    assert (G.number_of_nodes(), G.number_of_edges()) == (3, 2)
    # c = 1/10; mu_1 = sqrt(3)/5 (three aligned samples), mu_0 = sqrt(2)/5
    expected_nodes = [
        ([], "1/2", "0", [], "0", 2, "-sqrt(3)/5"),
        ([2, 3, 4], "1/5", "5*sqrt(3)/3", [1], "2*sqrt(3)", 1, "-sqrt(2)/5"),
        ([0, 1, 2, 3, 4], "0", "5*sqrt(2)/2", [0, 1], "2*sqrt(2) + 2*sqrt(3)", 0, None),
    ]
    for k, (fitted, loss, tau, neurons, sq_norm, unstable, min_eig) in enumerate(expected_nodes):
        a = G.nodes[k]
        assert a["fitted"] == fitted and a["neurons"] == neurons and a["unstable"] == unstable
        assert same(a["loss"], loss) and same(a["tau"], tau) and same(a["sq_norm"], sq_norm)
        assert a["critical_point"] is True and a["critical_point_reason"] is None
        assert (a["min_eigenvalue"] is None) if min_eig is None else same(a["min_eigenvalue"], min_eig)
        assert a["tau_decimal"] == pytest.approx(float(sympy.sympify(tau)))
    e1, e2 = G.edges[0, 1], G.edges[1, 2]
    assert e1["neurons"] == [1] and e1["samples"] == [2, 3, 4] and e1["tie"] is False and e1["shared"] == []
    assert same(e1["tau"], "5*sqrt(3)/3") and same(e1["dtau"], "5*sqrt(3)/3") and same(e1["loss_drop"], "3/10")
    assert same(e2["dtau"], "5*sqrt(2)/2 - 5*sqrt(3)/3") and same(e2["loss_drop"], "1/5")
    # escape direction (s_j, |y_i| ||x_i|| / sqrt(R)): neuron 1 is negative, v_i = 1/sqrt(3)
    (d1,), (d2,) = e1["escape_direction"], e2["escape_direction"]
    assert d1["neuron"] == 1 and d1["a"] == "-1" and all(same(v, "1/sqrt(3)") for v in d1["v"].values())
    assert d2["neuron"] == 0 and d2["a"] == "1" and sorted(d2["v"]) == ["0", "1"] and same(d2["v"]["0"], "1/sqrt(2)")


def test_example_2_never_escaped_neuron_and_norm():
    G = transition_graph(solve(EX2))
    assert (G.number_of_nodes(), G.number_of_edges()) == (4, 3)
    assert [G.edges[k - 1, k]["neurons"] for k in (1, 2, 3)] == [[2], [1], [0]]
    assert [G.edges[k - 1, k]["samples"] for k in (1, 2, 3)] == [[1, 3, 5], [2, 4], [0]]
    assert same(G.nodes[3]["tau"], "6 + 3*sqrt(14)/7 - 3*sqrt(70)/7")
    assert same(G.nodes[3]["sq_norm"], "2 + 2*sqrt(5) + 2*sqrt(14)")
    # neuron 3 (A_3 = {4}) is unstable until neuron 1 fits sample 4; then only neuron 0 (sample 0) is left
    assert [G.nodes[k]["unstable"] for k in range(4)] == [4, 3, 1, 0]
    assert same(G.nodes[2]["min_eigenvalue"], "-1/6")  # mu_0 = (1/6) sqrt(y_0^2 q_0)
    assert all(G.nodes[k]["critical_point"] is True for k in range(4))


def test_example_3_norms_and_escape_direction():
    G = transition_graph(solve(EX3))
    assert (G.number_of_nodes(), G.number_of_edges()) == (3, 2)
    assert same(G.edges[0, 1]["tau"], "6*sqrt(13)/13") and same(G.edges[1, 2]["tau"], "3")
    assert same(G.nodes[2]["sq_norm"], "2 + sqrt(577)/2")
    # R = (1/2)^2*4 + 3^2/4 = 13/4: v_0 = sqrt(1/R) = 2/sqrt(13), v_1 = sqrt((9/4)/R) = 3/sqrt(13)
    (d,) = G.edges[0, 1]["escape_direction"]
    assert same(d["v"]["0"], "2/sqrt(13)") and same(d["v"]["1"], "3/sqrt(13)")


def test_overlapping_tie_is_one_edge_with_shared_samples():
    # neurons 0 and 1 escape at once with different blocks sharing sample 1 (identical blocks would fix N)
    problem = Problem(labels=[1, 1, 1, -1], signs=[1, 1, -1], active=[[0, 1], [1, 2], [3]])
    G = transition_graph(solve(problem))
    tie = [a for _, _, a in G.edges(data=True) if a["tie"]]
    assert len(tie) == 1
    assert tie[0]["neurons"] == [0, 1] and tie[0]["shared"] == [1] and tie[0]["samples"] == [0, 1, 2]
    assert tie[0]["blocks"] == {"0": [0, 1], "1": [1, 2]} and tie[0]["tie_certified"] is True
    after = G.nodes[G.number_of_nodes() - 1]
    assert after["critical_point"] is None and "tie" in after["critical_point_reason"]
    assert after["sq_norm"] is None and after["sq_norm_decimal"] is None
    assert G.nodes[0]["critical_point"] is True


def test_disjoint_tie_lists_no_shared_samples():
    G = transition_graph(solve(Problem(labels=[1, -1], signs=[1, -1], active=[[0, 1], [0, 1]])))
    assert G.number_of_edges() == 1
    edge = G.edges[0, 1]
    assert edge["neurons"] == [0, 1] and edge["tie"] is True and edge["shared"] == [] and edge["samples"] == [0, 1]
    assert len(edge["escape_direction"]) == 2 and G.nodes[1]["critical_point"] is True


# -- exports ---------------------------------------------------------------------------------------
EXACT_NODE_KEYS = ("loss", "tau", "sq_norm", "min_eigenvalue")
EXACT_EDGE_KEYS = ("tau", "dtau", "loss_drop")


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_structured_round_trip_keeps_exact_strings(tmp_path, fmt):
    G = transition_graph(solve(EX2))
    path = tmp_path / f"g.{fmt}"
    write_graph(G, path)
    H = read_graph(path)
    assert sorted(H.nodes) == sorted(G.nodes) and sorted(H.edges) == sorted(G.edges)
    for u, a in G.nodes(data=True):
        b = H.nodes[u]
        for key in EXACT_NODE_KEYS:
            assert b.get(key) == a[key]  # None is left out of GraphML/GEXF: reading gives None back
        assert b["fitted"] == a["fitted"] and b["blocks"] == a["blocks"]
        assert b["critical_point"] is True and b["tau_decimal"] == a["tau_decimal"]
    for u, v, a in G.edges(data=True):
        b = H.edges[u, v]
        assert all(b[key] == a[key] for key in EXACT_EDGE_KEYS)
        assert b["escape_direction"] == a["escape_direction"] and b["neurons"] == a["neurons"]
    assert same(H.nodes[3]["tau"], "6 + 3*sqrt(14)/7 - 3*sqrt(70)/7")


TIED = Problem(labels=[1, 1, -1], signs=[1, 1, -1], active=[[0, 1], [0, 1], [2]])
ROUND_TRIP_GRAPHS = {
    "run": lambda: transition_graph(solve(EX2)),
    "run with a tie": lambda: transition_graph(solve(TIED)),  # None values: sq_norm, critical_point after the tie
    "exact ensemble": lambda: ensemble_graph({"labels": [1, 1, -1]}, 2, exact=True),
    "sampled ensemble": lambda: ensemble_graph({"labels": [1, 2, -1, 3]}, 3, runs=50, seed=2),
}


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
@pytest.mark.parametrize("name", ROUND_TRIP_GRAPHS)
def test_read_graph_inverts_write_graph(tmp_path, fmt, name):
    """Every attribute comes back with its type (JSON text tells True from 1 and 1.0 from 1); GraphML and
    GEXF leave None out."""
    G = ROUND_TRIP_GRAPHS[name]()
    path = tmp_path / f"g.{fmt}"
    write_graph(G, path)
    H = read_graph(path)

    def written(attrs: dict) -> dict:
        return dict(attrs) if fmt == "json" else {k: v for k, v in attrs.items() if v is not None}

    def text(items) -> str:
        return json.dumps(sorted(items, key=lambda item: item[0]), sort_keys=True)

    assert H.is_directed() and H.number_of_nodes() == G.number_of_nodes()
    assert text((u, a) for u, a in H.nodes(data=True)) == text((u, written(a)) for u, a in G.nodes(data=True))
    assert text(((u, v), a) for u, v, a in H.edges(data=True)) == text(((u, v), written(a)) for u, v, a in G.edges(data=True))
    assert json.dumps(H.graph, sort_keys=True) == json.dumps(written(G.graph), sort_keys=True)


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_graph_files_record_the_step_and_the_scaling(tmp_path, fmt):
    descent = transition_graph(solve(EX2.with_scaling("mean-field"), lr="1/2"))
    flow = transition_graph(solve(EX2))
    ensemble = ensemble_graph(EX2, 3, runs=20, lr="0.5")
    for G, lr, scaling in ((descent, "1/2", "mean-field"), (flow, "0", "standard"), (ensemble, "1/2", "standard")):
        write_graph(G, tmp_path / f"g.{fmt}")
        H = read_graph(tmp_path / f"g.{fmt}")
        assert (H.graph["lr"], H.graph["scaling"]) == (lr, scaling)
    with pytest.raises(InputError, match="scaling"):  # its runs share labels and norms, not units that depend on m
        ensemble_graph(EX2.with_scaling("mean-field"), 3, runs=2)
    with pytest.raises(InputError, match="^scaling: "):  # nor as data (it was silently read in standard units)
        ensemble_graph({"labels": [1, 2, -1], "scaling": "mean-field"}, 3, runs=2)
    mean_field_file = tmp_path / "mf.json"
    EX2.with_scaling("mean-field").to_file(mean_field_file)
    for argv in (["--data", mean_field_file], ["--data", tmp_path / "g.json", "--scaling", "mean-field"]):
        EX2.to_file(tmp_path / "g.json")
        assert main(["graph", *map(str, argv), "--m", "2", "--enumerate"]) == 2
    # theory §11 at η = 1/2: the first escape (flow τ_1 = 1/μ = 3*sqrt(14)/7) comes at τ = η / log(1 + η μ)
    mu = 7 / (3 * math.sqrt(14))
    assert descent.edges[0, 1]["tau_decimal"] == pytest.approx(0.5 / math.log1p(0.5 * mu), rel=1e-14)
    assert flow.edges[0, 1]["tau_decimal"] == pytest.approx(1 / mu, rel=1e-14)


def test_read_graph_bad_input(tmp_path):
    (tmp_path / "g.graphml").write_text("<graphml>")
    with pytest.raises(InputError, match="graph"):
        read_graph(tmp_path / "g.graphml")
    with pytest.raises(InputError, match="graph"):
        read_graph(tmp_path / "missing.json")
    with pytest.raises(InputError, match="format"):
        read_graph(tmp_path / "g.dot")


def test_ensemble_round_trip_graphml(tmp_path):
    G = ensemble_graph({"labels": [1, 1, -1]}, 2, exact=True)
    write_graph(G, tmp_path / "e.graphml")
    H = nx.read_graphml(tmp_path / "e.graphml", node_type=int)  # what other tools see: JSON-encoded lists
    for u, a in G.nodes(data=True):
        assert H.nodes[u]["probability"] == a["probability"] and json.loads(H.nodes[u]["probability_ci"]) == a["probability_ci"]
    assert H.graph["kind"] == "ensemble" and "runs" not in H.graph  # None values are left out


def test_dot_is_written_by_hand():
    G = transition_graph(solve(EX2))
    text = graph_text(G, "dot")
    assert text.startswith("digraph saddles {") and text.rstrip().endswith("}")
    assert len(re.findall(r'^  "\d+" \[', text, re.M)) == 4
    assert len(re.findall(r'^  "\d+" -> "\d+" \[', text, re.M)) == 3
    assert 'tau="6 + 3*sqrt(14)/7 - 3*sqrt(70)/7"' in text
    assert 'blocks="{\\"0\\": [0]}"' in text  # JSON inside a DOT string, quotes escaped


def test_unknown_format_is_input_error():
    with pytest.raises(InputError, match="format"):
        graph_text(transition_graph(solve(EX1)), "xml")


# -- ensembles -------------------------------------------------------------------------------------
LABELS = {"labels": [1, 1, -1]}


def _interpolation_probability(n_pos: int, n_neg: int, m: int) -> Fraction:
    """Spec §7, transcribed."""
    return sum(
        Fraction(math.comb(m, k), 2**m) * (1 - Fraction(1, 2**k)) ** n_pos * (1 - Fraction(1, 2 ** (m - k))) ** n_neg for k in range(m + 1)
    )


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_exact_enumeration_matches_spec_interpolation_probability(m):
    G = ensemble_graph(LABELS, m, exact=True)
    full = [a for _, a in G.nodes(data=True) if a["fitted"] == [0, 1, 2]]
    p = Fraction(full[0]["probability"]) if full else Fraction(0)
    assert p == _interpolation_probability(2, 1, m)
    assert G.nodes[0]["fitted"] == [] and G.nodes[0]["probability"] == "1"


def test_exact_enumeration_weights_sum_to_one_and_flow_is_conserved():
    base = _base_problem(LABELS)
    assert pattern_count(base, 2) == math.comb(6 + 1, 2)  # 2^2 + 2^1 outcomes per neuron, multisets of 2
    assert sum(w for _, w in enumerated_initialisations(base, 2)) == 1
    G = ensemble_graph(LABELS, 2, exact=True)
    for u, a in G.nodes(data=True):
        incoming = sum(Fraction(G.edges[e]["probability"]) for e in G.in_edges(u))
        assert u == 0 or incoming == Fraction(a["probability"])
        outgoing = sum(Fraction(G.edges[e]["probability"]) for e in G.out_edges(u))
        assert outgoing <= Fraction(a["probability"])


def test_exact_enumeration_hand_value():
    # m = 1, labels (1, 1, -1): one neuron, sign + w.p. 1/2 and then A uniform among subsets of {0, 1};
    # P(F = {0, 1}) = 1/2 * 1/4, P(F = {2}) = 1/2 * 1/2.
    G = ensemble_graph(LABELS, 1, exact=True)
    by_set = {tuple(a["fitted"]): Fraction(a["probability"]) for _, a in G.nodes(data=True)}
    assert by_set == {(): 1, (0,): Fraction(1, 8), (1,): Fraction(1, 8), (0, 1): Fraction(1, 8), (2,): Fraction(1, 4)}


def test_sampled_probabilities_converge_to_the_exact_ones():
    exact = ensemble_graph(LABELS, 2, exact=True)
    runs = 3000
    sampled = ensemble_graph(LABELS, 2, runs=runs, seed=11, confidence=0.999)
    by_set = {tuple(a["fitted"]): a for _, a in sampled.nodes(data=True)}
    for _, a in exact.nodes(data=True):
        p = float(Fraction(a["probability"]))
        lo, hi = by_set[tuple(a["fitted"])]["probability_ci"]
        assert lo <= p <= hi
        assert hi - lo < 4 * 3.3 * math.sqrt(0.25 / runs)  # the interval shrinks like 1/sqrt(runs)
    assert set(by_set) == {tuple(a["fitted"]) for _, a in exact.nodes(data=True)}
    edges = {(tuple(sampled.nodes[u]["fitted"]), tuple(sampled.nodes[v]["fitted"])): a for u, v, a in sampled.edges(data=True)}
    for u, v, a in exact.edges(data=True):
        lo, hi = edges[tuple(exact.nodes[u]["fitted"]), tuple(exact.nodes[v]["fitted"])]["probability_ci"]
        assert lo <= float(Fraction(a["probability"])) <= hi


def test_sampled_initialisations_are_drawn_as_generate_draws_them():
    reference = generate(13, 5, seed=4)
    ((problem, weight),) = sampled_initialisations(_base_problem(reference), 5, 1, seed=4)
    assert weight == 1
    assert np.array_equal(problem.signs, reference.signs) and np.array_equal(problem.active_matrix(), reference.active_matrix())


def test_ensemble_tau_statistics_and_counts():
    G = ensemble_graph({"labels": [1, 2, -1, 3, -2, 1]}, 3, runs=200, seed=0)
    assert G.graph["runs"] == 200 and G.nodes[0]["probability"] == "1"
    for _, a in G.nodes(data=True):
        assert a["tau_min"] <= a["tau_median"] <= a["tau_max"]
        assert (Fraction(a["probability"]) * 200).denominator == 1  # a frequency out of 200 runs


def test_wilson_interval_known_value():
    # z = 1.959964; 5 of 10: centre 0.5, half-width z*sqrt(0.025 + z^2/400)/(1 + z^2/10) = 0.2634
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_exact_enumeration_refuses_too_many_patterns():
    with pytest.raises(InputError, match="exact"):
        ensemble_graph({"labels": [1, -1] * 8}, 8, exact=True)


def test_bad_data_is_input_error():
    with pytest.raises(InputError, match="labels"):
        ensemble_graph({"sq_norms": [1]}, 2, runs=3)
    with pytest.raises(InputError, match="runs"):
        ensemble_graph(LABELS, 2)


# -- command line ----------------------------------------------------------------------------------
def test_cli_graph_single_problem(tmp_path, capsys):
    problem = tmp_path / "ex2.json"
    EX2.to_file(problem)
    assert main(["graph", str(problem), "-o", str(tmp_path / "g.graphml")]) == 0
    H = nx.read_graphml(tmp_path / "g.graphml", node_type=int)
    assert H.number_of_nodes() == 4 and same(H.nodes[1]["tau"], "3*sqrt(14)/7")
    assert main(["graph", str(problem), "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph saddles {")


def test_cli_graph_ensemble_from_data(tmp_path):
    data = tmp_path / "labels.json"
    data.write_text(json.dumps(LABELS))
    assert main(["graph", "--data", str(data), "--m", "3", "--exact", "-o", str(tmp_path / "e.json")]) == 0
    G = nx.node_link_graph(json.loads((tmp_path / "e.json").read_text()), edges="edges")
    full = [a for _, a in G.nodes(data=True) if a["fitted"] == [0, 1, 2]]
    assert Fraction(full[0]["probability"]) == _interpolation_probability(2, 1, 3)


@pytest.mark.parametrize(
    "args, field",
    [
        (["--m", "2", "--runs", "5"], "PROBLEM"),
        (["--data", "{data}", "--runs", "5"], "--m"),
        (["--data", "{data}", "--m", "2"], "--data"),
        (["--data", "{data}", "--m", "2", "--runs", "5", "--format", "png"], "--output"),
        (["{problem}", "--m", "3", "--runs", "5"], "--m"),
    ],
)
def test_cli_graph_bad_input(tmp_path, capsys, args, field):
    data, problem = tmp_path / "labels.json", tmp_path / "p.json"
    data.write_text(json.dumps(LABELS))
    EX2.to_file(problem)
    args = [a.format(data=data, problem=problem) for a in args]
    assert main(["graph", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err


def test_ensemble_solves_each_repeated_pattern_once(monkeypatch):
    """Two samples of opposite labels, one neuron: its aligned set is {0} or {1} (probability 1/4
    each) or empty (1/2, under either sign), so 200 runs repeat them and at most 3 solves are made."""
    import limitproc.graph as graph

    calls = []

    def counted(problem, **kwargs):
        calls.append(problem.aligned_bits().tobytes())
        return solve(problem, **kwargs)

    monkeypatch.setattr(graph, "solve", counted)
    ensemble_graph({"labels": [1, -1]}, 1, runs=200, seed=0)
    assert len(calls) == len(set(calls)) <= 3


def test_pattern_cache_is_kept_whenever_repeats_are_expected():
    import limitproc.graph as graph

    # exact expected repeated pairs: C(runs, 2) (sum of q^2 over one neuron's aligned sets)^m, with
    # q = 2^-(1 + n_s) for each non-empty subset of one sign's samples and (2^-n_+ + 2^-n_-) / 2 for
    # the empty set; wherever that is at least 1 the rule must keep the cache
    for n_pos, n_neg in [(1, 1), (1, 2), (2, 3), (3, 3), (1, 4)]:
        base = _base_problem({"labels": [1] * n_pos + [-1] * n_neg})
        q_empty = (Fraction(1, 2**n_pos) + Fraction(1, 2**n_neg)) / 2
        squares = q_empty**2 + sum((2**n - 1) * Fraction(1, 2 ** (1 + n)) ** 2 for n in (n_pos, n_neg))
        for m in (1, 2, 3):
            for runs in (2, 3, 5, 10, 40, 200):
                if math.comb(runs, 2) * squares**m >= 1:
                    assert graph._repeats_expected(base, m, runs), (n_pos, n_neg, m, runs)
    # labels (1, -1), one neuron: the empty aligned set has probability 1/2, so 3 runs expect 9/8 repeated pairs
    assert graph._repeats_expected(_base_problem({"labels": [1, -1]}), 1, 3)
    # and 10^4 runs at n = 16 (8 of each sign), m = 8: at most C(10^4, 2) 2^-64 < 1e-11 expected repeats
    assert not graph._repeats_expected(_base_problem({"labels": [1, -1] * 8}), 8, 10**4)


def test_an_enumeration_ignores_the_confidence_of_sampled_intervals():
    G = ensemble_graph({"labels": [1, -1]}, 1, exact=True, confidence=1.5)
    assert G.graph["confidence"] is None
    assert sum(a["probability_decimal"] for _, a in G.nodes(data=True) if a["fitted"] == []) == 1
