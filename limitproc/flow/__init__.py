"""The approximate paths (float64): the finite-λ gradient-flow simulator, its integrator, the jumps'
O(1) windows and offsets, tie resolution, and the predicted finite-λ curve. The exact core never
imports this package (tests/test_architecture.py)."""
