"""`validate-accounts`: is every account ready for the StackSet? Facts read apart from the pure checks."""
