"""replctl: roll a multi-account replication framework out with StackSets, and watch it."""

__version__ = "0.1.0"
