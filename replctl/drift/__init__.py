"""`drift`: StackSet drift detection and cross-environment parity, read (fetch) apart from judged (judge)."""
