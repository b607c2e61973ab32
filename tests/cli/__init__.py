"""The operator's CLI (`python -m ops`) against the local stack."""
