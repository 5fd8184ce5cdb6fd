"""convt's benchmark program and its registry of named cases."""
