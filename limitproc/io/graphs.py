"""Graph files: GraphML, GEXF, node-link JSON and DOT text, pictures, and :func:`read_graph` back.

GraphML, GEXF and DOT need scalar attributes, so there lists and dicts are JSON-encoded strings
and ``None`` values are left out; node-link JSON keeps native lists and ``null``. Exact values are
strings either way, so they come back unchanged. GEXF has no graph attributes, so the graph's
(``kind``, ``lr``, ``scaling``, ...) go as one JSON object into its ``<meta><description>``. networkx (and matplotlib, for pictures) is
imported when a graph is written or read: the CLI's parser reads :data:`FORMATS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import ParseError

from ..errors import InputError
from ..graph import edge_label, node_label
from .files import atomic_write

__all__ = [
    "FORMATS",
    "PICTURE_FORMATS",
    "READABLE_FORMATS",
    "STRUCTURED_FORMATS",
    "graph_text",
    "read_graph",
    "scalar_graph",
    "to_dot",
    "write_graph",
]

if TYPE_CHECKING:
    import networkx as nx

STRUCTURED_FORMATS = ("graphml", "gexf", "json", "dot")
PICTURE_FORMATS = ("png", "svg")
FORMATS = STRUCTURED_FORMATS + PICTURE_FORMATS
READABLE_FORMATS = ("graphml", "gexf", "json")


def scalar_graph(G: nx.DiGraph) -> nx.DiGraph:
    """A copy whose attributes are scalars: lists and dicts JSON-encoded, ``None`` left out."""
    import networkx as nx

    def flat(attrs: dict) -> dict:
        return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in attrs.items() if v is not None}

    H = nx.DiGraph(**flat(G.graph))
    H.add_nodes_from((u, flat(a)) for u, a in G.nodes(data=True))
    H.add_edges_from((u, v, flat(a)) for u, v, a in G.edges(data=True))
    return H


def to_dot(G: nx.DiGraph) -> str:
    """Graphviz DOT text (no Graphviz needed): every attribute kept, plus a label and, in ensembles, a pen width."""

    def quote(value) -> str:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    def attrs(d: dict) -> str:
        return ", ".join(f"{k}={quote(v)}" for k, v in d.items())

    H = scalar_graph(G)
    lines = ["digraph saddles {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];', '  edge [fontname="Helvetica"];']
    for u, a in H.nodes(data=True):
        lines.append(f"  {quote(u)} [{attrs({'label': node_label(G, u), **a})}];")
    for u, v, a in H.edges(data=True):
        extra = {"label": edge_label(G, u, v)}
        if "probability_decimal" in a:
            extra["penwidth"] = f"{0.5 + 5 * a['probability_decimal']:.3g}"
        lines.append(f"  {quote(u)} -> {quote(v)} [{attrs({**extra, **a})}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_text(G: nx.DiGraph, fmt: str) -> str:
    """The graph as GraphML, GEXF, node-link JSON or DOT text (networkx's own writers but for DOT)."""
    import networkx as nx

    if fmt == "graphml":
        return "\n".join(nx.generate_graphml(scalar_graph(G))) + "\n"
    if fmt == "gexf":
        return _gexf(G)
    if fmt == "json":
        return json.dumps(nx.node_link_data(G, edges="edges"), indent=1) + "\n"
    if fmt == "dot":
        return to_dot(G)
    raise InputError("format", f"unknown graph format {fmt!r} (choose {', '.join(STRUCTURED_FORMATS)})")


def _gexf(G: nx.DiGraph) -> str:
    from xml.etree.ElementTree import SubElement

    from networkx.readwrite.gexf import GEXFWriter

    writer = GEXFWriter(encoding="utf-8", prettyprint=True)
    meta = writer.xml.find("meta")
    assert meta is not None  # GEXFWriter always writes one
    SubElement(meta, "description").text = json.dumps({k: v for k, v in G.graph.items() if v is not None})
    writer.add_graph(scalar_graph(G))
    return str(writer) + "\n"


def _gexf_graph_attributes(path: Path) -> dict:
    """The graph attributes :func:`_gexf` put into ``<meta><description>`` (none in another tool's GEXF)."""
    from xml.etree.ElementTree import parse

    description = parse(path).getroot().find("{*}meta/{*}description")
    if description is None or not (description.text or "").startswith("{"):
        return {}
    return json.loads(description.text or "")


def write_graph(G: nx.DiGraph, path, fmt: str | None = None, min_probability: float = 0.0) -> None:
    """Write ``G`` atomically; the format defaults to the file extension (``.graphml .gexf .json .dot .png .svg``).

    Pictures are the staircase graph (:func:`limitproc.plots.staircase_graph`).
    """
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt in PICTURE_FORMATS:
        from ..plots import save_figure, staircase_graph

        save_figure(staircase_graph(G, min_probability=min_probability), path, fmt)
    else:
        atomic_write(path, graph_text(G, fmt))


def read_graph(path, fmt: str | None = None) -> nx.DiGraph:
    """The graph :func:`write_graph` wrote to ``path`` as GraphML, GEXF or node-link JSON (by extension by default).

    Every attribute comes back as it was written: exact values as the same strings, numbers and
    booleans as themselves, the JSON-encoded lists and dicts of GraphML and GEXF decoded, node ids as
    ints, the graph attributes (GEXF: from ``<meta><description>``). ``None`` values, left out of
    GraphML and GEXF, come back as missing keys.
    """
    import networkx as nx

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in READABLE_FORMATS:
        raise InputError("format", f"cannot read graph format {fmt!r} (choose {', '.join(READABLE_FORMATS)})")
    try:
        if fmt == "json":
            return nx.node_link_graph(json.loads(path.read_text()), edges="edges")
        H = nx.read_graphml(path, node_type=int) if fmt == "graphml" else nx.read_gexf(path, node_type=int)
        # what networkx's readers add to what was written: default-attribute dicts, GEXF's mode, node labels and edge ids
        for key in ("node_default", "edge_default", "mode"):
            H.graph.pop(key, None)
        for u, a in H.nodes(data=True):
            if fmt == "gexf" and a.get("label") == str(u):
                del a["label"]
            _decode(a)
        for _, _, a in H.edges(data=True):
            if fmt == "gexf":
                a.pop("id", None)
            _decode(a)
        _decode(H.graph)
        if fmt == "gexf":
            H.graph.update(_gexf_graph_attributes(path))
    except OSError as exc:
        raise InputError("graph", f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, ParseError, nx.NetworkXError) as exc:
        raise InputError("graph", f"{path} is not a {fmt} graph written by write_graph: {exc}") from None
    return H


def _decode(attrs: dict) -> None:
    """Undo :func:`scalar_graph`: a string that starts as a JSON list or object was one."""
    for key, value in attrs.items():
        if isinstance(value, str) and value[:1] in ("[", "{"):
            attrs[key] = json.loads(value)
