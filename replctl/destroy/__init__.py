"""`replctl destroy`: take environments, or the whole estate, down safely, keeping or removing their data.

The order never leaves a live environment replicating into something half-removed.

`model` (the teardown plan as a value), `fetch` (read calls only: the stack set, its instances,
the retained buckets, tables and parameters through the observer role), `decide` (pure),
`apply` (the rollout's machinery for the StackSet steps; the data steps through the
data-remover role), `render`. docs/destroy.md says why each step is where it is.
"""
