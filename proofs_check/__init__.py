"""proofs_check: the theory's claims as executable checks (filled by the proofs_check issue)."""
