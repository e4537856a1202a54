"""The sandbox: the whole estate on a local AWS emulator (moto's server on loopback).

A real estate is three accounts a user may not have at hand. The sandbox runs moto's server
as a background process holding an admin account and dev/staging/prod accounts, bootstrapped
with the StackSet roles from `cfn/`, so `deploy`, `status`, `validate-accounts` and `drift`
run end to end with no AWS account. Everything moto cannot do is adapted or declared in
`replctl.sandbox.adapt`, the one place that knows about the emulator's gaps.
"""
