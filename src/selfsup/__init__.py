"""selfsup: self-supervised representation learning."""
