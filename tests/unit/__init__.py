"""Unit tests of the pure domain rules: no sockets, no storage, no clocks."""
