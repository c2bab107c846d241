"""The approximate paths (float64): the finite-λ gradient-flow simulator, its integrator, and tie
resolution from the initial magnitudes. The exact core never imports this package (tests/test_architecture.py)."""
