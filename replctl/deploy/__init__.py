"""`plan` and `deploy`: the template, the plan as a value, and the wave-by-wave rollout that applies it."""
