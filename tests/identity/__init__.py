"""The one token validator and its shared signing-key cache."""
